// Package tracing owns OpenTelemetry for Touchpoint: it builds the tracer
// provider from Config (sampled by ratio, or as the caller's traceparent
// says), posts spans to an OTLP/HTTP collector in batches, and starts and
// ends the spans of a decide request, its stages and its Redis calls.
//
// It is the only package that imports OpenTelemetry. The engine and the
// server declare the small interfaces they call (engine.Tracer,
// server.RequestTracer), which *Tracer satisfies; the Redis store takes the
// hook RedisHook returns. Spans carry counts, flags and names, never a
// customer id, a feature value or a Redis key.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/touchpoint-dev/touchpoint/internal/buildinfo"
)

// Span names. The decide span is named as OpenTelemetry names HTTP server
// spans, method and route; the engine names its stages' spans
// (features.lookup, rules.evaluate).
const (
	SpanDecide        = "POST /v1/decide"
	SpanRedisPipeline = "redis.pipeline"
)

// Attribute keys of the decide span. The HTTP ones follow OpenTelemetry's
// semantic conventions; the others are Touchpoint's.
const (
	AttrMethod        = "http.request.method"
	AttrRoute         = "http.route"
	AttrStatus        = "http.response.status_code"
	AttrPlacements    = "touchpoint.placements"
	AttrCustomerKnown = "touchpoint.customer_known"
	AttrRuleset       = "touchpoint.ruleset"
)

// Tracer starts and ends Touchpoint's spans. It is safe for concurrent use.
// Shutdown flushes what is queued; after it, spans are dropped.
type Tracer struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
	prop     propagation.TraceContext
}

// Option configures a Tracer beyond its Config.
type Option func(*options)

type options struct {
	log       zerolog.Logger
	processor sdktrace.SpanProcessor
}

// WithLogger logs failed exports (at most a few a minute).
func WithLogger(log zerolog.Logger) Option {
	return func(o *options) { o.log = log.With().Str("component", "tracing").Logger() }
}

// WithSpanProcessor hands ended spans to p instead of the OTLP exporter,
// for tests that read spans in memory.
func WithSpanProcessor(p sdktrace.SpanProcessor) Option {
	return func(o *options) { o.processor = p }
}

// New builds a Tracer for cfg. It does not contact the collector: an
// endpoint that is down costs dropped spans and a log line, never a
// failed start or a slower decision. The caller decides from cfg.Enabled
// whether to build one at all.
func New(cfg Config, opts ...Option) (*Tracer, error) {
	cfg.Enabled = true
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{log: zerolog.Nop()}
	for _, opt := range opts {
		opt(&o)
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", cfg.ServiceName),
		attribute.String("service.version", buildinfo.Read().Version),
	)
	sampler := sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))
	popts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithSampler(sampler)}
	if o.processor != nil {
		popts = append(popts, sdktrace.WithSpanProcessor(o.processor))
	} else {
		endpoint, _ := cfg.endpointURL() // validated above
		exp, err := otlptracehttp.New(context.Background(),
			otlptracehttp.WithEndpointURL(endpoint),
			otlptracehttp.WithHeaders(cfg.Headers),
			otlptracehttp.WithTimeout(cfg.Timeout),
			otlptracehttp.WithCompression(otlptracehttp.GzipCompression),
		)
		if err != nil {
			return nil, fmt.Errorf("cannot set up the OTLP exporter: %w", err)
		}
		logged := &loggedExporter{SpanExporter: exp,
			log: o.log.Sample(&zerolog.BurstSampler{Burst: 3, Period: time.Minute})}
		// The batcher never blocks a request: a full queue drops spans.
		popts = append(popts, sdktrace.WithBatcher(logged, sdktrace.WithExportTimeout(cfg.Timeout)))
	}
	tp := sdktrace.NewTracerProvider(popts...)
	return &Tracer{provider: tp, tracer: tp.Tracer("github.com/touchpoint-dev/touchpoint")}, nil
}

// Shutdown exports the spans still queued, within ctx, and stops the
// exporter. Call it once the server has stopped serving.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if err := t.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("cannot flush traces: %w", err)
	}
	return nil
}

// StartDecide starts the span of one decide request and returns ctx
// carrying it. A valid traceparent (with its tracestate) makes it a child
// of the caller's span, sampled as the caller sampled it; a malformed one
// is ignored and the request starts a trace of its own.
func (t *Tracer) StartDecide(ctx context.Context, traceparent, tracestate []byte) context.Context {
	if len(traceparent) > 0 {
		ctx = t.prop.Extract(ctx, headerCarrier{traceparent: string(traceparent), tracestate: string(tracestate)})
	}
	ctx, span := t.tracer.Start(ctx, SpanDecide, trace.WithSpanKind(trace.SpanKindServer))
	if span.IsRecording() {
		// Set after sampling, so an unsampled request builds none.
		span.SetAttributes(attribute.String(AttrMethod, "POST"), attribute.String(AttrRoute, "/v1/decide"))
	}
	return ctx
}

// EndDecide ends the span StartDecide put in ctx with what the request
// came to: its HTTP status, how many placements it asked for, whether the
// customer was known and the ruleset version that decided ("" when none
// did). A 5xx marks the span failed.
func (t *Tracer) EndDecide(ctx context.Context, status, placements int, known bool, ruleset string) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		span.End()
		return
	}
	span.SetAttributes(attribute.Int(AttrStatus, status), attribute.Int(AttrPlacements, placements),
		attribute.Bool(AttrCustomerKnown, known))
	if ruleset != "" {
		span.SetAttributes(attribute.String(AttrRuleset, ruleset))
	}
	if status >= 500 {
		span.SetStatus(codes.Error, "")
	}
	span.End()
}

// Start starts a span for one stage of a decision, named stage, as a child of the span in ctx. When that span is not being
// recorded (an unsampled request) it starts nothing and returns ctx as it
// is, so End then ends nothing either.
func (t *Tracer) Start(ctx context.Context, stage string) context.Context {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx
	}
	ctx, _ = t.tracer.Start(ctx, stage)
	return ctx
}

// End ends the span Start put in ctx; failed marks it failed. No error
// text is recorded: it could name a customer.
func (t *Tracer) End(ctx context.Context, failed bool) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	if failed {
		span.SetStatus(codes.Error, "failed")
	}
	span.End()
}

// headerCarrier hands the two W3C trace context headers of a request to
// the propagator.
type headerCarrier struct{ traceparent, tracestate string }

func (c headerCarrier) Get(key string) string {
	switch key {
	case "traceparent":
		return c.traceparent
	case "tracestate":
		return c.tracestate
	}
	return ""
}

func (headerCarrier) Set(string, string) {}
func (headerCarrier) Keys() []string     { return []string{"traceparent", "tracestate"} }

// loggedExporter logs failed exports itself rather than passing the error
// to OpenTelemetry's process-wide handler, which would print it outside
// the server's log.
type loggedExporter struct {
	sdktrace.SpanExporter
	log zerolog.Logger
}

func (e *loggedExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if err := e.SpanExporter.ExportSpans(ctx, spans); err != nil && !errors.Is(err, context.Canceled) {
		e.log.Warn().Err(err).Int("spans", len(spans)).Msg("cannot export spans; they are dropped (logged at most 3 times a minute)")
	}
	return nil
}
