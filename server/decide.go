package server

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/touchpoint-dev/touchpoint/engine"
)

// decideState is everything one decide request reuses: the parser and
// decoded request, the engine's Decision and the response buffer. One pool
// round trip per request covers all of it.
type decideState struct {
	dec      decodeState
	decision engine.Decision
	buf      []byte
}

// maxPooledBytes keeps a rare huge request or explain answer from pinning
// its buffers in the pool for the life of the process.
const maxPooledBytes = 256 << 10

func (s *Server) acquireState() *decideState {
	return s.states.Get().(*decideState)
}

func (s *Server) releaseState(st *decideState) {
	if cap(st.buf) > maxPooledBytes {
		return
	}
	s.states.Put(st)
}

// handleDecide serves POST /v1/decide. The success path allocates nothing in
// the server: the body is parsed in place by a pooled parser, strings in the
// request point into that parser's buffer, and the answer is encoded into a
// pooled buffer before the state goes back to the pool.
//
// Admission comes first: beyond max_inflight_decides the request is
// answered 503 before anything is decoded, so a server that cannot keep up
// spends nothing on the requests it turns away.
func (s *Server) handleDecide(ctx *fasthttp.RequestCtx) {
	s.cors.apply(ctx)
	noStore(ctx)
	// fasthttp reads the clock for every request; admission uses that reading.
	if !s.admission.admit(ctx.Time()) {
		s.overloaded(ctx)
		return
	}
	// Deferred so that a panicking decide is not counted in flight forever.
	defer s.admission.done()
	// fasthttp read the clock just before calling the handler: that reading
	// starts the timer and is the decision's time, so a decide reads the
	// clock once more, at the end.
	if s.tracer != nil {
		s.decideTraced(ctx)
	} else {
		s.decide(ctx, s.baseCtx)
	}
	s.metrics.decideDuration.Observe(time.Since(ctx.Time()).Seconds())
}

// decideTraced serves a decide inside its span. The span ends before the
// handler returns, so it is recorded before the client has the answer.
func (s *Server) decideTraced(ctx *fasthttp.RequestCtx) {
	tctx := s.tracer.StartDecide(s.baseCtx, ctx.Request.Header.Peek("traceparent"), ctx.Request.Header.Peek("tracestate"))
	out := s.decide(ctx, tctx)
	s.tracer.EndDecide(tctx, ctx.Response.StatusCode(), out.placements, out.known, out.ruleset)
}

// decideOutcome is what a decide came to, for its span: nothing in it
// identifies the customer.
type decideOutcome struct {
	placements int
	known      bool
	ruleset    string
}

// overloaded answers a decide refused by admission control.
func (s *Server) overloaded(ctx *fasthttp.RequestCtx) {
	s.metrics.overloaded.Inc()
	s.overloadLog.Warn().Int64("max_inflight_decides", s.admission.limit).
		Msg("refusing decides: too many in flight or waiting for a CPU (logged at most once per 10s)")
	ctx.Response.Header.Set("Retry-After", "1")
	writeJSON(ctx, fasthttp.StatusServiceUnavailable, s.overloadedBody)
}

// decide serves one decide; dctx is the context the engine decides in.
func (s *Server) decide(ctx *fasthttp.RequestCtx, dctx context.Context) (out decideOutcome) {
	body := ctx.PostBody()
	if len(body) > s.cfg.MaxBodyBytes {
		s.writeError(ctx, bodyTooLarge(s.cfg.MaxBodyBytes, epDecide))
		return
	}
	if enc := ctx.Request.Header.ContentEncoding(); len(enc) > 0 && !bytes.EqualFold(enc, []byte("identity")) {
		s.writeError(ctx, &apiError{status: fasthttp.StatusUnsupportedMediaType, code: codeUnsupportedEncode,
			field: "Content-Encoding", message: "Content-Encoding " + string(enc) + " is not supported; send an uncompressed body"})
		return
	}

	st := s.acquireState()
	if e := st.dec.decode(body); e != nil {
		s.writeError(ctx, e)
		s.releaseState(st)
		return
	}
	out.placements = len(st.dec.req.Placements)
	preview := st.dec.req.Preview
	if preview && !s.allowPreview(ctx, &st.dec.req) {
		s.releaseState(st)
		return
	}
	// Only sampled decisions collect their candidates for the log, so the
	// others pay nothing for it; a preview at another time is no decision
	// to learn from.
	logged := !preview && s.dlog != nil && s.dlog.Sample()
	st.dec.req.Log = logged
	st.dec.req.Received = ctx.Time()
	if err := s.decider.Decide(dctx, &st.dec.req, &st.decision); err != nil {
		s.writeDecideError(ctx, err)
		s.releaseState(st)
		return
	}
	out.known, out.ruleset = st.decision.KnownCustomer, st.decision.Ruleset
	if st.decision.Degraded {
		s.metrics.degraded.Inc()
	}
	if logged {
		// Copies what it needs; a full queue drops the line, never waits.
		s.dlog.Log(&st.dec.req, &st.decision, ctx.Time())
	}
	st.buf = appendDecision(st.buf[:0], &st.dec.req, &st.decision)
	writeJSON(ctx, fasthttp.StatusOK, st.buf) // SetBody copies, so st.buf can be reused
	s.releaseState(st)
	return out
}

// allowPreview checks a preview request (now or what_if): only the admin
// key may ask for one, and what_if's features must fit the schema.
func (s *Server) allowPreview(ctx *fasthttp.RequestCtx, req *engine.Request) bool {
	field := "now"
	if req.WhatIf != nil {
		field = "what_if"
	}
	if !s.requireAdminFor(ctx, field) {
		return false
	}
	if req.WhatIf == nil || len(req.WhatIf.Features) == 0 {
		return true
	}
	if s.schema == nil {
		s.writeError(ctx, &apiError{status: fasthttp.StatusNotImplemented, code: codeNotSupported, field: "what_if.features",
			message: "what_if.features needs the feature schema, which this server was started without"})
		return false
	}
	if re := s.schema.CheckFeatures(req.WhatIf.Features); re != nil {
		s.writeError(ctx, &apiError{status: fasthttp.StatusBadRequest, code: re.Code, field: "what_if." + re.Field,
			message: "what_if." + re.Message})
		return false
	}
	return true
}

// writeDecideError maps an error from Decide: the client's mistakes are 400s
// with the engine's code; anything else is the server's fault.
func (s *Server) writeDecideError(ctx *fasthttp.RequestCtx, err error) {
	var re *engine.RequestError
	switch {
	case errors.As(err, &re):
		code := re.Code
		if code == "" {
			code = codeInvalidRequest
		}
		msg := re.Message
		if re.Field != "" && !strings.Contains(msg, re.Field) {
			msg = re.Field + ": " + msg
		}
		s.writeError(ctx, &apiError{status: fasthttp.StatusBadRequest, code: code, field: re.Field, message: msg})
	case errors.Is(err, context.Canceled) && s.baseCtx.Err() != nil:
		s.writeError(ctx, &apiError{status: fasthttp.StatusServiceUnavailable, code: codeUnavailable,
			message: "the server is shutting down; retry"})
	default:
		s.errLog.Error().Err(err).Msg("decide failed")
		s.writeError(ctx, &apiError{status: fasthttp.StatusInternalServerError, code: codeInternal,
			message: "internal error"})
	}
}

// corsPolicy answers which browser origins may call /v1/decide.
type corsPolicy struct {
	anyOrigin bool
	origins   []string
	maxAge    string // seconds, preformatted for Access-Control-Max-Age
}

func newCORSPolicy(c CORSConfig) corsPolicy {
	p := corsPolicy{maxAge: strconv.Itoa(int(c.MaxAge / time.Second))}
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			p.anyOrigin = true
			continue
		}
		p.origins = append(p.origins, o)
	}
	return p
}

func (p *corsPolicy) allowed(origin []byte) bool {
	if p.anyOrigin {
		return true
	}
	for _, o := range p.origins {
		// Browsers serialize scheme and host in lower case; EqualFold also
		// forgives a configuration written in another case.
		if len(o) == len(origin) && strings.EqualFold(o, unsafeString(origin)) {
			return true
		}
	}
	return false
}

// apply adds the CORS answer headers for an actual (non-preflight) request.
// A disallowed origin gets no Allow-Origin, so the browser withholds the
// answer from the page; the request is still served, since CORS only binds
// browsers.
func (p *corsPolicy) apply(ctx *fasthttp.RequestCtx) {
	origin := ctx.Request.Header.Peek("Origin")
	if len(origin) == 0 {
		return
	}
	ctx.Response.Header.Set("Vary", "Origin")
	p.allowOrigin(ctx, origin)
}

func (p *corsPolicy) allowOrigin(ctx *fasthttp.RequestCtx, origin []byte) bool {
	switch {
	case p.anyOrigin:
		ctx.Response.Header.Set("Access-Control-Allow-Origin", "*")
	case p.allowed(origin):
		ctx.Response.Header.SetBytesV("Access-Control-Allow-Origin", origin)
	default:
		return false
	}
	return true
}

// handlePreflight answers OPTIONS /v1/decide.
func (s *Server) handlePreflight(ctx *fasthttp.RequestCtx) {
	origin := ctx.Request.Header.Peek("Origin")
	if len(origin) == 0 {
		// Not a CORS preflight: a plain OPTIONS asking what is allowed.
		ctx.Response.Header.Set("Allow", "POST, OPTIONS")
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	}
	ctx.Response.Header.Set("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
	if !s.cors.allowOrigin(ctx, origin) {
		s.writeError(ctx, &apiError{status: fasthttp.StatusForbidden, code: codeOriginNotAllowed,
			field: "Origin", message: "origin " + string(origin) + " is not allowed to call /v1/decide"})
		return
	}
	h := &ctx.Response.Header
	h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	if reqHeaders := ctx.Request.Header.Peek("Access-Control-Request-Headers"); len(reqHeaders) > 0 {
		h.SetBytesV("Access-Control-Allow-Headers", reqHeaders)
	} else {
		h.Set("Access-Control-Allow-Headers", "Content-Type")
	}
	h.Set("Access-Control-Max-Age", s.cors.maxAge)
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}
