package tracing

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func TestConfigValidate(t *testing.T) {
	on := func(edit func(*Config)) Config {
		c := DefaultConfig()
		c.Enabled = true
		edit(&c)
		return c
	}
	cases := []struct {
		name string
		cfg  Config
		want string // "" for valid
	}{
		{name: "default, off", cfg: DefaultConfig()},
		{name: "off is not checked", cfg: Config{SampleRatio: 7}},
		{name: "default, on", cfg: on(func(*Config) {})},
		{name: "endpoint without a path", cfg: on(func(c *Config) { c.Endpoint = "https://collector.example.com" })},
		{name: "ratio above 1", cfg: on(func(c *Config) { c.SampleRatio = 1.5 }), want: "tracing.sample_ratio"},
		{name: "ratio below 0", cfg: on(func(c *Config) { c.SampleRatio = -0.1 }), want: "tracing.sample_ratio"},
		{name: "no scheme", cfg: on(func(c *Config) { c.Endpoint = "localhost:4318" }), want: "tracing.endpoint"},
		{name: "grpc scheme", cfg: on(func(c *Config) { c.Endpoint = "grpc://localhost:4317" }), want: "tracing.endpoint"},
		{name: "query", cfg: on(func(c *Config) { c.Endpoint = "http://localhost:4318/v1/traces?k=v" }), want: "tracing.endpoint"},
		{name: "credentials", cfg: on(func(c *Config) { c.Endpoint = "http://u:hunter2@localhost:4318" }), want: "credentials"},
		{name: "no service name", cfg: on(func(c *Config) { c.ServiceName = " " }), want: "tracing.service_name"},
		{name: "no timeout", cfg: on(func(c *Config) { c.Timeout = 0 }), want: "tracing.timeout"},
		{name: "bad header name", cfg: on(func(c *Config) { c.Headers = map[string]string{"x key": "v"} }), want: "tracing.headers"},
		{name: "header value with a line break", cfg: on(func(c *Config) { c.Headers = map[string]string{"x-key": "v\r\nx: y"} }), want: "tracing.headers.x-key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one naming %s", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error repeats a password: %v", err)
			}
		})
	}
}

// collector is a stand-in OTLP/HTTP collector: it keeps the export
// requests it is sent, and answers with status.
type collector struct {
	mu       sync.Mutex
	status   int
	requests []*collectortrace.ExportTraceServiceRequest
	problems []string
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		c.problems = append(c.problems, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
	}
	if r.Header.Get("X-Api-Key") != "k-123" {
		c.problems = append(c.problems, "no api key header")
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			c.problems = append(c.problems, err.Error())
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	if err != nil {
		c.problems = append(c.problems, err.Error())
	}
	var req collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &req); err != nil {
		c.problems = append(c.problems, "not an OTLP protobuf: "+err.Error())
	}
	c.requests = append(c.requests, &req)
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(c.status)
	if c.status == http.StatusOK {
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		_, _ = w.Write(out)
	}
}

func (c *collector) spans() (service string, spans []*tracepb.Span) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, req := range c.requests {
		for _, rs := range req.ResourceSpans {
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.Key == "service.name" {
					service = kv.Value.GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				spans = append(spans, ss.Spans...)
			}
		}
	}
	return service, spans
}

func startCollector(t *testing.T, status int) (*collector, *httptest.Server) {
	c := &collector{status: status}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return c, srv
}

// Spans reach an OTLP/HTTP endpoint, as protobuf on /v1/traces, when the
// tracer is shut down.
func TestSpansReachTheCollector(t *testing.T) {
	c, srv := startCollector(t, http.StatusOK)
	cfg := DefaultConfig()
	cfg.Enabled, cfg.SampleRatio, cfg.ServiceName = true, 1, "touchpoint-test"
	cfg.Endpoint = srv.URL // no path: /v1/traces is added
	cfg.Headers = map[string]string{"X-Api-Key": "k-123"}
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := tr.StartDecide(context.Background(), []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), nil)
	sctx := tr.Start(ctx, "features.lookup")
	tr.End(sctx, true)
	tr.EndDecide(ctx, 200, 2, true, "2026-11-30.1")

	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	problems := c.problems
	c.mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("the collector saw: %q", problems)
	}
	service, spans := c.spans()
	if service != "touchpoint-test" {
		t.Errorf("service.name %q", service)
	}
	byName := map[string]*tracepb.Span{}
	for _, s := range spans {
		byName[s.Name] = s
	}
	root, lookup := byName[SpanDecide], byName["features.lookup"]
	if len(spans) != 2 || root == nil || lookup == nil {
		t.Fatalf("spans %v, want the decide span and its lookup", spans)
	}
	wantTrace := []byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	if !bytes.Equal(root.TraceId, wantTrace) || !bytes.Equal(lookup.TraceId, wantTrace) {
		t.Errorf("trace ids %x %x, want the caller's", root.TraceId, lookup.TraceId)
	}
	if !bytes.Equal(lookup.ParentSpanId, root.SpanId) || root.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("lookup's parent %x, decide span %x kind %v", lookup.ParentSpanId, root.SpanId, root.Kind)
	}
	if lookup.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("the failed lookup has status %v", lookup.Status)
	}
	attrs := map[string]string{}
	for _, kv := range root.Attributes {
		attrs[kv.Key] = strings.Trim(kv.Value.String(), " ")
	}
	for _, k := range []string{AttrStatus, AttrPlacements, AttrCustomerKnown, AttrRuleset} {
		if attrs[k] == "" {
			t.Errorf("decide span lacks %s: %v", k, attrs)
		}
	}
}

// A collector that refuses spans costs a log line, not an error: the
// spans are dropped.
func TestRefusedExportIsLogged(t *testing.T) {
	c, srv := startCollector(t, http.StatusBadRequest)
	var logs bytes.Buffer
	cfg := DefaultConfig()
	cfg.Enabled, cfg.SampleRatio = true, 1
	cfg.Endpoint = srv.URL + "/v1/traces"
	cfg.Headers = map[string]string{"X-Api-Key": "k-123"}
	tr, err := New(cfg, WithLogger(zerolog.New(&logs)))
	if err != nil {
		t.Fatal(err)
	}
	tr.EndDecide(tr.StartDecide(context.Background(), nil, nil), 200, 1, false, "v1")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, spans := c.spans(); len(spans) != 1 {
		t.Errorf("the collector was sent %d spans, want 1", len(spans))
	}
	if !strings.Contains(logs.String(), "cannot export spans") || !strings.Contains(logs.String(), `"component":"tracing"`) {
		t.Errorf("log %q", logs.String())
	}
}
