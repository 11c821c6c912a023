package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/touchpoint-dev/touchpoint/delivery"
)

// A generous bound for anything that should be prompt, so a busy machine
// does not fail the tests; the things bounded would otherwise take 30s.
const prompt = 10 * time.Second

// seen is one request a receiver got.
type seen struct {
	id, signature, contentType string
	body                       []byte
}

// receiver is a webhook receiver on loopback whose answer to the nth
// request (from 1) is up to respond.
type receiver struct {
	srv     *httptest.Server
	arrived chan int     // the number of each request, as it arrives
	conns   atomic.Int64 // connections opened to it
	mu      sync.Mutex
	seen    []seen
}

func newReceiver(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{arrived: make(chan int, 100)}
	rc.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		rc.seen = append(rc.seen, seen{
			id:          r.Header.Get(delivery.HeaderDelivery),
			signature:   r.Header.Get(delivery.HeaderSignature),
			contentType: r.Header.Get("Content-Type"),
			body:        body,
		})
		n := len(rc.seen)
		rc.mu.Unlock()
		select {
		case rc.arrived <- n:
		default:
		}
		respond(n, w, r)
	}))
	rc.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			rc.conns.Add(1)
		}
	}
	rc.srv.Start()
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) requests() []seen {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]seen(nil), rc.seen...)
}

// status answers the nth request with codes[n-1], the last code for every
// request after.
func status(codes ...int) func(int, http.ResponseWriter, *http.Request) {
	return func(n int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(codes[min(n, len(codes))-1])
	}
}

// deadSink records dead letters.
type deadSink struct {
	mu      sync.Mutex
	letters []deadLetter
	err     error // returned by DeadLetter when set
}

type deadLetter struct {
	id, reason string
	body       []byte
}

func (d *deadSink) DeadLetter(_ context.Context, id string, body []byte, reason string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return d.err
	}
	d.letters = append(d.letters, deadLetter{id: id, reason: reason, body: append([]byte(nil), body...)})
	return nil
}

func (d *deadSink) all() []deadLetter {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]deadLetter(nil), d.letters...)
}

// waits records the delays asked for between attempts, without waiting.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) wait(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d = append(w.d, d)
	return ctx.Err()
}

func (w *waits) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

// testConfig is fast: tiny backoff, and a timeout no busy machine reaches.
func testConfig(url string) delivery.WebhookConfig {
	c := delivery.DefaultWebhookConfig()
	c.URL = url
	c.Secret = []byte(testSecret)
	c.Timeout = 30 * time.Second
	c.BackoffBase = time.Millisecond
	c.BackoffMax = 20 * time.Millisecond
	return c
}

func newWebhook(t *testing.T, cfg delivery.WebhookConfig, dead delivery.DeadLetters, opts ...delivery.WebhookOption) *delivery.Webhook {
	t.Helper()
	w, err := delivery.NewWebhook(cfg, dead, opts...)
	if err != nil {
		t.Fatalf("NewWebhook: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

const testBody = `{"firing":"cart_abandoned|c-000042|1700000000","touchpoint":"cart_coupon_10"}`

func TestWebhookSendsSignedMessage(t *testing.T) {
	rc := newReceiver(t, status(http.StatusNoContent))
	dead := &deadSink{}
	w := newWebhook(t, testConfig(rc.srv.URL), dead)

	if err := w.Deliver(t.Context(), "f-1", []byte(testBody)); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver saw %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.id != "f-1" || r.contentType != "application/json" || string(r.body) != testBody {
		t.Errorf("receiver saw id %q, content type %q, body %s", r.id, r.contentType, r.body)
	}
	if err := delivery.Verify([]byte(testSecret), r.signature, r.body, time.Now(), delivery.DefaultTolerance); err != nil {
		t.Errorf("Verify(%q) = %v", r.signature, err)
	}
	if err := delivery.Verify([]byte("not-the-secret-0123"), r.signature, r.body, time.Now(), delivery.DefaultTolerance); !errors.Is(err, delivery.ErrInvalidSignature) {
		t.Errorf("Verify with the wrong secret = %v, want ErrInvalidSignature", err)
	}
	if got, want := w.Stats(), (delivery.WebhookStats{Delivered: 1}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
	if len(dead.all()) != 0 {
		t.Errorf("dead letters: %+v", dead.all())
	}
}

func TestWebhookRetriesServerErrors(t *testing.T) {
	rc := newReceiver(t, status(500, 500, 200))
	dead := &deadSink{}
	ws := &waits{}
	cfg := testConfig(rc.srv.URL)
	w := newWebhook(t, cfg, dead, delivery.WithWait(ws.wait))

	if err := w.Deliver(t.Context(), "f-2", []byte(testBody)); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	reqs := rc.requests()
	if len(reqs) != 3 {
		t.Fatalf("receiver saw %d requests, want 3", len(reqs))
	}
	for i, r := range reqs {
		if r.id != "f-2" || string(r.body) != testBody {
			t.Errorf("request %d: id %q, body %s", i+1, r.id, r.body)
		}
		if err := delivery.Verify(cfg.Secret, r.signature, r.body, time.Now(), delivery.DefaultTolerance); err != nil {
			t.Errorf("request %d: Verify = %v", i+1, err)
		}
	}
	if got, want := w.Stats(), (delivery.WebhookStats{Delivered: 1, Retries: 2}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
	d := ws.all()
	if len(d) != 2 || d[0] > cfg.BackoffBase || d[1] > 2*cfg.BackoffBase || d[0] < 0 || d[1] < 0 {
		t.Errorf("waits = %v, want one in [0, 1ms] then one in [0, 2ms]", d)
	}
	if len(dead.all()) != 0 {
		t.Errorf("dead letters: %+v", dead.all())
	}
}

func TestWebhookSignsEachAttemptAnew(t *testing.T) {
	rc := newReceiver(t, status(503, 503, 200))
	start := time.Unix(1700000000, 0)
	var ticks atomic.Int64
	clock := func() time.Time { return start.Add(time.Duration(ticks.Add(1)) * time.Hour) }
	ws := &waits{}
	cfg := testConfig(rc.srv.URL)
	w := newWebhook(t, cfg, &deadSink{}, delivery.WithClock(clock), delivery.WithWait(ws.wait))

	if err := w.Deliver(t.Context(), "f-3", []byte(testBody)); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	for i, r := range rc.requests() {
		// Each attempt reads the clock once, an hour on from the last.
		at := start.Add(time.Duration(i+1) * time.Hour)
		if err := delivery.Verify(cfg.Secret, r.signature, r.body, at, time.Second); err != nil {
			t.Errorf("attempt %d, signature %q: Verify at %s = %v", i+1, r.signature, at.UTC(), err)
		}
	}
}

func TestWebhookDeadLettersRefusals(t *testing.T) {
	tests := []struct {
		name   string
		code   int
		reason string
	}{
		{"bad request", http.StatusBadRequest, "HTTP 400 Bad Request"},
		{"unauthorized", http.StatusUnauthorized, "HTTP 401"},
		{"gone", http.StatusGone, "HTTP 410"},
		{"request timeout is a 4xx too", http.StatusRequestTimeout, "HTTP 408"},
		{"found", http.StatusFound, "HTTP 302 Found"},
		{"moved permanently", http.StatusMovedPermanently, "HTTP 301"},
		{"permanent redirect", http.StatusPermanentRedirect, "HTTP 308"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var followed atomic.Int64
			rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/elsewhere" {
					followed.Add(1)
					return
				}
				if tc.code >= 300 && tc.code < 400 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tc.code)
				io.WriteString(w, `{"error":"unknown template"}`)
			})
			dead := &deadSink{}
			ws := &waits{}
			w := newWebhook(t, testConfig(rc.srv.URL+"/hook"), dead, delivery.WithWait(ws.wait))

			err := w.Deliver(t.Context(), "f-4", []byte(testBody))
			if !errors.Is(err, delivery.ErrDeadLettered) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("Deliver = %v, want ErrDeadLettered naming %q", err, tc.reason)
			}
			if n := len(rc.requests()); n != 1 || followed.Load() != 0 {
				t.Errorf("receiver saw %d requests (%d at the redirect target), want 1 and none there", n, followed.Load())
			}
			letters := dead.all()
			if len(letters) != 1 || letters[0].id != "f-4" || string(letters[0].body) != testBody {
				t.Fatalf("dead letters = %+v, want f-4 with its body", letters)
			}
			if r := letters[0].reason; !strings.Contains(r, "refused") || !strings.Contains(r, tc.reason) || !strings.Contains(r, "unknown template") {
				t.Errorf("reason = %q, want the refusal, %q and the receiver's words", r, tc.reason)
			}
			if got, want := w.Stats(), (delivery.WebhookStats{DeadLettered: 1}); got != want {
				t.Errorf("Stats() = %+v, want %+v", got, want)
			}
			if len(ws.all()) != 0 {
				t.Errorf("waited %v before dead-lettering a refusal", ws.all())
			}
		})
	}
}

func TestWebhookGivesUpAfterMaxAttempts(t *testing.T) {
	rc := newReceiver(t, status(http.StatusServiceUnavailable))
	dead := &deadSink{}
	ws := &waits{}
	cfg := testConfig(rc.srv.URL)
	cfg.MaxAttempts = 3
	w := newWebhook(t, cfg, dead, delivery.WithWait(ws.wait))

	err := w.Deliver(t.Context(), "f-5", []byte(testBody))
	if !errors.Is(err, delivery.ErrDeadLettered) {
		t.Fatalf("Deliver = %v, want ErrDeadLettered", err)
	}
	if n := len(rc.requests()); n != 3 {
		t.Errorf("receiver saw %d requests, want 3", n)
	}
	letters := dead.all()
	if len(letters) != 1 || !strings.Contains(letters[0].reason, "gave up after 3 attempts") ||
		!strings.Contains(letters[0].reason, "HTTP 503") {
		t.Errorf("dead letters = %+v, want one giving up after 3 attempts at HTTP 503", letters)
	}
	if got, want := w.Stats(), (delivery.WebhookStats{Retries: 2, DeadLettered: 1}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
	if len(ws.all()) != 2 {
		t.Errorf("waits = %v, want 2 (none after the last attempt)", ws.all())
	}
}

// hanging answers the requests numbered in hang only once the client
// gives up on them, and the others with 200.
func hanging(t *testing.T, hang ...int) func(int, http.ResponseWriter, *http.Request) {
	release := make(chan struct{})
	// Runs before the server's Close (cleanups run last first), so a
	// handler still waiting cannot hold Close up.
	t.Cleanup(func() { close(release) })
	return func(n int, w http.ResponseWriter, r *http.Request) {
		for _, h := range hang {
			if n == h {
				select {
				case <-r.Context().Done():
				case <-release:
				}
				return
			}
		}
	}
}

func TestWebhookRetriesTimeouts(t *testing.T) {
	rc := newReceiver(t, hanging(t, 1))
	dead := &deadSink{}
	cfg := testConfig(rc.srv.URL)
	// Long enough for a prompt answer on a busy machine, short enough to
	// wait out once.
	cfg.Timeout = time.Second
	w := newWebhook(t, cfg, dead)

	if err := w.Deliver(t.Context(), "f-6", []byte(testBody)); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if got, want := w.Stats(), (delivery.WebhookStats{Delivered: 1, Retries: 1}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}

	rc = newReceiver(t, hanging(t, 1, 2))
	cfg.URL = rc.srv.URL
	cfg.MaxAttempts = 2
	w = newWebhook(t, cfg, dead)
	err := w.Deliver(t.Context(), "f-7", []byte(testBody))
	if !errors.Is(err, delivery.ErrDeadLettered) {
		t.Fatalf("Deliver = %v, want ErrDeadLettered", err)
	}
	if letters := dead.all(); len(letters) != 1 || !strings.Contains(letters[0].reason, "timed out after 1s") {
		t.Errorf("dead letters = %+v, want one that timed out after 1s", letters)
	}
}

func TestWebhookRetriesBrokenConnections(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}
	})
	dead := &deadSink{}
	cfg := testConfig(rc.srv.URL)
	cfg.MaxAttempts = 2
	w := newWebhook(t, cfg, dead, delivery.WithWait((&waits{}).wait))
	if err := w.Deliver(t.Context(), "f-8", []byte(testBody)); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if got, want := w.Stats(), (delivery.WebhookStats{Delivered: 1, Retries: 1}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}

	// Nothing listening: every attempt fails to connect.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.URL = "http://" + ln.Addr().String() + "/hook?token=s3cr3t"
	ln.Close()
	w = newWebhook(t, cfg, dead, delivery.WithWait((&waits{}).wait))
	if err := w.Deliver(t.Context(), "f-9", []byte(testBody)); !errors.Is(err, delivery.ErrDeadLettered) {
		t.Fatalf("Deliver = %v, want ErrDeadLettered", err)
	}
	letters := dead.all()
	if len(letters) != 1 || !strings.Contains(letters[0].reason, "POST failed") || strings.Contains(letters[0].reason, "s3cr3t") {
		t.Errorf("dead letters = %+v, want one POST failure that does not quote the URL", letters)
	}
}

func TestWebhookHonoursRetryAfter(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name       string
		code       int
		retryAfter string
		backoffMax time.Duration
		want       time.Duration // -1: a jittered wait within BackoffBase
	}{
		{"seconds", http.StatusTooManyRequests, "1", 30 * time.Second, time.Second},
		{"zero", http.StatusTooManyRequests, "0", 30 * time.Second, 0},
		{"on a 503", http.StatusServiceUnavailable, "7", 30 * time.Second, 7 * time.Second},
		{"capped", http.StatusTooManyRequests, "120", 5 * time.Second, 5 * time.Second},
		{"absurd", http.StatusTooManyRequests, "99999999999999999999999", time.Hour, time.Hour},
		{"http date", http.StatusTooManyRequests, now.Add(3 * time.Second).Format(http.TimeFormat), 30 * time.Second, 3 * time.Second},
		{"past date", http.StatusTooManyRequests, now.Add(-time.Hour).Format(http.TimeFormat), 30 * time.Second, 0},
		{"unreadable", http.StatusTooManyRequests, "soon", 30 * time.Second, -1},
		{"negative", http.StatusTooManyRequests, "-5", 30 * time.Second, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
				if n == 1 {
					w.Header().Set("Retry-After", tc.retryAfter)
					w.WriteHeader(tc.code)
				}
			})
			ws := &waits{}
			cfg := testConfig(rc.srv.URL)
			cfg.BackoffMax = tc.backoffMax
			w := newWebhook(t, cfg, &deadSink{}, delivery.WithWait(ws.wait), delivery.WithClock(func() time.Time { return now }))
			if err := w.Deliver(t.Context(), "f-10", []byte(testBody)); err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			d := ws.all()
			if len(d) != 1 {
				t.Fatalf("waits = %v, want one", d)
			}
			if tc.want < 0 {
				if d[0] < 0 || d[0] > cfg.BackoffBase {
					t.Errorf("wait = %s, want a backoff within [0, %s]", d[0], cfg.BackoffBase)
				}
			} else if d[0] != tc.want {
				t.Errorf("wait = %s, want %s", d[0], tc.want)
			}
		})
	}
}

func TestWebhookRetryAfterReallyWaits(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	w := newWebhook(t, testConfig(rc.srv.URL), &deadSink{})
	start := time.Now()
	if err := w.Deliver(t.Context(), "f-11", []byte(testBody)); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	// The cap of the test config (20ms) applies, not the second asked.
	if elapsed := time.Since(start); elapsed < 20*time.Millisecond || elapsed > prompt {
		t.Errorf("Deliver took %s, want the 20ms cap at least and well under %s", elapsed, prompt)
	}
}

func TestWebhookBackoffJitter(t *testing.T) {
	rc := newReceiver(t, status(http.StatusBadGateway))
	cfg := testConfig(rc.srv.URL)
	cfg.MaxAttempts = 10
	cfg.BackoffBase, cfg.BackoffMax = time.Millisecond, 20*time.Millisecond
	run := func(seed uint64) []time.Duration {
		ws := &waits{}
		w := newWebhook(t, cfg, &deadSink{}, delivery.WithSeed(seed), delivery.WithWait(ws.wait))
		if err := w.Deliver(t.Context(), "f-12", []byte(testBody)); !errors.Is(err, delivery.ErrDeadLettered) {
			t.Fatalf("Deliver = %v, want ErrDeadLettered", err)
		}
		return ws.all()
	}
	a := run(42)
	if len(a) != cfg.MaxAttempts-1 {
		t.Fatalf("waits = %v, want %d", a, cfg.MaxAttempts-1)
	}
	var sum time.Duration
	for n, d := range a {
		limit := delivery.BackoffCap(cfg, n)
		if d < 0 || d > limit {
			t.Errorf("wait before retry %d = %s, want within [0, %s]", n, d, limit)
		}
		sum += d
	}
	// Full jitter spreads the waits over their range: they add up to about
	// half the caps' sum (1+2+4+8+16+4·20 = 111ms), not to nothing or all.
	if sum < 10*time.Millisecond || sum > 101*time.Millisecond {
		t.Errorf("waits %v add up to %s, want them spread over [0, cap]", a, sum)
	}
	if b := run(42); fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("the same seed gave %v, then %v", a, b)
	}
	if c := run(43); fmt.Sprint(a) == fmt.Sprint(c) {
		t.Errorf("seeds 42 and 43 gave the same waits %v", a)
	}
}

func TestWebhookCancelDuringBackoff(t *testing.T) {
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	dead := &deadSink{}
	cfg := testConfig(rc.srv.URL)
	cfg.BackoffMax = time.Minute // so the wait is the 30s asked for
	w := newWebhook(t, cfg, dead)

	cancelAfterFirstAttempt(t, rc, w, "f-13")
	if len(dead.all()) != 0 || w.Stats() != (delivery.WebhookStats{}) {
		t.Errorf("dead letters %+v, stats %+v, want none", dead.all(), w.Stats())
	}
	if n := len(rc.requests()); n != 1 {
		t.Errorf("receiver saw %d requests, want 1", n)
	}
}

func TestWebhookCancelDuringAttempt(t *testing.T) {
	rc := newReceiver(t, hanging(t, 1))
	dead := &deadSink{}
	w := newWebhook(t, testConfig(rc.srv.URL), dead)

	cancelAfterFirstAttempt(t, rc, w, "f-14")
	if len(dead.all()) != 0 {
		t.Errorf("dead letters %+v, want none", dead.all())
	}
}

func TestWebhookCancelledBeforehand(t *testing.T) {
	rc := newReceiver(t, status(200))
	dead := &deadSink{}
	w := newWebhook(t, testConfig(rc.srv.URL), dead)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := w.Deliver(ctx, "f-15", []byte(testBody)); !errors.Is(err, context.Canceled) {
		t.Errorf("Deliver = %v, want context.Canceled", err)
	}
	if len(rc.requests()) != 0 || len(dead.all()) != 0 {
		t.Errorf("receiver saw %d requests, dead letters %+v, want none", len(rc.requests()), dead.all())
	}
}

func TestWebhookDeadLetterFailure(t *testing.T) {
	rc := newReceiver(t, status(http.StatusUnprocessableEntity))
	sinkErr := errors.New("dead-letter store is down")
	w := newWebhook(t, testConfig(rc.srv.URL), &deadSink{err: sinkErr})
	err := w.Deliver(t.Context(), "f-16", []byte(testBody))
	if !errors.Is(err, sinkErr) || errors.Is(err, delivery.ErrDeadLettered) {
		t.Errorf("Deliver = %v, want the sink's error and not ErrDeadLettered", err)
	}
	if got := w.Stats(); got.DeadLettered != 0 {
		t.Errorf("Stats() = %+v, want nothing dead-lettered", got)
	}
}

func TestWebhookDeadLettersUnsendableID(t *testing.T) {
	rc := newReceiver(t, status(200))
	dead := &deadSink{}
	w := newWebhook(t, testConfig(rc.srv.URL), dead)
	for _, id := range []string{"", "f-17\r\nX-Injected: 1"} {
		if err := w.Deliver(t.Context(), id, []byte(testBody)); !errors.Is(err, delivery.ErrDeadLettered) {
			t.Errorf("Deliver(%q) = %v, want ErrDeadLettered", id, err)
		}
	}
	if len(rc.requests()) != 0 || len(dead.all()) != 2 {
		t.Errorf("receiver saw %d requests, dead letters %+v; want none sent, both dead-lettered", len(rc.requests()), dead.all())
	}
}

func TestWebhookReusesConnections(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n%3 == 0 {
			w.WriteHeader(http.StatusInternalServerError)
		}
		// Bodies up to the drained size, the exact size included.
		io.WriteString(w, strings.Repeat("x", []int{0, 100, 4 << 10}[n%3]))
	})
	w := newWebhook(t, testConfig(rc.srv.URL), &deadSink{}, delivery.WithWait((&waits{}).wait))
	for i := range 6 {
		if err := w.Deliver(t.Context(), "f-18-"+strconv.Itoa(i), []byte(testBody)); err != nil {
			t.Fatalf("Deliver: %v", err)
		}
	}
	if got := w.Stats(); got.Delivered != 6 || got.Retries == 0 {
		t.Errorf("Stats() = %+v, want 6 delivered after some retries", got)
	}
	if n := rc.conns.Load(); n != 1 {
		t.Errorf("%d connections for %d requests, want 1", n, len(rc.requests()))
	}
}

func TestWebhookStopsReadingAnEndlessAnswer(t *testing.T) {
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("y", 1<<10))
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	w := newWebhook(t, testConfig(rc.srv.URL), &deadSink{})
	start := time.Now()
	if err := w.Deliver(t.Context(), "f-19", []byte(testBody)); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	// The attempt's 30s timeout would end it otherwise.
	if elapsed := time.Since(start); elapsed > prompt {
		t.Errorf("Deliver took %s reading an endless answer", elapsed)
	}
}

func TestWebhookConcurrentDeliveries(t *testing.T) {
	var mu sync.Mutex
	tries := map[string]int{}
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		id := r.Header.Get(delivery.HeaderDelivery)
		tries[id]++
		first := tries[id] == 1
		mu.Unlock()
		if first {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	w := newWebhook(t, testConfig(rc.srv.URL), &deadSink{})
	const n = 20
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs <- w.Deliver(t.Context(), "f-20-"+strconv.Itoa(i), []byte(testBody)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Deliver: %v", err)
		}
	}
	if got, want := w.Stats(), (delivery.WebhookStats{Delivered: n, Retries: n}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

func TestNewWebhookRefuses(t *testing.T) {
	cfg := testConfig("http://127.0.0.1:1/")
	if _, err := delivery.NewWebhook(cfg, nil); err == nil || !strings.Contains(err.Error(), "dead-letter") {
		t.Errorf("NewWebhook without dead letters = %v, want an error", err)
	}
	cfg.Secret = []byte("short")
	if _, err := delivery.NewWebhook(cfg, &deadSink{}); err == nil || !strings.Contains(err.Error(), "webhook.secret_env") {
		t.Errorf("NewWebhook with a short secret = %v, want an error naming webhook.secret_env", err)
	}
}

func TestWebhookKeepsItsOwnSecret(t *testing.T) {
	rc := newReceiver(t, status(200))
	cfg := testConfig(rc.srv.URL)
	secret := []byte(testSecret)
	cfg.Secret = secret
	w := newWebhook(t, cfg, &deadSink{})
	secret[0] = 'X' // the caller reuses its buffer
	if err := w.Deliver(t.Context(), "f-21", []byte(testBody)); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	r := rc.requests()[0]
	if err := delivery.Verify([]byte(testSecret), r.signature, r.body, time.Now(), delivery.DefaultTolerance); err != nil {
		t.Errorf("Verify = %v", err)
	}
}

func TestDeadLettersFunc(t *testing.T) {
	var got string
	var dl delivery.DeadLetters = delivery.DeadLettersFunc(func(_ context.Context, id string, body []byte, reason string) error {
		got = id + " " + string(body) + " " + reason
		return nil
	})
	if err := dl.DeadLetter(t.Context(), "f-22", []byte("{}"), "gave up"); err != nil || got != "f-22 {} gave up" {
		t.Errorf("DeadLetter = %v, recorded %q", err, got)
	}
}

// cancelAfterFirstAttempt delivers a message, cancels its context once the
// first attempt reaches rc, and checks that Deliver stops promptly with the
// context's error and dead-letters nothing.
func cancelAfterFirstAttempt(t *testing.T, rc *receiver, w *delivery.Webhook, id string) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Deliver(ctx, id, []byte(testBody)) }()
	select {
	case <-rc.arrived:
	case <-time.After(prompt):
		t.Fatal("the first attempt never arrived")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || errors.Is(err, delivery.ErrDeadLettered) {
			t.Errorf("Deliver = %v, want context.Canceled and no dead letter", err)
		}
	case <-time.After(prompt):
		t.Fatal("Deliver kept going after its context was cancelled")
	}
}
