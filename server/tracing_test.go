package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/features/redisstore"
	"github.com/touchpoint-dev/touchpoint/internal/redistest"
	"github.com/touchpoint-dev/touchpoint/tracing"
)

const tracedDecide = `{"customer_id":"c-000042","placements":["cart_banner","home_hero"],"context":{"channel":"web","page":"/cart"}}`

// tracedStack is the demo ruleset served on a real redis-server, traced
// into memory.
type tracedStack struct {
	ts    *testServer
	spans *tracetest.SpanRecorder
}

// startTraced serves the demo ruleset with customer c-000042 in a real
// redis-server, every stage traced with the given sample ratio.
func startTraced(t *testing.T, ratio float64) *tracedStack {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	cfg := tracing.DefaultConfig()
	cfg.Enabled, cfg.SampleRatio = true, ratio
	tr, err := tracing.New(cfg, tracing.WithSpanProcessor(rec))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })

	redis := redistest.Start(t)
	rcfg := redisstore.DefaultConfig()
	rcfg.URL = redis.URL()
	rcfg.LookupTimeout, rcfg.WriteTimeout = 2*time.Second, 5*time.Second // the race detector is slow
	store, err := redisstore.Open(rcfg, redisstore.WithHooks(tr.RedisHook()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	// Untraced: the context carries no span.
	if err := store.PutFeatures(context.Background(), "c-000042", map[string]features.Value{"tier": features.String("gold")}); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.Ended()); n != 0 {
		t.Fatalf("an untraced write recorded %d spans", n)
	}
	eng, err := engine.New(engine.Config{RulesDir: "../configs/rules", SchemaPath: "../configs/features.yaml"}, store,
		zerolog.Nop(), engine.WithoutLearning(), engine.WithBudgets(store), engine.WithWriter(store), engine.WithTracer(tr))
	if err != nil {
		t.Fatal(err)
	}
	ts := startServerWith(t, testConfig(), eng, Options{Tracer: tr})
	return &tracedStack{ts: ts, spans: rec}
}

// decide posts the traced request with the given headers and expects
// status.
func (st *tracedStack) decide(t *testing.T, body string, headers map[string]string, status int) {
	t.Helper()
	r := st.ts.do(t, http.MethodPost, "/v1/decide", body, headers)
	if r.status != status {
		t.Fatalf("decide answered %d, want %d: %s", r.status, status, r.body)
	}
}

// newSpans returns the spans ended since the last call, taking them.
func newSpans(rec *tracetest.SpanRecorder, seen *int) []sdktrace.ReadOnlySpan {
	all := rec.Ended()
	out := all[*seen:]
	*seen = len(all)
	return out
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

func byName(spans []sdktrace.ReadOnlySpan, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func one(t *testing.T, spans []sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	found := byName(spans, name)
	if len(found) != 1 {
		names := make([]string, len(spans))
		for i, s := range spans {
			names[i] = s.Name()
		}
		t.Fatalf("%d spans named %q among %q, want 1", len(found), name, names)
	}
	return found[0]
}

func TestDecideIsTraced(t *testing.T) {
	st := startTraced(t, 1)
	const callerTrace, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	seen := 0
	cases := []struct {
		name        string
		traceparent string
		continues   bool // the spans join the caller's trace
	}{
		{name: "traceparent from the caller", traceparent: "00-" + callerTrace + "-" + callerSpan + "-01", continues: true},
		{name: "no traceparent"},
		{name: "malformed traceparent", traceparent: "00-" + callerTrace + "-nothex!!nothex!!-01"},
		{name: "all-zero trace id", traceparent: "00-00000000000000000000000000000000-" + callerSpan + "-01"},
		{name: "unknown version ff", traceparent: "ff-" + callerTrace + "-" + callerSpan + "-01"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			headers := map[string]string{"Content-Type": "application/json"}
			if tc.traceparent != "" {
				headers["traceparent"] = tc.traceparent
				headers["tracestate"] = "vendor=opaque"
			}
			st.decide(t, tracedDecide, headers, http.StatusOK)
			spans := newSpans(st.spans, &seen)
			root := one(t, spans, tracing.SpanDecide)
			lookup := one(t, spans, engine.StageFeatureLookup)
			rules := one(t, spans, engine.StageRules)

			traceID := root.SpanContext().TraceID()
			if got := traceID.String() == callerTrace; got != tc.continues {
				t.Errorf("trace id %s: continues the caller's trace %v, want %v", traceID, got, tc.continues)
			}
			if tc.continues {
				if root.Parent().SpanID().String() != callerSpan || !root.Parent().IsRemote() {
					t.Errorf("decide span's parent %v, want the caller's span %s", root.Parent(), callerSpan)
				}
			} else if root.Parent().IsValid() {
				t.Errorf("decide span has parent %v, want a new trace", root.Parent())
			}
			if root.SpanKind() != trace.SpanKindServer {
				t.Errorf("decide span kind %v", root.SpanKind())
			}
			a := attrs(root)
			if a[tracing.AttrStatus].AsInt64() != 200 || a[tracing.AttrPlacements].AsInt64() != 2 ||
				!a[tracing.AttrCustomerKnown].AsBool() || a[tracing.AttrRuleset].AsString() == "" ||
				a[tracing.AttrMethod].AsString() != "POST" || a[tracing.AttrRoute].AsString() != "/v1/decide" {
				t.Errorf("decide span attributes %v", root.Attributes())
			}
			for _, s := range []sdktrace.ReadOnlySpan{lookup, rules} {
				if s.SpanContext().TraceID() != traceID || s.Parent().SpanID() != root.SpanContext().SpanID() {
					t.Errorf("%s: trace %s parent %s, want trace %s parent %s", s.Name(),
						s.SpanContext().TraceID(), s.Parent().SpanID(), traceID, root.SpanContext().SpanID())
				}
				if s.Status().Code == codes.Error {
					t.Errorf("%s failed: %v", s.Name(), s.Status())
				}
			}
			// The lookup is a pipelined round trip to Redis under the
			// lookup's span (with the handshake, when the call opened a
			// connection, under the call that opened it); any other Redis
			// call (caps, budgets) belongs to the rules.
			parents := map[trace.SpanID]bool{}
			for _, s := range spans {
				if s != root {
					parents[s.SpanContext().SpanID()] = true
				}
			}
			lookupPipelines := 0
			for _, s := range spans {
				if s == root || s == lookup || s == rules {
					continue
				}
				parent := s.Parent().SpanID()
				if parent == lookup.SpanContext().SpanID() && s.Name() == tracing.SpanRedisPipeline {
					lookupPipelines++
				}
				if !parents[parent] || s.SpanContext().TraceID() != traceID {
					t.Errorf("span %s has parent %s, outside the lookup's and the rules' spans", s.Name(), parent)
				}
				if a := attrs(s); !strings.HasPrefix(s.Name(), "redis.") || s.SpanKind() != trace.SpanKindClient ||
					a[tracing.AttrDBSystem].AsString() != "redis" || a[tracing.AttrDBOperation].AsString() == "" {
					t.Errorf("span %s kind %v attributes %v, want a Redis client span", s.Name(), s.SpanKind(), s.Attributes())
				}
				if s.Status().Code == codes.Error {
					t.Errorf("%s failed: %v", s.Name(), s.Status())
				}
			}
			if lookupPipelines == 0 {
				t.Errorf("no %s span under the lookup", tracing.SpanRedisPipeline)
			}
			assertNoCustomerData(t, spans)
		})
	}
}

// assertNoCustomerData fails if a span names the customer or her features.
func assertNoCustomerData(t *testing.T, spans []sdktrace.ReadOnlySpan) {
	t.Helper()
	for _, s := range spans {
		for _, kv := range s.Attributes() {
			if v := kv.Value.String(); strings.Contains(v, "c-000042") || strings.Contains(v, "gold") {
				t.Errorf("span %s carries customer data: %s=%s", s.Name(), kv.Key, v)
			}
		}
		if strings.Contains(s.Name(), "c-000042") || strings.Contains(s.Status().Description, "c-000042") {
			t.Errorf("span %s names the customer", s.Name())
		}
	}
}

func TestDecideSampledByRatio(t *testing.T) {
	st := startTraced(t, 0)
	seen := 0
	trace := "4bf92f3577b34da6a3ce929d0e0e4736"
	cases := []struct {
		name        string
		traceparent string
		recorded    bool
	}{
		{name: "no traceparent: the ratio decides", recorded: false},
		{name: "caller did not sample", traceparent: "00-" + trace + "-00f067aa0ba902b7-00", recorded: false},
		{name: "malformed traceparent: the ratio decides", traceparent: "garbage", recorded: false},
		// Parent-based: a trace the caller records is recorded whole.
		{name: "caller sampled", traceparent: "00-" + trace + "-00f067aa0ba902b7-01", recorded: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			headers := map[string]string{}
			if tc.traceparent != "" {
				headers["traceparent"] = tc.traceparent
			}
			st.decide(t, tracedDecide, headers, http.StatusOK)
			spans := newSpans(st.spans, &seen)
			if got := len(spans) > 0; got != tc.recorded {
				t.Fatalf("%d spans recorded, want recorded=%v", len(spans), tc.recorded)
			}
			if tc.recorded {
				one(t, spans, tracing.SpanDecide)
				one(t, spans, engine.StageFeatureLookup)
				one(t, spans, engine.StageRules)
			}
		})
	}
}

// A refused request is traced too, with its status and no ruleset.
func TestRefusedDecideIsTraced(t *testing.T) {
	st := startTraced(t, 1)
	seen := 0
	st.decide(t, `{"customer_id":"c-000042","placements":["no_such_placement"]}`, nil, http.StatusBadRequest)
	spans := newSpans(st.spans, &seen)
	root := one(t, spans, tracing.SpanDecide)
	a := attrs(root)
	if a[tracing.AttrStatus].AsInt64() != 400 || a[tracing.AttrPlacements].AsInt64() != 1 {
		t.Errorf("attributes %v", root.Attributes())
	}
	if _, ok := a[tracing.AttrRuleset]; ok {
		t.Errorf("a refused request names a ruleset: %v", root.Attributes())
	}
	if len(byName(spans, engine.StageFeatureLookup)) != 0 {
		t.Errorf("a refused request looked the customer up")
	}
	st.decide(t, `{"customer_id":`, nil, http.StatusBadRequest)
	root = one(t, newSpans(st.spans, &seen), tracing.SpanDecide)
	if a := attrs(root); a[tracing.AttrStatus].AsInt64() != 400 || a[tracing.AttrPlacements].AsInt64() != 0 {
		t.Errorf("undecodable request: attributes %v", root.Attributes())
	}
}

// The traced handler's cost, for comparison with BenchmarkHandleDecide:
// every request sampled (spans dropped once ended), or none.
func BenchmarkHandleDecideTraced(b *testing.B) {
	for _, bc := range []struct {
		name  string
		ratio float64
	}{{"sampled", 1}, {"unsampled", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			_, d := sampleDecision()
			cfg := tracing.DefaultConfig()
			cfg.Enabled, cfg.SampleRatio = true, bc.ratio
			tr, err := tracing.New(cfg, tracing.WithSpanProcessor(discard{}))
			if err != nil {
				b.Fatal(err)
			}
			s := New(testConfig(), staticDecider{d: d}, Options{Tracer: tr})
			benchHandleDecide(b, s, "https://shop.example.com")
		})
	}
}

type discard struct{}

func (discard) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discard) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discard) Shutdown(context.Context) error                  { return nil }
func (discard) ForceFlush(context.Context) error                { return nil }
