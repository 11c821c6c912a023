// Package server owns the HTTP edge of Touchpoint: routing, request
// decoding and validation, response encoding, CORS, health and readiness,
// the admin API, Prometheus metrics and graceful shutdown. It serves with
// fasthttp and keeps the decide path free of per-request allocations so
// the server's share of a decision stays in the microseconds.
package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"

	"github.com/touchpoint-dev/touchpoint/api"
	"github.com/touchpoint-dev/touchpoint/decisionlog"
	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/internal/jsonw"
	"github.com/touchpoint-dev/touchpoint/ui"
)

// Decider is what the server needs from the decision engine.
// *engine.Engine satisfies it.
type Decider interface {
	// Decide answers req into d. A *engine.RequestError is the client's
	// mistake and becomes a 400.
	Decide(ctx context.Context, req *engine.Request, d *engine.Decision) error
	// Reload swaps in a freshly compiled ruleset; its error text is
	// file:line:col lines meant for the operator.
	Reload() error
	Status() engine.Status
	Ready(ctx context.Context) error
	RuleErrors() []engine.RuleErrorCount
}

// The engine must keep satisfying Decider; this breaks the build if not.
var _ Decider = (*engine.Engine)(nil)

// RequestTracer traces decide requests; tracing.Tracer satisfies it.
type RequestTracer interface {
	// StartDecide starts the request's span, continuing the caller's trace
	// when traceparent is valid and ignoring it otherwise, and returns
	// ctx carrying the span.
	StartDecide(ctx context.Context, traceparent, tracestate []byte) context.Context
	// EndDecide ends that span with what the request came to. ruleset is
	// "" when no ruleset decided (the request was refused first).
	EndDecide(ctx context.Context, status, placements int, knownCustomer bool, ruleset string)
}

// Options carries the server's collaborators.
type Options struct {
	// Logger receives the server's own logs; the zero value discards them.
	Logger zerolog.Logger
	// FeatureCache reports the feature cache's counters and what it
	// holds for /metrics; nil leaves the cache metrics out.
	FeatureCache FeatureCache
	// Customers and Schema enable the feedback and customer endpoints
	// (/v1/events, /v1/customers/…); without them those answer 501.
	Customers Customers
	Schema    Schema
	// StoreStats reports a shared feature store's health for /readyz and
	// /metrics; nil means an embedded store that is always up.
	StoreStats func() StoreStats
	// OverlayStats reports the embedded store's overlay for /metrics; nil
	// leaves the overlay metrics out.
	OverlayStats func() features.OverlayStats
	// DecisionLog receives every sampled successful decision; nil logs
	// none. Its owner closes it after Run returns.
	DecisionLog *decisionlog.Logger
	// Experiments reports A/B tests from their live counters for
	// GET /v1/experiments/{id}; nil answers 501.
	Experiments ExperimentReporter
	// Workbench answers the playground's admin calls (schema, rules,
	// drafts) and customer lookups; nil answers 501.
	Workbench Workbench
	// OnEvents is told of every batch of events the store took, with the
	// ones applied now marked (triggers start and cancel from them); an
	// error answers 503.
	OnEvents func(ctx context.Context, events []features.Event) error
	// TriggerStats reports the triggers for /metrics; nil leaves them out.
	TriggerStats func() TriggerStats
	// Tracer traces decide requests (give the engine the same tracer for
	// their stages); nil traces none, at the cost of a nil check.
	Tracer RequestTracer

	// runnable replaces admission's reading of the scheduler's runnable
	// goroutines; tests set it, so that their own goroutines do not count.
	runnable func() int64
}

// StoreStats describes a shared feature store (Redis).
type StoreStats struct {
	State                                                  string // up, degraded or down
	Calls, Failures, Rejected, BreakerOpens, Invalidations uint64
	// BadValues counts stored values lookups could not decode and skipped;
	// Resubscribes, invalidation subscriptions re-established after a loss;
	// DialFailures, new connections that could not be made; Panics,
	// invalidation callbacks or receives that panicked and were recovered.
	BadValues, Resubscribes, DialFailures, Panics uint64
}

// Error codes returned in {"error":{"code":…}}. Clients may switch on them;
// they are part of the API.
const (
	codeInvalidJSON       = "invalid_json"
	codeMissingField      = "missing_field"
	codeInvalidField      = "invalid_field"
	codeUnknownField      = "unknown_field"
	codeBodyTooLarge      = "body_too_large"
	codeUnsupportedEncode = "unsupported_encoding"
	codeNotFound          = "not_found"
	codeMethodNotAllowed  = "method_not_allowed"
	codeOriginNotAllowed  = "origin_not_allowed"
	codeAdminDisabled     = "admin_disabled"
	codeUnauthorized      = "unauthorized"
	codeRulesetInvalid    = "ruleset_invalid"
	codeBadRequest        = "bad_request"
	codeHeadersTooLarge   = "headers_too_large"
	codeRequestTimeout    = "request_timeout"
	codeUnavailable       = "unavailable"
	codeInternal          = "internal"
	codeNotSupported      = "not_supported"
	// codeOverloaded is a decide refused by admission control: the server
	// already has max_inflight_decides in flight. Retry later (Retry-After)
	// or show the page's default content.
	codeOverloaded = "overloaded"
	// codeInvalidRequest stands in for a *engine.RequestError without a code.
	codeInvalidRequest = "invalid_request"
)

// apiError is a client-facing error answer.
type apiError struct {
	status  int
	code    string
	field   string
	message string
}

// readyTimeout bounds one readiness check so a slow dependency makes the
// probe fail instead of hang.
const readyTimeout = 2 * time.Second

// Server is the Touchpoint HTTP server. Create it with New and serve with
// Run; it serves once.
type Server struct {
	cfg     Config
	decider Decider
	log     zerolog.Logger
	tracer  RequestTracer // nil: decides are not traced
	// errLog is log rate-limited, for errors that can repeat on every
	// request (a failing engine, a panicking handler). storeLog and
	// overloadLog are rate-limited on their own, so a failing store or a
	// flood of requests cannot crowd the other errors out of the log.
	errLog      zerolog.Logger
	storeLog    zerolog.Logger
	overloadLog zerolog.Logger
	srv         *fasthttp.Server
	metrics     *metrics
	cors        corsPolicy

	adminEnabled bool
	adminKeyHash [sha256.Size]byte

	// draining is set when shutdown starts; /readyz then answers 503.
	draining atomic.Bool
	started  atomic.Bool

	// baseCtx is handed to Decide. It is not tied to a request or to the
	// shutdown signal, so in-flight decisions finish during the grace
	// period; it is cancelled once the grace period is over.
	baseCtx    context.Context
	cancelBase context.CancelFunc

	states sync.Pool // *decideState
	// parsers parse the request bodies other than decide's, which has a
	// parser in its state. Whatever a decoder keeps from a body it copies,
	// so a parser goes back to the pool as soon as its body is decoded.
	parsers fastjson.ParserPool

	// admission bounds the decides in flight.
	admission *admission
	// overloadedBody is the 503 answer of a decide refused by admission,
	// encoded once.
	overloadedBody []byte

	customers   Customers
	experiments ExperimentReporter
	schema      Schema
	storeStats  func() StoreStats
	dlog        *decisionlog.Logger
	workbench   Workbench
	onEvents    func(ctx context.Context, events []features.Event) error
	// ui is the playground's files by path under /ui/.
	ui map[string]uiAsset
	// pprof serves the runtime's profiles under /debug/pprof/.
	pprof *pprofHandler
}

// New builds a server. cfg should have passed Validate; Run checks it again.
func New(cfg Config, d Decider, opts Options) *Server {
	s := &Server{
		cfg:     cfg,
		decider: d,
		log:     opts.Logger.With().Str("component", "server").Logger(),
		cors:    newCORSPolicy(cfg.CORS),

		customers:   opts.Customers,
		experiments: opts.Experiments,
		schema:      opts.Schema,
		storeStats:  opts.StoreStats,
		dlog:        opts.DecisionLog,
		workbench:   opts.Workbench,
		onEvents:    opts.OnEvents,
		tracer:      opts.Tracer,
		pprof:       newPprofHandler(),
	}
	s.errLog = sampled(s.log, 10, time.Second)
	s.storeLog = sampled(s.log, 10, time.Second)
	s.overloadLog = sampled(s.log, 1, 10*time.Second)
	s.admission = newAdmission(int64(cfg.inflightLimit()))
	if opts.runnable != nil {
		s.admission.runnable = opts.runnable
	}
	s.overloadedBody = appendError(nil, codeOverloaded, "",
		"the server has "+strconv.FormatInt(s.admission.limit, 10)+" decides in flight or waiting for a CPU already (server.max_inflight_decides); retry after a second or show the page's default content")
	s.baseCtx, s.cancelBase = context.WithCancel(context.Background())
	if cfg.AdminKey != "" {
		s.adminEnabled = true
		s.adminKeyHash = sha256.Sum256([]byte(cfg.AdminKey))
	}
	s.metrics = newMetrics(d, opts.FeatureCache, s.log, s.admission.inflight.Load)
	if opts.StoreStats != nil {
		s.metrics.reg.MustRegister(newStoreCollector(opts.StoreStats))
	}
	if opts.OverlayStats != nil {
		s.metrics.reg.MustRegister(newOverlayCollector(opts.OverlayStats))
	}
	if opts.DecisionLog != nil {
		s.metrics.reg.MustRegister(newDecisionLogCollector(opts.DecisionLog.Stats))
	}
	if opts.TriggerStats != nil {
		s.metrics.reg.MustRegister(newTriggerCollector(opts.TriggerStats))
	}
	s.states.New = func() any { return new(decideState) }
	var err error
	if s.ui, err = loadUI(ui.Assets()); err != nil {
		s.log.Error().Err(err).Msg("the playground is not served")
	}

	// fasthttp reads bodies up to a little over the largest endpoint limit;
	// each handler enforces its endpoint's own limit, so most oversized
	// bodies get the same JSON 413 as any other error, and ErrorHandler
	// answers the rest naming the same limit.
	largest := max(cfg.MaxBodyBytes, cfg.MaxEventsBodyBytes, maxCustomerBody)
	bodyLimit := largest + max(largest/4, 4<<10)
	s.srv = &fasthttp.Server{
		Handler:      s.handle,
		ErrorHandler: s.handleReadError,
		// fasthttp logs a line for every connection it fails to serve
		// (malformed requests among them), so its log is sampled.
		Logger: fasthttpLogger{log: sampled(s.log, 10, time.Second)},
		// Keep request bytes (headers, bodies) out of those lines.
		SecureErrorLogMessage:        true,
		ReadTimeout:                  cfg.ReadTimeout,
		WriteTimeout:                 cfg.WriteTimeout,
		IdleTimeout:                  cfg.IdleTimeout,
		MaxRequestBodySize:           bodyLimit,
		ReadBufferSize:               8 << 10, // also the request header size limit
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
	}
	return s
}

// Run serves on ln until ctx is cancelled, then shuts down gracefully:
// /readyz turns 503, the listener stays open for DrainDelay, then closes,
// and in-flight requests get ShutdownGrace to finish. It returns nil after
// a clean shutdown. Run closes ln.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	if err := s.cfg.Validate(); err != nil {
		_ = ln.Close()
		return fmt.Errorf("server: invalid config: %w", err)
	}
	if s.decider == nil {
		_ = ln.Close()
		return errors.New("server: no Decider")
	}
	if !s.started.CompareAndSwap(false, true) {
		_ = ln.Close()
		return errors.New("server: Run called more than once")
	}
	defer s.cancelBase()

	addr := ln.Addr().String()
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.srv.Serve(ln) }()
	s.log.Info().Str("addr", addr).Msg("serving")

	select {
	case err := <-serveErr:
		s.draining.Store(true)
		_ = ln.Close()
		if err == nil {
			err = errors.New("listener closed")
		}
		return fmt.Errorf("server: serve on %s: %w", addr, err)
	case <-ctx.Done():
	}

	s.draining.Store(true)
	s.log.Info().Dur("drain_delay", s.cfg.DrainDelay).Dur("shutdown_grace", s.cfg.ShutdownGrace).Msg("draining")
	if s.cfg.DrainDelay > 0 {
		t := time.NewTimer(s.cfg.DrainDelay)
		select {
		case <-t.C:
		case err := <-serveErr:
			t.Stop()
			// Serve only returns early if the listener failed; put the
			// result back for the wait below.
			serveErr <- err
		}
	}

	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
	defer cancel()
	shutdownErr := s.srv.ShutdownWithContext(shutdownCtx)
	// Shutdown only closes listeners Serve has registered; closing ln too
	// covers a cancel that raced with Serve's start.
	_ = ln.Close()
	<-serveErr
	// Past the grace period: tell decisions still running to give up.
	s.cancelBase()

	if shutdownErr != nil {
		s.log.Warn().Err(shutdownErr).Msg("shutdown grace period expired with requests in flight")
		return fmt.Errorf("server: shutdown: requests still in flight after %s: %w", s.cfg.ShutdownGrace, shutdownErr)
	}
	s.log.Info().Msg("stopped")
	return nil
}

// endpoint labels a request for metrics and panic logs.
type endpoint uint8

const (
	epDecide endpoint = iota
	epPreflight
	epHealthz
	epReadyz
	epMetrics
	epAdminReload
	epAdminRuleset
	epAdminOther
	epEvents
	epCustomers
	epExperiments
	epOpenAPI
	epUI
	epPprof
	epNotFound
	epMalformed
	numEndpoints
)

func (e endpoint) String() string {
	switch e {
	case epDecide:
		return "decide"
	case epPreflight:
		return "decide_preflight"
	case epHealthz:
		return "healthz"
	case epReadyz:
		return "readyz"
	case epMetrics:
		return "metrics"
	case epAdminReload:
		return "admin_reload"
	case epAdminRuleset:
		return "admin_ruleset"
	case epAdminOther:
		return "admin_other"
	case epEvents:
		return "events"
	case epCustomers:
		return "customers"
	case epExperiments:
		return "experiments"
	case epOpenAPI:
		return "openapi"
	case epUI:
		return "ui"
	case epPprof:
		return "pprof"
	case epNotFound:
		return "not_found"
	case epMalformed:
		return "malformed"
	}
	return "unknown"
}

// handle is the fasthttp handler: it routes by path and method, recovers
// panics and counts every answer.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	ep := epNotFound
	defer func() {
		if r := recover(); r != nil {
			s.recovered(ctx, ep, r)
		}
		s.metrics.countRequest(ep, ctx.Response.StatusCode())
	}()
	if s.draining.Load() {
		// Push keep-alive clients to reconnect, landing on another instance.
		ctx.SetConnectionClose()
	}

	path := ctx.Path()
	switch routeOf(ctx) {
	case epDecide:
		switch {
		case ctx.IsPost():
			ep = epDecide
			s.handleDecide(ctx)
		case ctx.IsOptions():
			ep = epPreflight
			s.handlePreflight(ctx)
		default:
			ep = epDecide
			s.methodNotAllowed(ctx, "POST, OPTIONS")
		}
	case epEvents:
		ep = epEvents
		switch {
		case ctx.IsPost():
			s.handleEvents(ctx)
		case ctx.IsOptions():
			s.handlePreflight(ctx)
		default:
			s.methodNotAllowed(ctx, "POST, OPTIONS")
		}
	case epHealthz:
		ep = epHealthz
		if s.allowGet(ctx) {
			writeJSON(ctx, fasthttp.StatusOK, []byte(`{"status":"ok"}`))
		}
	case epReadyz:
		ep = epReadyz
		if s.allowGet(ctx) {
			s.handleReadyz(ctx)
		}
	case epMetrics:
		ep = epMetrics
		if s.allowGet(ctx) {
			s.handleMetrics(ctx)
		}
	case epCustomers:
		ep = epCustomers
		s.handleCustomer(ctx)
	case epExperiments:
		ep = epExperiments
		s.handleExperiment(ctx)
	case epOpenAPI:
		ep = epOpenAPI
		if s.allowGet(ctx) {
			ctx.Response.Header.Set("Cache-Control", "no-cache")
			ctx.SetContentType("application/yaml")
			ctx.SetBody(api.Document())
		}
	case epAdminOther:
		ep = epAdminOther
		s.handleAdmin(ctx, &ep)
	case epUI:
		ep = epUI
		s.handleUI(ctx)
	case epPprof:
		ep = epPprof
		if s.allowGetOrPost(ctx) {
			s.handlePprof(ctx)
		}
	default:
		s.writeError(ctx, &apiError{status: fasthttp.StatusNotFound, code: codeNotFound,
			message: "no endpoint at " + string(path)})
	}
}

// routeOf says which endpoint serves a request; admin paths are all
// epAdminOther here, and handleAdmin tells them apart.
//
// Customer paths are recognised in the raw path, as the client wrote it: a
// customer id may contain an encoded "/..", which fasthttp's decoded and
// normalised path has already applied ("/v1/customers/a%2F..%2F..%2Fdecide"
// is "/v1/decide" there), and the id must still reach the customer
// endpoints. Other endpoints are matched on the normalised path.
func routeOf(ctx *fasthttp.RequestCtx) endpoint {
	if bytes.HasPrefix(ctx.Request.URI().PathOriginal(), []byte(customersPrefix)) {
		return epCustomers
	}
	path := ctx.Path()
	switch string(path) {
	case "/v1/decide":
		return epDecide
	case "/v1/events":
		return epEvents
	case "/healthz":
		return epHealthz
	case "/readyz":
		return epReadyz
	case "/metrics":
		return epMetrics
	case "/openapi.yaml":
		return epOpenAPI
	case "/ui":
		return epUI
	case "/debug/pprof":
		return epPprof
	}
	switch {
	case bytes.HasPrefix(path, []byte(customersPrefix)):
		return epCustomers
	case bytes.HasPrefix(path, []byte("/admin/")):
		return epAdminOther
	case bytes.HasPrefix(path, []byte(experimentsPrefix)):
		return epExperiments
	case bytes.HasPrefix(path, []byte(uiPrefix)):
		return epUI
	case bytes.HasPrefix(path, []byte(pprofPrefix)):
		return epPprof
	}
	return epNotFound
}

// bodyLimit is the largest request body endpoint ep reads. Endpoints
// without a body share decide's limit, which is then only ever named by a
// 413 for a body sent where none belongs.
func (s *Server) bodyLimit(ep endpoint) int {
	switch ep {
	case epEvents:
		return s.cfg.MaxEventsBodyBytes
	case epCustomers:
		return maxCustomerBody
	}
	return s.cfg.MaxBodyBytes
}

// allowGetOrPost answers 405 unless the method is GET, HEAD or POST (go
// tool pprof POSTs to symbol).
func (s *Server) allowGetOrPost(ctx *fasthttp.RequestCtx) bool {
	if ctx.IsGet() || ctx.IsHead() || ctx.IsPost() {
		return true
	}
	s.methodNotAllowed(ctx, "GET, HEAD, POST")
	return false
}

// allowGet answers 405 unless the method is GET or HEAD.
func (s *Server) allowGet(ctx *fasthttp.RequestCtx) bool {
	if ctx.IsGet() || ctx.IsHead() {
		return true
	}
	s.methodNotAllowed(ctx, "GET, HEAD")
	return false
}

func (s *Server) methodNotAllowed(ctx *fasthttp.RequestCtx, allow string) {
	ctx.Response.Header.Set("Allow", allow)
	s.writeError(ctx, &apiError{status: fasthttp.StatusMethodNotAllowed, code: codeMethodNotAllowed,
		message: "method " + string(ctx.Method()) + " is not allowed on " + string(ctx.Path()) + "; allowed: " + allow})
}

// recovered turns a handler panic into a 500 and logs it with the stack.
// The request's pooled state is not returned to its pool, since the panic
// may have left it inconsistent.
func (s *Server) recovered(ctx *fasthttp.RequestCtx, ep endpoint, r any) {
	s.errLog.Error().
		Str("endpoint", ep.String()).
		Str("panic", fmt.Sprint(r)).
		Bytes("stack", debug.Stack()).
		Msg("handler panicked")
	ctx.Response.Reset()
	if s.draining.Load() {
		ctx.SetConnectionClose()
	}
	if ep == epDecide {
		s.cors.apply(ctx)
		noStore(ctx)
	}
	s.writeError(ctx, &apiError{status: fasthttp.StatusInternalServerError, code: codeInternal,
		message: "internal error"})
}

func (s *Server) handleReadyz(ctx *fasthttp.RequestCtx) {
	noStore(ctx)
	if s.draining.Load() {
		writeJSON(ctx, fasthttp.StatusServiceUnavailable, []byte(`{"status":"draining"}`))
		return
	}
	rctx, cancel := context.WithTimeout(s.baseCtx, readyTimeout)
	defer cancel()
	if err := s.decider.Ready(rctx); err != nil {
		b := []byte(`{"status":"not_ready","reason":`)
		b = jsonw.AppendString(b, err.Error())
		b = append(b, '}')
		writeJSON(ctx, fasthttp.StatusServiceUnavailable, b)
		return
	}
	// A failing feature store degrades decisions rather than failing them,
	// so it is reported here but does not take the node out of rotation:
	// if it did, a Redis outage would take every node out at once.
	state := "up"
	if s.storeStats != nil {
		state = s.storeStats().State
	}
	b := []byte(`{"status":"ready","store":`)
	b = jsonw.AppendString(b, state)
	writeJSON(ctx, fasthttp.StatusOK, append(b, '}'))
}

// handleReadError answers requests fasthttp could not read (body over its
// limit, oversized headers, timeouts, malformed HTTP) in the same JSON shape
// as every other error.
func (s *Server) handleReadError(ctx *fasthttp.RequestCtx, err error) {
	e := &apiError{status: fasthttp.StatusBadRequest, code: codeBadRequest, message: "malformed HTTP request"}
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		// The URI has been parsed by the time the body is read, so the
		// answer names the limit of the endpoint that was called.
		ep := routeOf(ctx)
		e = bodyTooLarge(s.bodyLimit(ep), ep)
		if ep == epDecide || ep == epEvents {
			s.cors.apply(ctx)
		}
	case errors.As(err, &small):
		e = &apiError{status: fasthttp.StatusRequestHeaderFieldsTooLarge, code: codeHeadersTooLarge,
			message: "request headers are too large"}
	case errors.As(err, &netErr) && netErr.Timeout():
		e = &apiError{status: fasthttp.StatusRequestTimeout, code: codeRequestTimeout,
			message: "request not received within " + s.cfg.ReadTimeout.String()}
	}
	noStore(ctx)
	s.writeError(ctx, e)
	s.metrics.countRequest(epMalformed, e.status)
}

// bodyTooLarge is the 413 answer, naming the limit and the setting behind it.
func bodyTooLarge(limit int, ep endpoint) *apiError {
	setting := "server.max_body_bytes"
	switch ep {
	case epEvents:
		setting = "server.max_events_body_bytes"
	case epCustomers:
		setting = "the customer endpoints' fixed limit"
	}
	return &apiError{status: fasthttp.StatusRequestEntityTooLarge, code: codeBodyTooLarge,
		message: "request body exceeds " + strconv.Itoa(limit) + " bytes (" + setting + ")"}
}

// writeError writes the JSON error body. Error answers are not hot, but a
// misbehaving client can send many, so it avoids encoding/json all the same.
func (s *Server) writeError(ctx *fasthttp.RequestCtx, e *apiError) {
	b := make([]byte, 0, 64+len(e.code)+len(e.field)+len(e.message))
	b = appendError(b, e.code, e.field, e.message)
	writeJSON(ctx, e.status, b)
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, body []byte) {
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(jsonContentType)
	ctx.SetBody(body)
}

// Header names and values set on most answers, in canonical form, so that
// setting them copies bytes and skips fasthttp's normalising of the name.
var (
	jsonContentType = []byte("application/json")
	cacheControl    = []byte("Cache-Control")
	noStoreValue    = []byte("no-store")
)

// noStore marks an answer as not to be cached: decisions and everything
// else the API answers are per customer and per moment.
func noStore(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.SetCanonical(cacheControl, noStoreValue)
}

// sampled returns log limited to burst lines per period (further lines in
// the period are dropped), for messages a client can cause on every request.
func sampled(log zerolog.Logger, burst uint32, period time.Duration) zerolog.Logger {
	return log.Sample(&zerolog.BurstSampler{Burst: burst, Period: period})
}

// fasthttpLogger routes fasthttp's own messages (accept errors, connection
// limits, connections it could not serve) into the server log.
type fasthttpLogger struct{ log zerolog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Warn().Str("source", "fasthttp").Msgf(format, args...)
}

// Route is one method and path the server serves, with {id} for a path
// parameter.
type Route struct{ Method, Path string }

// Routes lists every route the server serves, for the API document's
// test (every route must be described) and the server's own (every
// route must be served).
func Routes() []Route {
	return []Route{
		{"POST", "/v1/decide"}, {"OPTIONS", "/v1/decide"},
		{"POST", "/v1/events"}, {"OPTIONS", "/v1/events"},
		{"DELETE", "/v1/customers/{id}"},
		{"PUT", "/v1/customers/{id}/features"},
		{"PUT", "/v1/customers/{id}/consent"},
		{"GET", "/v1/experiments/{id}"},
		{"GET", "/healthz"}, {"GET", "/readyz"}, {"GET", "/metrics"}, {"GET", "/openapi.yaml"},
		{"POST", "/admin/reload"}, {"GET", "/admin/ruleset"}, {"GET", "/admin/bandits"},
		{"GET", "/admin/schema"}, {"GET", "/admin/rules"}, {"GET", "/admin/rules/file"},
		{"POST", "/admin/drafts/check"}, {"POST", "/admin/drafts/replay"},
		{"GET", "/v1/customers/{id}"}, {"GET", "/ui/"}, {"GET", "/ui/{file}"},
		{"GET", "/debug/pprof/"}, {"GET", "/debug/pprof/{profile}"},
	}
}
