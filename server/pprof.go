package server

import (
	"net/http/pprof"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// pprofPrefix is where the Go runtime's profiles are served, behind the
// admin key: the paths go tool pprof and net/http/pprof use.
const pprofPrefix = "/debug/pprof/"

// pprofHandler serves net/http/pprof under /debug/pprof/: the index, every
// named profile (heap, goroutine, allocs, block, mutex, threadcreate), a
// CPU profile (profile?seconds=N), an execution trace (trace?seconds=N),
// cmdline and symbol. net/http/pprof's Index serves the named profiles
// itself. A CPU profile or trace holds one connection for its seconds;
// fasthttp sets the write deadline only once the handler returns, so
// server.write_timeout does not cut it short.
type pprofHandler struct {
	index, cmdline, profile, symbol, trace fasthttp.RequestHandler
}

func newPprofHandler() *pprofHandler {
	return &pprofHandler{
		index:   fasthttpadaptor.NewFastHTTPHandlerFunc(pprof.Index),
		cmdline: fasthttpadaptor.NewFastHTTPHandlerFunc(pprof.Cmdline),
		profile: fasthttpadaptor.NewFastHTTPHandlerFunc(pprof.Profile),
		symbol:  fasthttpadaptor.NewFastHTTPHandlerFunc(pprof.Symbol),
		trace:   fasthttpadaptor.NewFastHTTPHandlerFunc(pprof.Trace),
	}
}

// handlePprof answers a request under /debug/pprof/ for holders of the
// admin key.
func (s *Server) handlePprof(ctx *fasthttp.RequestCtx) {
	if !s.requireAdmin(ctx, "profiles need the admin API: no admin key is configured; set server.admin_key or TOUCHPOINT_ADMIN_KEY") {
		return
	}
	path := string(ctx.Path())
	if path == "/debug/pprof" {
		ctx.Redirect(pprofPrefix, fasthttp.StatusMovedPermanently)
		return
	}
	switch path[len(pprofPrefix):] {
	case "cmdline":
		s.pprof.cmdline(ctx)
	case "profile":
		s.pprof.profile(ctx)
	case "symbol":
		s.pprof.symbol(ctx)
	case "trace":
		s.pprof.trace(ctx)
	default:
		// The index for "", a named profile, or pprof's own 404 for an
		// unknown name.
		s.pprof.index(ctx)
	}
}
