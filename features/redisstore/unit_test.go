package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/valyala/fastjson"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		url     string
		addrs   []string
		cluster bool
		tls     bool
		db      int
		user    string
		pass    string
	}{
		{url: "redis://localhost:6379/0", addrs: []string{"localhost:6379"}},
		{url: "redis://cache.internal", addrs: []string{"cache.internal:6379"}},
		{url: "redis://:s3cret@10.0.0.5:6380/2", addrs: []string{"10.0.0.5:6380"}, db: 2, pass: "s3cret"},
		{url: "rediss://app:p%40ss@redis.example:6380", addrs: []string{"redis.example:6380"}, tls: true, user: "app", pass: "p@ss"},
		{url: "redis+cluster://h1:7000,h2:7001", addrs: []string{"h1:7000", "h2:7001"}, cluster: true},
		{url: "redis+cluster://h1:7000", addrs: []string{"h1:7000"}, cluster: true},
		{url: "rediss+cluster://h1:7000/", addrs: []string{"h1:7000"}, cluster: true, tls: true},
		{url: "redis://h1:7000,h2:7001", addrs: []string{"h1:7000", "h2:7001"}, cluster: true},
		{url: "h1:7000, h2:7001,h3", addrs: []string{"h1:7000", "h2:7001", "h3:6379"}, cluster: true},
		{url: "127.0.0.1:6379", addrs: []string{"127.0.0.1:6379"}},
		{url: "redis://[::1]:6379", addrs: []string{"[::1]:6379"}},
		{url: "redis://[::1]", addrs: []string{"[::1]:6379"}},
	}
	for _, tt := range tests {
		got, err := parseURL(tt.url)
		if err != nil {
			t.Errorf("parseURL(%q): %v", tt.url, err)
			continue
		}
		if !reflect.DeepEqual(got.addrs, tt.addrs) || got.cluster != tt.cluster || (got.tls != nil) != tt.tls ||
			got.db != tt.db || got.username != tt.user || got.password != tt.pass {
			t.Errorf("parseURL(%q) = %+v", tt.url, got)
		}
	}
	for _, bad := range []string{
		"", "http://h:1", "redis://h:1/x", "redis://h:1/-1", "redis+cluster://h1:1,h2:2/3",
		"redis://h:1?dial_timeout=1", "redis://h:99999", "redis://h1:1,,h2:2", "redis://:1",
	} {
		if _, err := parseURL(bad); err == nil {
			t.Errorf("parseURL(%q) succeeded", bad)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	c := DefaultConfig()
	c.URL = "ftp://x"
	c.LookupTimeout = 0
	c.CounterDays = 0
	c.InvalidationChannel = ""
	c.Breaker.Failures = 0
	c.Breaker.MaxBackoff = time.Millisecond
	err := c.Validate()
	for _, want := range []string{"redis.url", "redis.lookup_timeout", "redis.counter_days",
		"redis.invalidation_channel", "redis.breaker.failures", "redis.breaker.max_backoff"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v; want it to mention %s", err, want)
		}
	}
	if _, err := Open(c); err == nil {
		t.Error("Open accepted an invalid config")
	}
}

func TestRedactedURL(t *testing.T) {
	for in, want := range map[string]string{
		"redis://:s3cret@h:6379/0":         "redis://:xxxxx@h:6379/0",
		"rediss://app:s3cret@h1:1,h2:2":    "rediss://app:xxxxx@h1:1,h2:2",
		"redis://app@h:6379":               "redis://app@h:6379",
		"redis://h:6379/0":                 "redis://h:6379/0",
		"h1:7000,h2:7001":                  "h1:7000,h2:7001",
		"redis://u:p@ss@h:1/0":             "redis://u:xxxxx@h:1/0",
		"redis+cluster://u:pw@h1:1,h2:2/0": "redis+cluster://u:xxxxx@h1:1,h2:2/0",
	} {
		c := Config{URL: in}
		if got := c.RedactedURL(); got != want {
			t.Errorf("RedactedURL(%q) = %q; want %q", in, got, want)
		}
	}
}

// breakerClock is a settable clock for breakers under test.
type breakerClock struct{ t time.Time }

func (c *breakerClock) now() time.Time          { return c.t }
func (c *breakerClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestBreaker(clock *breakerClock, log zerolog.Logger) *breaker {
	return newBreaker("read", BreakerConfig{Failures: 3, Span: time.Second, Backoff: time.Second, MaxBackoff: 4 * time.Second}, clock.now, log)
}

func (b *breaker) call(o outcome) (allowed bool) {
	ok, probe := b.allow()
	if ok {
		b.record(probe, o, nil)
	}
	return ok
}

func TestBreakerOpening(t *testing.T) {
	type step struct {
		advance time.Duration
		o       outcome
		times   int
	}
	tests := []struct {
		name  string
		steps []step
		want  string
	}{
		{"a single timeout degrades only", []step{{0, outcomeSlow, 1}}, StateDegraded},
		{"a stall times out every call at once", []step{{0, outcomeSlow, 500}}, StateDegraded},
		{"timeouts interleaved with successes", []step{
			{0, outcomeSlow, 2}, {300 * time.Millisecond, outcomeSuccess, 1},
			{300 * time.Millisecond, outcomeSlow, 2}, {300 * time.Millisecond, outcomeSuccess, 1},
			{300 * time.Millisecond, outcomeSlow, 2}, {300 * time.Millisecond, outcomeSuccess, 1},
		}, StateUp},
		{"timeouts for a span without a success", []step{
			{0, outcomeSlow, 2}, {600 * time.Millisecond, outcomeSlow, 1}, {500 * time.Millisecond, outcomeSlow, 1},
		}, StateDown},
		{"a span without success but too few failures", []step{
			{0, outcomeSlow, 1}, {5 * time.Second, outcomeSlow, 1},
		}, StateDegraded},
		{"connection failures open by number", []step{{0, outcomeFailure, 3}}, StateDown},
		{"a success resets the run", []step{
			{0, outcomeFailure, 2}, {0, outcomeSuccess, 1}, {0, outcomeFailure, 2},
		}, StateDegraded},
		{"neutral outcomes say nothing", []step{
			{0, outcomeFailure, 2}, {0, outcomeNeutral, 5}, {0, outcomeFailure, 1},
		}, StateDown},
		{"timeouts then connection failures", []step{
			{0, outcomeSlow, 5}, {0, outcomeFailure, 3},
		}, StateDown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := &breakerClock{t: time.Unix(1_000_000, 0)}
			b := newTestBreaker(clock, zerolog.Nop())
			for _, st := range tc.steps {
				clock.advance(st.advance)
				for range st.times {
					b.call(st.o)
				}
			}
			if got := b.stateName(); got != tc.want {
				t.Errorf("state = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestBreakerProbes(t *testing.T) {
	clock := &breakerClock{t: time.Unix(1_000_000, 0)}
	var logs strings.Builder
	b := newTestBreaker(clock, zerolog.New(&logs))
	for range 3 {
		b.call(outcomeFailure)
	}
	if b.stateName() != StateDown || b.opens.Load() != 1 {
		t.Fatalf("after 3 connection failures: %s, opens %d", b.stateName(), b.opens.Load())
	}
	if b.call(outcomeSuccess) {
		t.Fatal("open breaker let a call through before the backoff")
	}
	b.record(false, outcomeSuccess, nil) // a call from before it opened
	if b.stateName() != StateDown {
		t.Fatal("a call that started before the breaker opened closed it")
	}

	// After the backoff (±10%) exactly one probe goes through.
	clock.advance(1100 * time.Millisecond)
	ok, probe := b.allow()
	if !ok || !probe {
		t.Fatalf("after backoff: allow = %v, probe %v", ok, probe)
	}
	if ok2, _ := b.allow(); ok2 {
		t.Fatal("a second call went through while the probe was under way")
	}
	b.record(true, outcomeFailure, nil) // probe could not connect: backoff doubles to 2s
	clock.advance(1500 * time.Millisecond)
	if ok, _ := b.allow(); ok {
		t.Fatal("breaker let a probe through before the doubled backoff")
	}
	clock.advance(time.Second)
	ok, probe = b.allow()
	if !ok || !probe {
		t.Fatal("no probe after the doubled backoff")
	}
	b.record(true, outcomeSlow, nil) // a slow probe reopens without doubling
	if b.backoff != 2*time.Second {
		t.Errorf("backoff after a slow probe = %v, want 2s", b.backoff)
	}
	clock.advance(2200 * time.Millisecond)
	ok, probe = b.allow()
	if !ok || !probe {
		t.Fatal("no probe after the backoff")
	}
	b.record(true, outcomeNeutral, nil) // the probe's caller gave up: try another
	ok, probe = b.allow()
	if !ok || !probe {
		t.Fatal("no new probe after a neutral one")
	}
	b.record(true, outcomeSuccess, nil)
	if b.stateName() != StateUp {
		t.Fatalf("after a good probe: %s", b.stateName())
	}
	if b.opens.Load() != 1 {
		t.Errorf("opens = %d, want 1: failed probes reopen, they do not open anew", b.opens.Load())
	}
	// One line per change: opened once, closed once, whatever the probes.
	if got := strings.Count(logs.String(), "\n"); got != 2 ||
		!strings.Contains(logs.String(), `"level":"warn","breaker":"read"`) || !strings.Contains(logs.String(), "circuit breaker opened") ||
		!strings.Contains(logs.String(), "circuit breaker closed") {
		t.Errorf("logs:\n%s\nwant one line for opening and one for closing", logs.String())
	}

	// Backoff is capped.
	for range 3 {
		b.call(outcomeFailure)
	}
	for range 5 {
		clock.advance(10 * time.Second)
		ok, probe := b.allow()
		if !ok || !probe {
			t.Fatal("no probe")
		}
		b.record(true, outcomeFailure, nil)
	}
	if b.backoff != 4*time.Second {
		t.Errorf("backoff = %v, want the 4s cap", b.backoff)
	}
}

func TestClassify(t *testing.T) {
	live := context.Background()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	dialErr := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	tests := []struct {
		name    string
		ctx     context.Context
		err     error
		want    outcome
		notSent bool
	}{
		{"success", live, nil, outcomeSuccess, false},
		{"nil reply", live, redis.Nil, outcomeSuccess, false},
		{"connection closed by redis", live, io.EOF, outcomeFailure, false},
		{"refused", live, dialErr, outcomeFailure, true},
		{"dial timed out", live, &net.OpError{Op: "dial", Net: "tcp", Err: timeoutError{}}, outcomeFailure, true},
		{"wrapped dial error", live, fmt.Errorf("cannot look up: %w", dialErr), outcomeFailure, true},
		{"reset after sending", live, &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}, outcomeFailure, false},
		{"timeout", live, context.DeadlineExceeded, outcomeSlow, false},
		{"read timeout", live, &net.OpError{Op: "read", Net: "tcp", Err: timeoutError{}}, outcomeSlow, false},
		{"no connection free in time", live, redis.ErrPoolTimeout, outcomeSlow, true},
		{"caller gave up", gone, context.Canceled, outcomeNeutral, false},
		{"store closed", live, redis.ErrClosed, outcomeNeutral, true},
		{"loading", live, redisError("LOADING Redis is loading the dataset in memory"), outcomeFailure, false},
		{"cluster down", live, redisError("CLUSTERDOWN The cluster is down"), outcomeFailure, false},
		{"too many clients", live, redisError("ERR max number of clients reached"), outcomeFailure, false},
		{"wrong type", live, redisError("WRONGTYPE Operation against a key holding the wrong kind of value"), outcomeSuccess, false},
		{"script error", live, redisError("ERR user_script:1: Script attempted to access nonexistent global variable"), outcomeSuccess, false},
		{"part of a pipeline was sent", live, sentError{dialErr}, outcomeFailure, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(tc.ctx, tc.err); got != tc.want {
				t.Errorf("classify(%v) = %d, want %d", tc.err, got, tc.want)
			}
			if got := notSent(tc.err); got != tc.notSent {
				t.Errorf("notSent(%v) = %v, want %v", tc.err, got, tc.notSent)
			}
		})
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

type redisError string

func (e redisError) Error() string { return string(e) }
func (redisError) RedisError()     {}

func TestValueRoundTrip(t *testing.T) {
	var pp fastjson.ParserPool
	for _, v := range []features.Value{
		features.Number(0), features.Number(-12.5), features.Number(1e21), features.Number(1e-7),
		features.Number(2717.18), features.Number(math.MaxInt64), features.Number(5e-324),
		features.String(""), features.String("gold"), features.String(`a "quoted" \ path`),
		features.String("<b>&\u2028\n\t"), features.String("Zoë 🎉"),
		features.Bool(true), features.Bool(false),
		features.List(), features.List("shoes", "bags"), features.List("", `"x"`),
	} {
		enc, err := appendValue(nil, v)
		if err != nil {
			t.Fatalf("appendValue(%+v): %v", v, err)
		}
		got, ok := decodeValue(&pp, string(enc))
		if !ok || !reflect.DeepEqual(got, v) {
			t.Errorf("%+v → %s → %+v, %v", v, enc, got, ok)
		}
		// The stored form is what a customer file holds.
		rec, err := features.ParseRecord([]byte(`{"id":"x","features":{"v":` + string(enc) + `}}`))
		if err != nil || !reflect.DeepEqual(rec.Values.Map()["v"], v) {
			t.Errorf("ParseRecord of %s = %+v, %v; want %+v", enc, rec.Values.Map()["v"], err, v)
		}
	}
	for _, v := range []features.Value{features.Number(math.NaN()), features.Number(math.Inf(1)), {}} {
		if _, err := appendValue(nil, v); err == nil {
			t.Errorf("appendValue(%+v) succeeded", v)
		}
	}
	// What fastjson (and so features.ParseRecord) rejects; it is lenient
	// about a few forms, such as "01", and those decode as ParseRecord
	// would read them.
	for _, bad := range []string{"", "nul", "null", "{}", "[1]", "-", "1e", "NaN", "Infinity", "1e999", "\"\xff\"", "[\"a\",1]"} {
		if v, ok := decodeValue(&pp, bad); ok {
			t.Errorf("decodeValue(%q) = %+v, want failure", bad, v)
		}
	}
}

func TestEscapeTag(t *testing.T) {
	for in, want := range map[string]string{
		"c-000042": "c-000042",
		"a}b":      "a%7Db",
		"{x}":      "%7Bx%7D",
		"100%":     "100%25",
		"%7D":      "%257D",
	} {
		if got := escapeTag(in); got != want {
			t.Errorf("escapeTag(%q) = %q, want %q", in, got, want)
		}
	}
	// Every key of one customer shares its hash tag.
	k := keysFor("}{weird}")
	tag := func(key string) string {
		i := strings.IndexByte(key, '{')
		j := strings.IndexByte(key[i+1:], '}')
		return key[i+1 : i+1+j]
	}
	for _, key := range []string{k.counters(), k.consent(), k.pruned(), k.event("e}1")} {
		if tag(key) != tag(k.features()) || tag(key) == "" {
			t.Errorf("%s and %s have different hash tags", key, k.features())
		}
	}
}

func TestCounterField(t *testing.T) {
	f := counterField("impression", "rule:a|b", 20775)
	ev, subj, day, ok := parseCounterField(f)
	if !ok || ev != "impression" || subj != "rule:a|b" || day != 20775 {
		t.Errorf("parseCounterField(%q) = %q %q %d %v", f, ev, subj, day, ok)
	}
	for _, bad := range []string{"", "a", "a|b", "a|b|x", "a|b|99999999999"} {
		if _, _, _, ok := parseCounterField(bad); ok {
			t.Errorf("parseCounterField(%q) succeeded", bad)
		}
	}
}

func TestClientLogger(t *testing.T) {
	var logs strings.Builder
	l := newClientLogger(zerolog.New(&logs))
	for i := range 50 {
		l.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts", i)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 10 {
		t.Errorf("%d lines logged for 50 in a burst; want the 10 the sampler lets through", len(lines))
	}
	if want := `{"level":"warn","component":"redis-client","message":"redis: connection pool: failed to dial after 0 attempts"}`; lines[0] != want {
		t.Errorf("first line = %s, want %s", lines[0], want)
	}
}

// TestBreakerPeers: the read and write breakers share connections. One
// that opened because calls could not connect closes when the other's call
// reaches Redis; one that opened because calls were slow waits for its own
// probe, so slow lookups and fast writes stay apart.
func TestBreakerPeers(t *testing.T) {
	clock := &breakerClock{t: time.Unix(1_000_000, 0)}
	reads, writes := newTestBreaker(clock, zerolog.Nop()), newTestBreaker(clock, zerolog.Nop())
	reads.peer, writes.peer = writes, reads

	for range 3 {
		writes.call(outcomeFailure)
	}
	if writes.stateName() != StateDown {
		t.Fatal("write breaker did not open on connection failures")
	}
	reads.call(outcomeSuccess)
	if writes.stateName() != StateUp {
		t.Errorf("write breaker = %s after a lookup reached Redis; want it closed", writes.stateName())
	}

	for range 2 {
		reads.call(outcomeSlow)
	}
	clock.advance(2 * time.Second)
	reads.call(outcomeSlow)
	if reads.stateName() != StateDown {
		t.Fatal("read breaker did not open on slow lookups")
	}
	writes.call(outcomeSuccess)
	if reads.stateName() != StateDown {
		t.Errorf("read breaker = %s after a write succeeded; want it open until its own probe", reads.stateName())
	}
}
