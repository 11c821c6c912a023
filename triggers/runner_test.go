package triggers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/touchpoint-dev/touchpoint/delivery"
	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/rules"
)

// inbox is a Deliverer that keeps what it is given.
type inbox struct {
	mu   sync.Mutex
	msgs []Message
	ids  map[string]int
}

func (b *inbox) Deliver(_ context.Context, id string, body []byte) error {
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ids == nil {
		b.ids = map[string]int{}
	}
	b.ids[id]++
	b.msgs = append(b.msgs, m)
	return nil
}

func (b *inbox) sent() []Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Message(nil), b.msgs...)
}

// clock is a time the test moves.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time  { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) set(t time.Time) { c.ns.Store(t.UnixNano()) }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func track(id, customer, name string, at time.Time) features.Event {
	return features.Event{ID: id, CustomerID: customer, Type: name, Time: at, Applied: true}
}

// The trigger's story end to end, on the in-process queue and a real
// engine: the last cart update counts, a checkout cancels, the condition
// is checked when it fires, quiet hours defer an SMS to their end, and
// each firing is delivered once.
func TestRunnerFiresDueTriggers(t *testing.T) {
	store, err := features.LoadJSONL(strings.NewReader(strings.Join([]string{
		`{"id":"a","features":{"first_name":"Ann","cart_value":80}}`,
		`{"id":"b","features":{"first_name":"Ben","cart_value":80}}`,
		`{"id":"c","features":{"first_name":"Cem","cart_value":80}}`,
		`{"id":"d","features":{"first_name":"Dora","cart_value":10}}`,
		`{"id":"e","features":{"first_name":"Eva","timezone":"Europe/Berlin"}}`,
	}, "\n")+"\n"), "customers.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Config{RulesDir: "testdata/rules", SchemaPath: "testdata/features.yaml"}, store, zerolog.Nop(), engine.WithoutLearning())
	if err != nil {
		t.Fatal(err)
	}
	box := &inbox{}
	var clk clock
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	clk.set(t0)
	q := NewMemoryQueue()
	cfg := DefaultConfig()
	cfg.Every = time.Millisecond
	r := New(cfg, q, eng, func(rules.Delivery) (delivery.Deliverer, error) { return box, nil }, zerolog.Nop(), WithClock(clk.now))
	ctx := context.Background()

	events := []features.Event{
		track("1", "a", "cart_updated", t0),
		track("2", "b", "cart_updated", t0),
		track("3", "b", "checkout_completed", t0.Add(30*time.Minute)),
		track("4", "c", "cart_updated", t0),
		track("5", "c", "cart_updated", t0.Add(time.Hour)),
		track("6", "d", "cart_updated", t0),
		{ID: "7", CustomerID: "a", Type: "cart_updated", Time: t0.Add(time.Hour)}, // a retry: not applied now
	}
	if err := r.Observe(ctx, events); err != nil {
		t.Fatal(err)
	}
	if n, _ := q.Pending(ctx); n != 3 {
		t.Fatalf("pending = %d, want a, c and d (b checked out)", n)
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	clk.set(t0.Add(2*time.Hour + time.Second))
	waitFor(t, "a's reminder, and d held for a small cart", func() bool {
		return len(box.sent()) == 1 && r.Stats().Held[engine.HeldCondition] == 1
	})
	m := box.sent()[0]
	if m.CustomerID != "a" || m.Trigger != "cart_abandon_email" || m.Channel != "email" || len(m.Items) != 1 ||
		m.Items[0].Touchpoint != "cart_reminder" || !strings.Contains(string(m.Items[0].Content), "Ann, your cart is waiting") || m.DecisionID == "" {
		t.Errorf("a's message = %+v", m)
	}
	clk.set(t0.Add(3*time.Hour + time.Second))
	waitFor(t, "c's reminder, two hours after her last update", func() bool { return len(box.sent()) == 2 })
	if m := box.sent()[1]; m.CustomerID != "c" {
		t.Errorf("second message for %s, want c", m.CustomerID)
	}

	// At 22:30 in Berlin an SMS waits for 08:00 there.
	night := time.Date(2026, 12, 1, 21, 30, 0, 0, time.UTC)
	clk.set(night)
	if err := r.Observe(ctx, []features.Event{track("8", "e", "points_expiring", night)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the SMS deferred by quiet hours", func() bool { return r.Stats().Deferred == 1 })
	clk.set(time.Date(2026, 12, 2, 6, 59, 0, 0, time.UTC)) // 07:59 in Berlin
	looked := r.rounds.Load()
	waitFor(t, "the runner to look twice at 07:59", func() bool { return r.rounds.Load() >= looked+2 })
	if n := len(box.sent()); n != 2 {
		t.Fatalf("an SMS went out in quiet hours: %d messages", n)
	}
	clk.set(time.Date(2026, 12, 2, 7, 0, 1, 0, time.UTC))
	waitFor(t, "the SMS at 08:00 Berlin time", func() bool { return len(box.sent()) == 3 })
	if m := box.sent()[2]; m.CustomerID != "e" || m.Items[0].Touchpoint != "points_sms" {
		t.Errorf("the SMS = %+v", m)
	}
	waitFor(t, "the queue to empty", func() bool { n, _ := q.Pending(ctx); return n == 0 })
	for id, n := range box.ids {
		if n != 1 {
			t.Errorf("firing %s delivered %d times", id, n)
		}
	}
	st := r.Stats()
	if st.Scheduled != 6 || st.Cancelled != 1 || st.Delivered != 3 {
		t.Errorf("stats = %+v", st)
	}
}

// A firing claimed by a node that dies comes back when its lease ends,
// with the same id for the receiver to deduplicate by.
func TestMemoryQueueLeases(t *testing.T) {
	q := NewMemoryQueue()
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	q.Schedule(ctx, "t|a", t0)
	q.Schedule(ctx, "t|b", t0.Add(time.Minute))
	q.Schedule(ctx, "t|a", t0.Add(time.Second)) // the last event counts
	if c, _ := q.Claim(ctx, t0, time.Minute, 10); len(c) != 0 {
		t.Fatalf("claimed before due: %+v", c)
	}
	first, _ := q.Claim(ctx, t0.Add(time.Second), time.Minute, 10)
	if len(first) != 1 || first[0].Key != "t|a" {
		t.Fatalf("claim = %+v", first)
	}
	if again, _ := q.Claim(ctx, t0.Add(30*time.Second), time.Minute, 10); len(again) != 0 {
		t.Fatalf("a leased firing was claimed twice: %+v", again)
	}
	later, _ := q.Claim(ctx, t0.Add(2*time.Minute), time.Minute, 10)
	if len(later) != 2 || later[0].Key != "t|a" || FiringID(later[0]) != FiringID(first[0]) || later[0].Token == first[0].Token {
		t.Fatalf("after the lease: %+v", later)
	}
	q.Done(ctx, first[0]) // the dead node's late Done changes nothing
	if n, _ := q.Pending(ctx); n != 2 {
		t.Fatalf("pending = %d after a stale Done", n)
	}
	q.Schedule(ctx, "t|a", t0.Add(time.Hour))
	q.Defer(ctx, later[0], t0.Add(10*time.Minute)) // a newer schedule wins
	q.Done(ctx, later[1])
	c, _ := q.Claim(ctx, t0.Add(30*time.Minute), time.Minute, 10)
	if len(c) != 0 {
		t.Fatalf("the deferred firing replaced the newer schedule: %+v", c)
	}
	if c, _ := q.Claim(ctx, t0.Add(time.Hour), time.Minute, 10); len(c) != 1 {
		t.Fatalf("the newer schedule: %+v", c)
	}
}

// Rescheduling one key over and over keeps the heap near the number of
// keys pending, and claims take the earliest live firings only.
func TestMemoryQueueHeapStaysSmall(t *testing.T) {
	q := NewMemoryQueue()
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for i := range 10000 {
		q.Schedule(ctx, "t|hot", t0.Add(time.Duration(i)*time.Second))
	}
	for i := range 100 {
		q.Schedule(ctx, fmt.Sprintf("t|c%03d", i), t0.Add(time.Duration(i)*time.Minute))
	}
	q.Cancel(ctx, "t|c000")
	if len(q.heap) > 2*len(q.due)+1024 {
		t.Errorf("the heap holds %d entries for %d pending firings", len(q.heap), len(q.due))
	}
	got, _ := q.Claim(ctx, t0.Add(5*time.Minute), time.Minute, 100)
	var keys []string
	for _, c := range got {
		keys = append(keys, c.Key)
	}
	if strings.Join(keys, ",") != "t|c001,t|c002,t|c003,t|c004,t|c005" {
		t.Errorf("claimed %v; want c001 to c005 (c000 cancelled, hot due in hours)", keys)
	}
}
