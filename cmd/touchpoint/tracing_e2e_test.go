package main

import (
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpSink is a stand-in OTLP/HTTP collector that keeps every span it is
// posted.
type otlpSink struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	bad   []string
}

func (s *otlpSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.URL.Path != "/v1/traces" || r.Header.Get("Authorization") != "Bearer collector-key" {
		s.bad = append(s.bad, r.URL.Path+" without the configured header")
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			s.bad = append(s.bad, err.Error())
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		body = zr
	}
	data, _ := io.ReadAll(body)
	var req collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &req); err != nil {
		s.bad = append(s.bad, "not OTLP protobuf: "+err.Error())
	}
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			s.spans = append(s.spans, ss.Spans...)
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

// With tracing configured, serve posts the spans of a sampled decide to
// the collector, at the latest when it stops; with sample_ratio 0 only
// requests whose caller sampled them are recorded.
func TestServeExportsTraces(t *testing.T) {
	sink := &otlpSink{}
	collector := httptest.NewServer(sink)
	defer collector.Close()
	dir := workspace(t)
	cfgPath := filepath.Join(dir, "tracing.yaml")
	cfg := "tracing:\n  enabled: true\n  endpoint: " + collector.URL + "\n  sample_ratio: 0\n" +
		"  headers: {Authorization: \"Bearer collector-key\"}\n  timeout: 20s\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, dir, "--config", cfgPath)

	const callerTrace = "0af7651916cd43dd8448eb211c80319c"
	for _, traceparent := range []string{"00-" + callerTrace + "-b7ad6b7169203331-01", "", "00-" + strings.Repeat("1", 32) + "-b7ad6b7169203331-00"} {
		req, _ := http.NewRequest(http.MethodPost, s.base+"/v1/decide", strings.NewReader(cartRequest))
		req.Header.Set("Content-Type", "application/json")
		if traceparent != "" {
			req.Header.Set("traceparent", traceparent)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("decide with traceparent %q: %d", traceparent, resp.StatusCode)
		}
	}

	// Stopping flushes what the batcher still holds.
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.waitExit(t, 30*time.Second)

	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.bad) > 0 {
		t.Errorf("the collector saw: %q", sink.bad)
	}
	names := map[string]bool{}
	for _, sp := range sink.spans {
		names[sp.Name] = true
		if got := hex.EncodeToString(sp.TraceId); got != callerTrace {
			t.Errorf("span %s in trace %s, want only the caller's sampled trace %s", sp.Name, got, callerTrace)
		}
	}
	for _, want := range []string{"POST /v1/decide", "features.lookup", "rules.evaluate"} {
		if !names[want] {
			t.Errorf("no %q span reached the collector; got %v\n%s", want, names, s.logs.String())
		}
	}
	if len(sink.spans) != 3 {
		t.Errorf("%d spans, want 3 (the embedded store makes no Redis calls)", len(sink.spans))
	}
}
