package delivery

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrDeadLettered is wrapped by the error Deliver returns once a message
// was handed to the dead letters: the firing is finished with, though not
// delivered.
var ErrDeadLettered = errors.New("dead-lettered")

// Response bodies are read only this far: enough for the connection to be
// reused after a typical reply, and a receiver that streams forever costs
// us a few KB, not the attempt's whole timeout.
const (
	maxDrain   = 4 << 10
	maxSnippet = 200 // of a refusal's body, quoted in the dead-letter reason
	userAgent  = "Touchpoint-Webhook/1"
)

// Webhook delivers messages as signed HTTP POSTs, retrying failures with
// backoff and dead-lettering what no attempt delivered. It is safe for
// concurrent use.
//
// An answer decides what happens next:
//
//   - 2xx: delivered.
//   - 5xx, 429, a transport error or a timeout: retried after a wait (the
//     receiver's Retry-After when given, capped by BackoffMax), until
//     MaxAttempts; then dead-lettered.
//   - Anything else, redirects included: the receiver refuses this
//     message, or has moved, and sending it again will not change that;
//     it is dead-lettered at once. Redirects are never followed, since the
//     new location was not configured, and following would send the
//     signed message to whoever the Location names.
//
// A cancelled context stops Deliver, between or during attempts, without
// dead-lettering: the firing is still leased and will be delivered again.
type Webhook struct {
	cfg       WebhookConfig
	secret    []byte
	dead      DeadLetters
	client    *http.Client
	transport *http.Transport
	now       func() time.Time
	wait      func(ctx context.Context, d time.Duration) error

	mu  sync.Mutex // guards rng, which is not safe for concurrent use
	rng *rand.Rand

	delivered    atomic.Uint64
	retries      atomic.Uint64
	deadLettered atomic.Uint64
}

// WebhookOption changes how NewWebhook builds a Webhook.
type WebhookOption func(*Webhook)

// WithSeed seeds the random source the backoff draws its jitter from, so
// a run's waits can be reproduced. Without it the seed is random.
func WithSeed(seed uint64) WebhookOption {
	return func(w *Webhook) { w.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
}

// withWait replaces the wait between attempts, so tests can see the
// delays asked for without spending them.
func withWait(wait func(ctx context.Context, d time.Duration) error) WebhookOption {
	return func(w *Webhook) { w.wait = wait }
}

// withClock replaces the clock signatures and Retry-After dates are read
// against.
func withClock(now func() time.Time) WebhookOption {
	return func(w *Webhook) { w.now = now }
}

// WebhookStats counts what a Webhook did since it was made.
type WebhookStats struct {
	// Delivered counts messages a receiver accepted.
	Delivered uint64
	// Retries counts attempts beyond each message's first.
	Retries uint64
	// DeadLettered counts messages handed to the dead letters.
	DeadLettered uint64
}

// NewWebhook returns a Webhook sending to cfg.URL, which hands what it
// cannot deliver to dead.
func NewWebhook(cfg WebhookConfig, dead DeadLetters, opts ...WebhookOption) (*Webhook, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid webhook configuration: %w", err)
	}
	if dead == nil {
		return nil, errors.New("a webhook needs a dead-letter sink, got nil")
	}
	transport := &http.Transport{
		Proxy:       http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		// Every request goes to one host, so the idle pool is kept per
		// host at the size of a busy node's concurrent deliveries.
		MaxIdleConns:           64,
		MaxIdleConnsPerHost:    64,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    cfg.Timeout,
		ForceAttemptHTTP2:      true,
		MaxResponseHeaderBytes: 64 << 10,
	}
	w := &Webhook{
		cfg:       cfg,
		secret:    bytes.Clone(cfg.Secret), // later changes to the caller's slice do not reach signatures
		dead:      dead,
		transport: transport,
		client: &http.Client{
			Transport: transport,
			Timeout:   cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		now:  time.Now,
		wait: sleep,
	}
	for _, opt := range opts {
		opt(w)
	}
	if w.rng == nil {
		var seed [32]byte
		crand.Read(seed[:]) // never fails, per its documentation
		w.rng = rand.New(rand.NewChaCha8(seed))
	}
	return w, nil
}

// Stats returns the counts so far.
func (w *Webhook) Stats() WebhookStats {
	return WebhookStats{
		Delivered:    w.delivered.Load(),
		Retries:      w.retries.Load(),
		DeadLettered: w.deadLettered.Load(),
	}
}

// Close closes the idle connections kept for reuse. Deliver still works
// after it, opening new ones.
func (w *Webhook) Close() error {
	w.transport.CloseIdleConnections()
	return nil
}

// Deliver sends body to the webhook until a 2xx answer, a refusal, the
// last attempt or ctx's end. It returns nil once delivered; an error
// wrapping ErrDeadLettered once dead-lettered; ctx's error, wrapped, if
// ctx ended first; and another error if dead-lettering failed, in which
// case the message is neither delivered nor kept. body is not retained
// after Deliver returns.
func (w *Webhook) Deliver(ctx context.Context, id string, body []byte) error {
	if err := checkID(id); err != nil {
		// No attempt can carry it, now or on the firing's next lease.
		return w.deadLetter(ctx, id, body, err.Error())
	}
	for attempt := 1; ; attempt++ {
		out := w.attempt(ctx, id, body)
		switch {
		case out.delivered:
			w.delivered.Add(1)
			return nil
		case ctx.Err() != nil:
			return fmt.Errorf("webhook message %q not delivered: %w", id, ctx.Err())
		case out.refused:
			return w.deadLetter(ctx, id, body, "refused: "+out.reason)
		case attempt >= w.cfg.MaxAttempts:
			return w.deadLetter(ctx, id, body, fmt.Sprintf("gave up after %s, the last: %s", attempts(attempt), out.reason))
		}
		if err := w.wait(ctx, w.delay(attempt, out)); err != nil {
			return fmt.Errorf("webhook message %q not delivered, stopped waiting to retry: %w", id, err)
		}
		w.retries.Add(1)
	}
}

// outcome is what one attempt came to.
type outcome struct {
	delivered bool
	refused   bool // not worth retrying
	reason    string
	// retryAfter is the receiver's Retry-After, when hasRetryAfter.
	retryAfter    time.Duration
	hasRetryAfter bool
}

func (w *Webhook) attempt(ctx context.Context, id string, body []byte) outcome {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		// The URL was validated, so this is not a passing condition.
		return outcome{refused: true, reason: fmt.Sprintf("cannot build the request: %v", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(HeaderDelivery, id)
	// Signed per attempt, so a retry an hour later is still within the
	// receiver's tolerance.
	req.Header.Set(HeaderSignature, Sign(w.secret, w.now(), body))
	resp, err := w.client.Do(req)
	if err != nil {
		return outcome{reason: w.describe(err)}
	}
	defer resp.Body.Close()
	code := resp.StatusCode
	if code >= 200 && code <= 299 {
		drain(resp.Body, 0)
		return outcome{delivered: true}
	}
	reason := fmt.Sprintf("HTTP %d %s", code, http.StatusText(code))
	if snippet := drain(resp.Body, maxSnippet); snippet != "" {
		reason += ": " + strconv.Quote(snippet)
	}
	if code == http.StatusTooManyRequests || code >= 500 {
		out := outcome{reason: reason}
		if h := resp.Header.Get("Retry-After"); h != "" {
			out.retryAfter, out.hasRetryAfter = parseRetryAfter(h, w.now())
		}
		return out
	}
	return outcome{refused: true, reason: reason}
}

// describe names a failed attempt's error for the dead-letter reason,
// without the URL, which may carry a token in its query.
func (w *Webhook) describe(err error) string {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Sprintf("timed out after %s", w.cfg.Timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return "POST failed: " + err.Error()
}

// delay is the wait after the failed attempt number attempt (from 1): the
// receiver's Retry-After if it gave one, else a random time up to the
// backoff cap ("full jitter"), so that many nodes retrying after one
// outage spread out instead of arriving together.
func (w *Webhook) delay(attempt int, out outcome) time.Duration {
	if out.hasRetryAfter {
		return min(out.retryAfter, w.cfg.BackoffMax)
	}
	limit := w.cfg.backoffCap(attempt - 1)
	w.mu.Lock()
	d := time.Duration(w.rng.Int64N(int64(limit) + 1))
	w.mu.Unlock()
	return d
}

func (w *Webhook) deadLetter(ctx context.Context, id string, body []byte, reason string) error {
	if err := w.dead.DeadLetter(ctx, id, body, reason); err != nil {
		return fmt.Errorf("webhook message %q not delivered (%s), and dead-lettering it failed: %w", id, reason, err)
	}
	w.deadLettered.Add(1)
	return fmt.Errorf("webhook message %q not delivered (%s): %w", id, reason, ErrDeadLettered)
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drain reads what is left of a response body, up to maxDrain bytes, and
// returns its first keep bytes as text. Reading to the end lets the
// connection be reused; the one byte beyond maxDrain lets a body of
// exactly maxDrain reach its end.
func drain(body io.Reader, keep int) string {
	var head []byte
	if keep > 0 {
		head = make([]byte, keep)
		n, _ := io.ReadFull(body, head)
		head = head[:n]
	}
	// A read error only means the connection is not reused.
	_, _ = io.CopyN(io.Discard, body, maxDrain+1-int64(len(head)))
	return strings.TrimSpace(strings.ToValidUTF8(string(head), "\uFFFD"))
}

// parseRetryAfter reads a Retry-After header, in seconds or an HTTP date
// relative to now.
func parseRetryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if secs, err := strconv.ParseUint(h, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		// An absurd number still means "a long time"; the caller caps it.
		const longest = 1 << 32
		return time.Duration(min(secs, longest)) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

func attempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return strconv.Itoa(n) + " attempts"
}

// checkID refuses ids that cannot be sent as a header value.
func checkID(id string) error {
	if id == "" {
		return errors.New("the message id is empty")
	}
	for i := range len(id) {
		if c := id[i]; c < ' ' || c == 0x7f {
			return fmt.Errorf("the message id %q has a control character, which a header cannot carry", id)
		}
	}
	return nil
}
