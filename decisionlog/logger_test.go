package decisionlog

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
)

// waitTimeout bounds every wait on the writer goroutine: generous, since a
// busy machine may not schedule it for a while.
const waitTimeout = 30 * time.Second

// memSink keeps the lines it is given. When gate is set, each write first
// reports that it started, on entered, and then waits for the test to
// release it.
type memSink struct {
	sinkCounters
	mu      sync.Mutex
	lines   []string
	changed chan struct{}
	gate    chan struct{}
	entered chan struct{}
	closed  bool
}

func newMemSink() *memSink {
	return &memSink{changed: make(chan struct{}, 1)}
}

func (m *memSink) name() string { return "mem" }

func (m *memSink) write(ctx context.Context, b *batch) {
	if m.gate != nil {
		m.entered <- struct{}{}
		select {
		case <-m.gate:
		case <-ctx.Done():
			m.failed(ctx.Err(), b.len())
			return
		}
	}
	m.mu.Lock()
	for i := range b.len() {
		m.lines = append(m.lines, string(b.line(i)))
	}
	m.mu.Unlock()
	m.written.Add(uint64(b.len()))
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

func (m *memSink) close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	return nil
}

func (m *memSink) snapshot() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.lines)
}

// waitLines waits until the sink holds at least n lines.
func (m *memSink) waitLines(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		if l := m.snapshot(); len(l) >= n {
			return l
		}
		select {
		case <-m.changed:
		case <-deadline.C:
			t.Fatalf("the sink got %d lines, want %d", len(m.snapshot()), n)
		}
	}
}

func testConfig() Config {
	c := DefaultConfig()
	c.Enabled = true
	c.Node = "node-a"
	c.File.Path = "unused" // the tests' sinks replace it
	c.CloseTimeout = waitTimeout
	return c
}

func newLogger(t *testing.T, cfg Config, opts Options) *Logger {
	t.Helper()
	l, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// sampleDecision is a two-placement decision with a model, a fallback, a
// held-back candidate and every kind of context value.
func sampleDecision() (*engine.Request, *engine.Decision) {
	req := &engine.Request{
		CustomerID: "c-000042",
		Placements: []engine.PlacementRequest{{ID: "cart_banner", Count: 2}, {ID: "hero"}},
		Context: []engine.ContextField{
			{Name: "page", Value: features.String("/cart")},
			{Name: "cart_value", Value: features.Number(82.5)},
			{Name: "returning", Value: features.Bool(true)},
			{Name: "tags", Value: features.List("sale", `quo"te`)},
		},
		Log: true,
	}
	d := &engine.Decision{
		ID: "0192a7c3e4f5a1b2c3d4000000000001", CustomerID: "c-000042", Ruleset: "v-3f2a", KnownCustomer: true,
		Placements: []engine.PlacementResult{{ID: "cart_banner", Experiment: "cart_coupon_test", Variant: "ten_percent"}, {ID: "hero"}},
		Degraded:   true, DegradedReasons: engine.DegradedRuleDeadline,
		Logged: []engine.LoggedCandidate{
			{Placement: 0, Touchpoint: "coupon_10", Rule: "cart_coupons", Score: 0.62, Reason: engine.ReasonChosen, Chosen: true, Propensity: 1, Model: "redeem", ModelOutput: 0.73,
				Experiment: "cart_coupon_test", Variant: "ten_percent"},
			{Placement: 0, Touchpoint: "coupon_big", Rule: "cart_coupons", Score: 0.41, Reason: engine.ReasonLostArbitration, Model: "redeem", ModelOutput: 0.98},
			{Placement: 0, Touchpoint: "coupon_20", Rule: "vip", Reason: engine.ReasonSuppressed},
			{Placement: 1, Touchpoint: "free_shipping", Reason: engine.ReasonFallback, Chosen: true, Propensity: 1},
		},
	}
	return req, d
}

var sampleTime = time.Date(2026, 12, 3, 10, 4, 5, 123456789, time.FixedZone("CET", 3600))

// lineShape mirrors a decision log line for decoding.
type lineShape struct {
	DecisionID    string         `json:"decision_id"`
	Time          string         `json:"time"`
	Node          string         `json:"node"`
	Ruleset       string         `json:"ruleset"`
	CustomerID    *string        `json:"customer_id"`
	CustomerHash  *string        `json:"customer_hash"`
	KnownCustomer bool           `json:"known_customer"`
	Degraded      []string       `json:"degraded"`
	Context       map[string]any `json:"context"`
	Placements    []struct {
		ID         string `json:"id"`
		Count      int    `json:"count"`
		Experiment string `json:"experiment"`
		Variant    string `json:"variant"`
		Candidates []struct {
			Touchpoint  string   `json:"touchpoint"`
			Rule        string   `json:"rule"`
			Score       float64  `json:"score"`
			Reason      string   `json:"reason"`
			Chosen      bool     `json:"chosen"`
			Propensity  *float64 `json:"propensity"`
			Model       string   `json:"model"`
			ModelOutput *float64 `json:"model_output"`
			Experiment  string   `json:"experiment"`
			Variant     string   `json:"variant"`
		} `json:"candidates"`
	} `json:"placements"`
}

func decodeLine(t *testing.T, line string) lineShape {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields()
	var s lineShape
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("line %s: %v", line, err)
	}
	return s
}

func TestLineShape(t *testing.T) {
	mem := newMemSink()
	l := newLogger(t, testConfig(), Options{sinks: []sink{mem}})
	req, d := sampleDecision()
	if !l.Log(req, d, sampleTime) {
		t.Fatal("Log refused a decision with an empty queue")
	}
	// The logger copied what it needs: the caller's memory is reused at once.
	req.Context[0].Value.Str = "/overwritten"
	d.Logged[0].Touchpoint = "overwritten"

	line := mem.waitLines(t, 1)[0]
	if strings.Contains(line, "\n") {
		t.Fatalf("a line holds a newline: %q", line)
	}
	s := decodeLine(t, line)
	if s.DecisionID != "0192a7c3e4f5a1b2c3d4000000000001" || s.Node != "node-a" || s.Ruleset != "v-3f2a" ||
		s.CustomerID == nil || *s.CustomerID != "c-000042" || s.CustomerHash != nil || !s.KnownCustomer {
		t.Errorf("header fields: %s", line)
	}
	if s.Time != "2026-12-03T09:04:05.123456789Z" {
		t.Errorf("time %q, want UTC RFC 3339 with nanoseconds", s.Time)
	}
	if !reflect.DeepEqual(s.Degraded, []string{"rule_deadline"}) {
		t.Errorf("degraded %v", s.Degraded)
	}
	wantCtx := map[string]any{"page": "/cart", "cart_value": 82.5, "returning": true, "tags": []any{"sale", `quo"te`}}
	if !reflect.DeepEqual(s.Context, wantCtx) {
		t.Errorf("context %v, want %v", s.Context, wantCtx)
	}
	if len(s.Placements) != 2 || s.Placements[0].ID != "cart_banner" || s.Placements[0].Count != 2 ||
		s.Placements[1].ID != "hero" || s.Placements[1].Count != 0 {
		t.Fatalf("placements: %s", line)
	}
	if s.Placements[0].Experiment != "cart_coupon_test" || s.Placements[0].Variant != "ten_percent" || s.Placements[1].Experiment != "" {
		t.Errorf("the cart banner counted for an arm, the hero for none: %s", line)
	}
	cart, hero := s.Placements[0].Candidates, s.Placements[1].Candidates
	if len(cart) != 3 || len(hero) != 1 {
		t.Fatalf("candidates: %s", line)
	}
	c := cart[0]
	if c.Touchpoint != "coupon_10" || c.Rule != "cart_coupons" || c.Score != 0.62 || c.Reason != "chosen" || !c.Chosen ||
		c.Propensity == nil || *c.Propensity != 1 || c.Model != "redeem" || c.ModelOutput == nil || *c.ModelOutput != 0.73 ||
		c.Experiment != "cart_coupon_test" || c.Variant != "ten_percent" {
		t.Errorf("chosen candidate: %+v", c)
	}
	c = cart[1]
	if c.Touchpoint != "coupon_big" || c.Reason != "lost_arbitration" || c.Chosen || c.Propensity != nil ||
		c.ModelOutput == nil || *c.ModelOutput != 0.98 || c.Score != 0.41 {
		t.Errorf("losing candidate: %+v", c)
	}
	c = cart[2]
	if c.Touchpoint != "coupon_20" || c.Rule != "vip" || c.Reason != "suppressed" || c.Model != "" || c.ModelOutput != nil {
		t.Errorf("held-back candidate: %+v", c)
	}
	c = hero[0]
	if c.Touchpoint != "free_shipping" || c.Rule != "" || c.Reason != "fallback" || !c.Chosen || c.Propensity == nil || *c.Propensity != 1 {
		t.Errorf("fallback: %+v", c)
	}
	// Nothing of the customer's features: the line holds no field but
	// the ones decoded above (DisallowUnknownFields), and a top-level key
	// check guards against a nested "features" object too.
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(line), &top); err != nil {
		t.Fatal(err)
	}
	for k := range top {
		if !slices.Contains([]string{"decision_id", "time", "node", "ruleset", "customer_id", "known_customer", "degraded", "context", "placements"}, k) {
			t.Errorf("unexpected key %q", k)
		}
	}
	if strings.Contains(line, "features") {
		t.Errorf("the line mentions features: %s", line)
	}
}

// An undegraded decision has no degraded key, and a decision without
// candidates lists its placements empty.
func TestLineMinimal(t *testing.T) {
	mem := newMemSink()
	l := newLogger(t, testConfig(), Options{sinks: []sink{mem}})
	req := &engine.Request{CustomerID: "visitor-1", Placements: []engine.PlacementRequest{{ID: "hero"}}}
	d := &engine.Decision{ID: "x1", CustomerID: "visitor-1", Ruleset: "v1"}
	l.Log(req, d, sampleTime)
	line := mem.waitLines(t, 1)[0]
	want := `{"decision_id":"x1","time":"2026-12-03T09:04:05.123456789Z","node":"node-a","ruleset":"v1","customer_id":"visitor-1","known_customer":false,"context":{},"placements":[{"id":"hero","candidates":[]}]}`
	if line != want {
		t.Errorf("line\n%s\nwant\n%s", line, want)
	}
}

func TestHashedCustomerIDs(t *testing.T) {
	hashOf := func(key, id string) string {
		t.Helper()
		cfg := testConfig()
		cfg.HashCustomerIDs = true
		mem := newMemSink()
		l := newLogger(t, cfg, Options{sinks: []sink{mem}, HashKey: []byte(key)})
		req, d := sampleDecision()
		d.CustomerID = id
		l.Log(req, d, sampleTime)
		line := mem.waitLines(t, 1)[0]
		s := decodeLine(t, line)
		if s.CustomerID != nil || s.CustomerHash == nil {
			t.Fatalf("hashed line: %s", line)
		}
		if strings.Contains(line, id) {
			t.Fatalf("the hashed line still holds the id: %s", line)
		}
		if len(*s.CustomerHash) != 2*HashBytes {
			t.Fatalf("hash %q is not %d hex digits", *s.CustomerHash, 2*HashBytes)
		}
		return *s.CustomerHash
	}
	const k1, k2 = "key-one-0123456789abcdef", "key-two-0123456789abcdef"
	a := hashOf(k1, "c-000042")
	if b := hashOf(k1, "c-000042"); a != b {
		t.Errorf("same key, same id: %s and %s", a, b)
	}
	if b := hashOf(k2, "c-000042"); a == b {
		t.Errorf("two keys give the same hash %s", a)
	}
	if b := hashOf(k1, "c-000043"); a == b {
		t.Errorf("two ids give the same hash %s", a)
	}
	// HMAC-SHA256 truncated to HashBytes: whoever holds the key can join
	// the log to their own ids.
	mac := hmac.New(sha256.New, []byte(k1))
	mac.Write([]byte("c-000042"))
	if want := hex.EncodeToString(mac.Sum(nil)[:HashBytes]); a != want {
		t.Errorf("hash %s, want %s", a, want)
	}
}

func TestSampleShare(t *testing.T) {
	for _, share := range []float64{0.01, 0.1, 0.5, 0.9} {
		cfg := testConfig()
		cfg.Sample = share
		l := newLogger(t, cfg, Options{sinks: []sink{newMemSink()}})
		l2 := newLogger(t, cfg, Options{sinks: []sink{newMemSink()}})
		const n = 100000
		kept := 0
		for range n {
			k := l.Sample()
			if k != l2.Sample() {
				t.Fatalf("share %v: two loggers disagree on the same decision", share)
			}
			if k {
				kept++
			}
		}
		if got := float64(kept) / n; math.Abs(got-share) > 0.01 {
			t.Errorf("share %v: kept %v", share, got)
		}
		if st := l.Stats(); st.SampledOut != uint64(n-kept) {
			t.Errorf("share %v: sampled out %d, want %d", share, st.SampledOut, n-kept)
		}
	}
	l := newLogger(t, testConfig(), Options{sinks: []sink{newMemSink()}})
	for range 1000 {
		if !l.Sample() {
			t.Fatal("sample 1 left a decision out")
		}
	}
}

// A full queue drops and counts, and Log returns at once while the sink
// is stuck.
func TestFullQueueDrops(t *testing.T) {
	mem := newMemSink()
	mem.gate, mem.entered = make(chan struct{}), make(chan struct{}, 1)
	cfg := testConfig()
	cfg.Queue = 4
	l := newLogger(t, cfg, Options{sinks: []sink{mem}})
	req, d := sampleDecision()

	// The first decision reaches the sink, which holds the writer.
	if !l.Log(req, d, sampleTime) {
		t.Fatal("first Log refused")
	}
	select {
	case <-mem.entered:
	case <-time.After(waitTimeout):
		t.Fatal("the writer never reached the sink")
	}
	// Its entry is free again; four more fill the queue, the rest drop.
	for i := range 4 {
		if !l.Log(req, d, sampleTime) {
			t.Fatalf("Log %d refused with room in the queue", i)
		}
	}
	for i := range 10 {
		if l.Log(req, d, sampleTime) {
			t.Fatalf("Log %d accepted into a full queue", i)
		}
	}
	if st := l.Stats(); st.Dropped != 10 || st.Queued != 4 {
		t.Errorf("stats %+v, want 10 dropped and 4 queued", st)
	}
	// Released, the writer gets through the queue.
	close(mem.gate)
	mem.waitLines(t, 5)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Dropped != 10 || st.Sinks[0].Written != 5 || st.Sinks[0].Errors != 0 {
		t.Errorf("stats after close %+v", st)
	}
}

// Close writes everything queued before it returns, and then refuses.
func TestCloseDrains(t *testing.T) {
	mem := newMemSink()
	mem.gate, mem.entered = make(chan struct{}), make(chan struct{}, 1)
	cfg := testConfig()
	cfg.Queue = 1000
	l := newLogger(t, cfg, Options{sinks: []sink{mem}})
	req, d := sampleDecision()
	for range 600 {
		if !l.Log(req, d, sampleTime) {
			t.Fatal("Log refused")
		}
	}
	// Let the sink go only once Close has started: everything is queued
	// or being written, none of it yet in the mem.
	go func() {
		for range mem.entered {
		}
	}()
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	close(mem.gate)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * waitTimeout):
		t.Fatal("Close did not return")
	}
	close(mem.entered)
	if n := len(mem.snapshot()); n != 600 {
		t.Errorf("after Close the sink has %d lines, want 600", n)
	}
	if !mem.closed {
		t.Error("the sink was not closed")
	}
	if l.Log(req, d, sampleTime) {
		t.Error("Log after Close accepted a decision")
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// A sink that never comes back does not hold Close past its timeout.
func TestCloseTimeout(t *testing.T) {
	mem := newMemSink()
	mem.gate, mem.entered = make(chan struct{}), make(chan struct{}, 100)
	cfg := testConfig()
	cfg.CloseTimeout = 50 * time.Millisecond
	l, err := New(cfg, Options{sinks: []sink{mem}})
	if err != nil {
		t.Fatal(err)
	}
	req, d := sampleDecision()
	l.Log(req, d, sampleTime)
	<-mem.entered
	l.Log(req, d, sampleTime)
	if err := l.Close(); err == nil {
		t.Error("Close reported success with the sink stuck")
	}
	if st := l.Stats(); st.Dropped != 1 || st.Sinks[0].Errors != 1 {
		t.Errorf("stats %+v, want the queued decision dropped and the stuck write failed", st)
	}
}

// A failing sink is counted; the other sink still gets every line.
func TestSinkErrorCounted(t *testing.T) {
	good := newMemSink()
	bad := &failingSink{sinkCounters: newSinkCounters(testLogger(), "bad")}
	l := newLogger(t, testConfig(), Options{sinks: []sink{bad, good}})
	req, d := sampleDecision()
	for range 3 {
		l.Log(req, d, sampleTime)
	}
	good.waitLines(t, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	st := l.Stats()
	if st.Sinks[0].Errors == 0 || st.Sinks[0].Written != 0 || st.Sinks[1].Written != 3 {
		t.Errorf("stats %+v", st)
	}
}

type failingSink struct{ sinkCounters }

func (f *failingSink) name() string { return "bad" }
func (f *failingSink) write(_ context.Context, b *batch) {
	f.failed(errors.New("disk full"), b.len())
}
func (f *failingSink) close() error { return nil }

// holdWriter logs one decision into l and waits until the writer is stuck
// in sink, which must be gated; from then on the test alone takes entries
// off the queue.
func holdWriter(t testing.TB, l *Logger, mem *memSink) {
	t.Helper()
	req, d := sampleDecision()
	l.Log(req, d, sampleTime)
	select {
	case <-mem.entered:
	case <-time.After(waitTimeout):
		t.Fatal("the writer never reached the sink")
	}
}

// gatedSink is a memSink that holds every write until its gate closes;
// the test must close it before the logger's Close.
func gatedSink() *memSink {
	mem := newMemSink()
	mem.gate, mem.entered = make(chan struct{}), make(chan struct{}, 1)
	return mem
}

// A warm logger copies a decision without allocating.
func TestLogDoesNotAllocate(t *testing.T) {
	mem := gatedSink()
	defer close(mem.gate)
	l := newLogger(t, testConfig(), Options{sinks: []sink{mem}})
	holdWriter(t, l, mem)
	req, d := sampleDecision()
	if n := testing.AllocsPerRun(100, func() {
		if !l.Log(req, d, sampleTime) {
			t.Fatal("Log refused")
		}
		l.release(<-l.queue)
	}); n != 0 {
		t.Errorf("Log allocates %v times", n)
	}
}

func TestFileSinkRotates(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.File.Path = filepath.Join(dir, "decisions.jsonl")
	cfg.File.MaxSizeMB = 1
	cfg.File.MaxBackups = 0
	cfg.File.MaxAge = 0
	cfg.Queue = 4000
	l, err := New(cfg, Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	// About 2.5 MB of lines, two rotations; the queue holds them all.
	const n = 4000
	logAndClose(t, l, n)
	files, err := filepath.Glob(filepath.Join(dir, "decisions*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("files %v: want the current one and at least two rotated", files)
	}
	seen := map[string]bool{}
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 1<<20 {
			t.Errorf("%s is %d bytes, over max_size_mb", f, st.Size())
		}
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			// Every line whole: rotation never splits one.
			s := decodeLine(t, sc.Text())
			seen[s.DecisionID] = true
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct decisions across the files, want %d", len(seen), n)
	}
	if st := l.Stats(); st.Sinks[0].Written != n || st.Sinks[0].Errors != 0 || st.Sinks[0].Name != "file" {
		t.Errorf("stats %+v", st)
	}
}

// The file is rotated once it has been written to for rotate_every.
func TestFileSinkRotatesByAge(t *testing.T) {
	dir := t.TempDir()
	c := DefaultConfig().File
	c.Path = filepath.Join(dir, "d.jsonl")
	c.RotateEvery = time.Hour
	f := newFileSink(c, testLogger())
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.now = func() time.Time { return now }
	b := &batch{}
	add := func(s string) {
		b.reset()
		b.buf = append(b.buf, s+"\n"...)
		b.ends = append(b.ends, len(b.buf))
		f.write(context.Background(), b)
	}
	add(`{"n":1}`)
	now = now.Add(59 * time.Minute)
	add(`{"n":2}`)
	now = now.Add(time.Minute)
	add(`{"n":3}`)
	if err := f.close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "d*.jsonl"))
	if len(files) != 2 {
		t.Fatalf("files %v, want two", files)
	}
	cur, err := os.ReadFile(c.Path)
	if err != nil {
		t.Fatal(err)
	}
	if string(cur) != "{\"n\":3}\n" {
		t.Errorf("current file %q", cur)
	}
}

func testLogger() zerolog.Logger { return zerolog.Nop() }

// logAndClose logs n copies of the sample decision, ids id-0 to id-(n-1),
// and closes the logger, which writes them all.
func logAndClose(t *testing.T, l *Logger, n int) {
	t.Helper()
	req, d := sampleDecision()
	for i := range n {
		d.ID = "id-" + strconv.Itoa(i)
		if !l.Log(req, d, sampleTime) {
			t.Fatal("Log refused")
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
