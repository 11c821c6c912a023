package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
)

// fakeDecider answers deterministically from the request. Special customer
// ids trigger the behaviours tests need: c-panic panics, c-block blocks until
// release is closed, c-reqerr returns a *engine.RequestError, c-fail an
// internal error, c-degraded a decision degraded by the feature store and
// c-deadline one cut short by the decide deadline.
type fakeDecider struct {
	entered chan struct{}
	release chan struct{}

	mu         sync.Mutex
	reloadErr  error
	readyErr   error
	status     engine.Status
	ruleErrors []engine.RuleErrorCount
}

func newFakeDecider() *fakeDecider {
	return &fakeDecider{
		entered: make(chan struct{}, 1),
		release: make(chan struct{}),
		status: engine.Status{
			Version:     "2024-06-01.1",
			LoadedAt:    time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC),
			Files:       []string{"rules/cart.yaml", "rules/home.yaml"},
			Rules:       12,
			Touchpoints: 30,
			Placements:  4,
			Reloads:     4,
			FailedLoads: 1,

			ListsTruncated:   5,
			DeadlineExceeded: 2,
		},
		ruleErrors: []engine.RuleErrorCount{{Rule: "cart_abandon_coupon", Count: 3}},
	}
}

func (f *fakeDecider) Decide(ctx context.Context, req *engine.Request, d *engine.Decision) error {
	d.Placements = d.Placements[:0]
	d.Explain = nil
	d.Degraded, d.DegradedReasons = false, 0
	switch req.CustomerID {
	case "c-panic":
		panic("fake decider exploded")
	case "c-block":
		f.entered <- struct{}{}
		<-f.release
	case "c-reqerr":
		return &engine.RequestError{Code: "unknown_placement", Field: "placements[0].id", Message: `unknown placement "nope"`}
	case "c-fail":
		return errors.New("feature store on fire")
	case "c-degraded":
		d.Degraded, d.DegradedReasons = true, engine.DegradedFeatureStore
	case "c-deadline":
		d.Degraded, d.DegradedReasons = true, engine.DegradedRuleDeadline
	}
	d.ID = "d-" + req.CustomerID
	d.CustomerID = req.CustomerID
	d.Ruleset = "2024-06-01.1"
	d.KnownCustomer = strings.HasPrefix(req.CustomerID, "c-")
	for _, p := range req.Placements {
		pr := engine.PlacementResult{ID: p.ID}
		switch p.ID {
		case "empty":
		case "fallback":
			pr.Items = append(pr.Items, engine.Item{Touchpoint: "generic_banner", Kind: "banner", Rule: "ignored", Fallback: true, Content: []byte(`{}`)})
		default:
			n := max(p.Count, 1)
			for i := range n {
				pr.Items = append(pr.Items, engine.Item{
					Touchpoint: p.ID + "_tp" + strconv.Itoa(i),
					Kind:       "coupon",
					Rule:       "rule_" + p.ID,
					Score:      8,
					Content:    []byte(`{"text":"<b>10% off</b> & more"}`),
				})
			}
		}
		d.Placements = append(d.Placements, pr)
	}
	if req.Explain {
		d.Explain = &engine.Explanation{
			Rules: []engine.RuleTrace{
				{Rule: "cart_abandon_coupon", Action: "offer", Outcome: engine.OutcomeMatched, Score: 2},
				{Rule: "vip_only", Action: "suppress", Outcome: engine.OutcomeExpressionError, Error: "unknown feature <vip>"},
			},
			Candidates: []engine.CandidateTrace{
				{Placement: "cart_banner", Touchpoint: "cart_coupon_10", Rule: "cart_abandon_coupon", Priority: 10, Score: 16, Chosen: true, Reason: engine.ReasonChosen},
				{Placement: "cart_banner", Touchpoint: "cart_coupon_20", Rule: "cart_abandon_coupon", Priority: 5, Score: 1.5, Reason: engine.ReasonSuppressed, By: "vip_only"},
			},
		}
	}
	return nil
}

func (f *fakeDecider) Reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reloadErr != nil {
		f.status.FailedLoads++
		f.status.LastError = f.reloadErr.Error()
		return f.reloadErr
	}
	f.status.Reloads++
	f.status.Version = "2024-06-02.1"
	f.status.LoadedAt = time.Date(2024, 6, 2, 8, 30, 0, 0, time.UTC)
	return nil
}

func (f *fakeDecider) Status() engine.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

func (f *fakeDecider) Ready(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readyErr
}

func (f *fakeDecider) RuleErrors() []engine.RuleErrorCount {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]engine.RuleErrorCount(nil), f.ruleErrors...)
}

func (f *fakeDecider) setReloadErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reloadErr = err
}

func (f *fakeDecider) setReadyErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.readyErr = err
}

// syncBuffer is a log sink safe for the server's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

const testAdminKey = "test-admin-key-0123456789"

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.AdminKey = testAdminKey
	cfg.CORS.AllowedOrigins = []string{"https://shop.example.com"}
	return cfg
}

type testServer struct {
	srv    *Server
	addr   string
	url    string
	cancel context.CancelFunc
	done   chan error
	logs   *syncBuffer
	client *http.Client
}

// startServer runs a real server on a loopback port. Cleanup stops it and
// fails the test if Run does not return cleanly.
func startServer(t *testing.T, cfg Config, d Decider) *testServer {
	t.Helper()
	return startServerWith(t, cfg, d, Options{})
}

// startServerWith starts a server with extra options; the logger and cache
// stats are the test's own.
func startServerWith(t *testing.T, cfg Config, d Decider, opts Options) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	logs := &syncBuffer{}
	opts.Logger = zerolog.New(logs)
	opts.FeatureCache = fixedCache{}
	srv := New(cfg, d, opts)
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{
		srv:    srv,
		addr:   ln.Addr().String(),
		url:    "http://" + ln.Addr().String(),
		cancel: cancel,
		done:   make(chan error, 1),
		logs:   logs,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}},
	}
	go func() { ts.done <- srv.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		ts.client.CloseIdleConnections()
		select {
		case err := <-ts.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	return ts
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (ts *testServer) do(t *testing.T, method, path, body string, headers map[string]string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.url+path, rd)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// raw sends one request written by hand on a new connection: head is the
// request line and any headers, each ending in CRLF; Host and
// Content-Length (contentLength, which may promise more than body) are
// added. It is for requests Go's client will not send.
func (ts *testServer) raw(t *testing.T, head, body string, contentLength int) response {
	t.Helper()
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, head+"Host: test\r\nContent-Length: "+strconv.Itoa(contentLength)+"\r\n\r\n"+body); err != nil {
		t.Fatalf("write request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (ts *testServer) decide(t *testing.T, body string) response {
	t.Helper()
	return ts.do(t, http.MethodPost, "/v1/decide", body, map[string]string{"Content-Type": "application/json"})
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"error"`
}

// expectError checks status, JSON content type and error code, and returns
// the decoded error.
func expectError(t *testing.T, r response, status int, code string) errorBody {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var eb errorBody
	if err := json.Unmarshal(r.body, &eb); err != nil {
		t.Fatalf("error body is not JSON: %v; body %s", err, r.body)
	}
	if eb.Error.Code != code {
		t.Fatalf("error code = %q, want %q; body %s", eb.Error.Code, code, r.body)
	}
	if eb.Error.Message == "" {
		t.Errorf("error message is empty; body %s", r.body)
	}
	return eb
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// fixedCache reports the same feature cache figures on every scrape.
type fixedCache struct{}

func (fixedCache) Stats() features.CacheStats { return features.CacheStats{Hits: 42, Misses: 7} }
func (fixedCache) Usage() features.CacheUsage { return features.CacheUsage{Entries: 9, Bytes: 12345} }
