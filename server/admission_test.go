package server

import (
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// With max_inflight_decides decides in flight, the next one is refused at
// once with 503 overloaded and Retry-After; once they finish, decides are
// admitted again.
func TestAdmissionControl(t *testing.T) {
	const limit = 3
	cfg := testConfig()
	cfg.MaxInflightDecides = limit
	fd := newFakeDecider()
	// Only the decides in the handler count here, not this test's own
	// goroutines waiting for a CPU.
	ts := startServerWith(t, cfg, fd, Options{runnable: func() int64 { return 0 }})

	var wg sync.WaitGroup
	statuses := make(chan int, limit)
	for range limit {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each on its own client, so each has its own connection.
			c := &http.Client{Timeout: 30 * time.Second}
			resp, err := c.Post(ts.url+"/v1/decide", "application/json", strings.NewReader(`{"customer_id":"c-block","placements":["a"]}`))
			if err != nil {
				t.Errorf("blocked decide: %v", err)
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	released := false
	release := func() {
		if !released {
			released = true
			close(fd.release)
		}
	}
	defer func() { release(); wg.Wait() }()
	for range limit {
		select {
		case <-fd.entered:
		case <-time.After(20 * time.Second):
			t.Fatal("blocking decides never reached the engine")
		}
	}

	// The engine is never called for the refused request (c-block would
	// block), and nothing waits: the answer comes while the others hold.
	r := ts.do(t, http.MethodPost, "/v1/decide", `{"customer_id":"c-block","placements":["a"]}`,
		map[string]string{"Origin": "https://shop.example.com"})
	eb := expectError(t, r, http.StatusServiceUnavailable, "overloaded")
	if !strings.Contains(eb.Error.Message, "max_inflight_decides") {
		t.Errorf("message %q does not name the setting", eb.Error.Message)
	}
	if r.header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After = %q, want 1", r.header.Get("Retry-After"))
	}
	if r.header.Get("Access-Control-Allow-Origin") != "https://shop.example.com" {
		t.Errorf("the 503 lacks CORS headers, so a page cannot read it")
	}
	// Admission comes before decoding: even a malformed body is refused
	// as overloaded, at no decoding cost.
	expectError(t, ts.decide(t, `{not json`), http.StatusServiceUnavailable, "overloaded")
	// Other endpoints are not affected.
	if r := ts.do(t, http.MethodGet, "/healthz", "", nil); r.status != http.StatusOK {
		t.Errorf("healthz while overloaded: %d", r.status)
	}
	metrics := string(ts.do(t, http.MethodGet, "/metrics", "", nil).body)
	for _, want := range []string{
		"touchpoint_decide_overloaded_total 2",
		"touchpoint_decide_in_flight 3",
		`touchpoint_http_requests_total{endpoint="decide",status="503"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	release()
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusOK {
			t.Errorf("an admitted decide answered %d", s)
		}
	}
	if r := ts.decide(t, `{"customer_id":"c-1","placements":["a"]}`); r.status != http.StatusOK {
		t.Fatalf("decide after the others finished: %d %s", r.status, r.body)
	}
	if !strings.Contains(string(ts.do(t, http.MethodGet, "/metrics", "", nil).body), "touchpoint_decide_in_flight 0") {
		t.Errorf("in-flight gauge did not return to 0")
	}
	// One warning for the episode, not one per refusal.
	if n := strings.Count(ts.logs.String(), "too many in flight"); n != 1 {
		t.Errorf("%d overload warnings logged, want 1", n)
	}
}

// A server short of CPU has few decides in the handler but many requests
// waiting for a CPU. A queue past max_inflight_decides that lasts is
// overload: decides are refused at once while the queue holds more than
// half the bound, and admitted again once it has stayed short.
func TestAdmissionCountsTheCPUQueue(t *testing.T) {
	cfg := testConfig()
	cfg.MaxInflightDecides = 8
	var queue atomic.Int64
	ts := startServerWith(t, cfg, newFakeDecider(), Options{runnable: func() int64 { return queue.Load() }})
	const body = `{"customer_id":"c-1","placements":["a"]}`
	if r := ts.decide(t, body); r.status != http.StatusOK {
		t.Fatalf("decide with an empty queue: %d %s", r.status, r.body)
	}

	queue.Store(9)
	waitFor(t, 20*time.Second, "a decide refused for the CPU queue", func() bool {
		return ts.decide(t, body).status == http.StatusServiceUnavailable
	})
	r := ts.decide(t, body)
	eb := expectError(t, r, http.StatusServiceUnavailable, "overloaded")
	if !strings.Contains(eb.Error.Message, "waiting for a CPU") {
		t.Errorf("message %q does not say what was counted", eb.Error.Message)
	}

	queue.Store(3) // within half the bound: 3 waiting plus this decide
	waitFor(t, 20*time.Second, "decides admitted again", func() bool {
		return ts.decide(t, body).status == http.StatusOK
	})
}

// The queue's readings drive admission step by step: a backlog shorter
// than queueHold refuses nothing, a longer one is overload, under which a
// decide is refused while the handler and the queue hold more than half the
// bound, and overload ends when the queue has stayed within half the bound
// for queueHold.
func TestAdmissionHoldsOverloadOnALastingQueue(t *testing.T) {
	a := newAdmission(8)
	var queue int64
	reads := 0
	a.runnable = func() int64 { reads++; return queue }
	start := time.Unix(1_000_000, 0)
	ms := 0
	step := func(q int64, n int, want bool, what string) {
		t.Helper()
		queue = q
		for range n {
			now := start.Add(time.Duration(ms) * queueSampleEvery)
			ok := a.admit(now)
			if ok {
				a.done()
			}
			if ok != want {
				t.Fatalf("%s: at %d ms with %d waiting, admitted %v, want %v", what, ms, q, ok, want)
			}
			ms++
		}
	}
	hold := int(queueHold / queueSampleEvery)
	step(20, hold-1, true, "a backlog that clears within the hold")
	step(0, 1, true, "the backlog cleared")
	step(20, hold, true, "a backlog not yet held long enough")
	step(20, 1, false, "a backlog held past the hold is overload")
	step(3, 1, true, "overload: 3 waiting and this decide are half the bound")
	step(5, 1, false, "overload: 5 waiting are more than half the bound")
	step(2, hold+1, true, "overload, queue short again")
	step(20, 1, true, "overload ended after the queue stayed short")
	if reads != ms {
		t.Errorf("%d readings in %d ms, want one per millisecond", reads, ms)
	}
	// Within the millisecond no new reading is taken.
	a.admit(start.Add(time.Duration(ms-1)*queueSampleEvery + time.Microsecond))
	if reads != ms {
		t.Errorf("a reading was taken within the millisecond")
	}
}

// A panicking decide leaves the in-flight count as it found it.
func TestAdmissionSurvivesPanics(t *testing.T) {
	cfg := testConfig()
	cfg.MaxInflightDecides = 1
	ts := startServerWith(t, cfg, newFakeDecider(), Options{runnable: func() int64 { return 0 }})
	for range 3 {
		expectError(t, ts.decide(t, `{"customer_id":"c-panic","placements":["a"]}`), http.StatusInternalServerError, "internal")
	}
	if r := ts.decide(t, `{"customer_id":"c-1","placements":["a"]}`); r.status != http.StatusOK {
		t.Fatalf("decide after panics: %d %s", r.status, r.body)
	}
}

// A flood of malformed requests writes a bounded number of log lines: each
// one makes fasthttp log the connection it could not serve, and that log
// is sampled.
func TestMalformedRequestsLogBounded(t *testing.T) {
	ts := startServer(t, testConfig(), newFakeDecider())
	const requests = 1000
	start := time.Now()
	for i := range requests {
		conn, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		// Alternate two kinds: a request line that is not HTTP, and a body
		// over fasthttp's limit.
		req := "NOT HTTP AT ALL\r\n\r\n"
		if i%2 == 1 {
			req = "POST /v1/decide HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999\r\n\r\n"
		}
		if _, err := conn.Write([]byte(req)); err != nil {
			t.Fatalf("write: %v", err)
		}
		// Wait for the answer (or the close), so the server has handled
		// the request before the next one.
		buf := make([]byte, 512)
		for {
			if _, err := conn.Read(buf); err != nil {
				break
			}
		}
		conn.Close()
	}
	elapsed := time.Since(start)
	// fasthttp logs just after closing a connection, so a last line may
	// still come; the bound below has room for it.
	lines := func() int { return strings.Count(ts.logs.String(), "\n") }
	// Ten lines per second per sampled logger, plus the start line.
	bound := 10*(int(elapsed/time.Second)+2) + 2
	if n := lines(); n > bound || n >= requests/2 {
		t.Errorf("%d malformed requests in %s wrote %d log lines, want at most %d:\n%.2000s", requests, elapsed, n, bound, ts.logs.String())
	}
	if !strings.Contains(ts.logs.String(), `"source":"fasthttp"`) {
		t.Errorf("fasthttp's lines are not logged at all:\n%.2000s", ts.logs.String())
	}
}

// The scheduler's queue is read from runtime/metrics; if a Go release
// stopped reporting it, admission would silently count only the handler.
// Goroutines that spin outnumbering the CPUs must show up in the reading.
func TestRunnableGoroutinesAreRead(t *testing.T) {
	runnable := runnableGoroutines()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 * runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					// Yield but stay runnable: the test needs the
					// scheduler to see runnable goroutines.
					runtime.Gosched()
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	waitFor(t, 20*time.Second, "runnable goroutines in the scheduler's reading", func() bool { return runnable() > 0 })
}
