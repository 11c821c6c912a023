package redisstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/touchpoint-dev/touchpoint/triggers"
)

// runTriggerSuite tests TriggerQueue. It is part of runSuite, so it runs on
// a standalone Redis and a Cluster alike. Each subtest has its own queue.
// The queue takes the time as an argument, so the tests pass it rather
// than wait: t0 is an arbitrary instant.
func runTriggerSuite(t *testing.T, s *Store, url string) {
	ctx := context.Background()
	t0 := time.UnixMilli(1_700_000_000_000)
	raw := rawClient(t, url)

	// empty checks that q holds nothing, claim hash included.
	empty := func(t *testing.T, q *TriggerQueue) {
		t.Helper()
		wantPending(t, q, 0)
		if n, err := raw.HLen(ctx, q.claim).Result(); n != 0 || err != nil {
			t.Errorf("claim hash has %d entries (%v); want none", n, err)
		}
	}

	t.Run("TriggerClaimOnce", func(t *testing.T) {
		q := s.TriggerQueue("once")
		k := triggers.Key("cart", "c1")
		schedule(t, q, k, t0.Add(10*time.Second))
		wantNone(t, q, t0.Add(10*time.Second-time.Millisecond))
		c := claimOne(t, q, t0.Add(10*time.Second), time.Minute, k, t0.Add(10*time.Second))
		if c.Token == "" {
			t.Fatal("claim has no token")
		}
		wantNone(t, q, t0.Add(10*time.Second))
		wantNone(t, q, t0.Add(time.Minute)) // leased until 10s + 1 min
		wantPending(t, q, 1)
		if err := q.Done(ctx, c); err != nil {
			t.Fatal(err)
		}
		empty(t, q)
		wantNone(t, q, t0.Add(time.Hour))

		if got, err := q.Claim(ctx, t0, time.Minute, 0); got != nil || err != nil {
			t.Errorf("Claim of 0 = %v, %v; want nothing", got, err)
		}
		if _, err := q.Claim(ctx, t0, 0, 1); err == nil {
			t.Error("Claim with no lease: no error")
		}
		if err := q.Schedule(ctx, "", t0); err == nil {
			t.Error("Schedule of an empty key: no error")
		}
	})

	t.Run("TriggerReschedule", func(t *testing.T) {
		q := s.TriggerQueue("reschedule")
		// The last schedule counts, later or earlier.
		schedule(t, q, "later", t0.Add(10*time.Second))
		schedule(t, q, "later", t0.Add(20*time.Second))
		schedule(t, q, "earlier", t0.Add(20*time.Second))
		schedule(t, q, "earlier", t0.Add(5*time.Second))
		wantPending(t, q, 2)
		done(t, q, claimOne(t, q, t0.Add(15*time.Second), time.Minute, "earlier", t0.Add(5*time.Second)))
		done(t, q, claimOne(t, q, t0.Add(20*time.Second), time.Minute, "later", t0.Add(20*time.Second)))

		schedule(t, q, "cancelled", t0.Add(time.Second))
		if err := q.Cancel(ctx, "cancelled"); err != nil {
			t.Fatal(err)
		}
		if err := q.Cancel(ctx, "unknown"); err != nil {
			t.Errorf("Cancel of an unknown key: %v", err)
		}
		wantNone(t, q, t0.Add(time.Hour))
		empty(t, q)
	})

	t.Run("TriggerLeaseExpiry", func(t *testing.T) {
		q := s.TriggerQueue("expiry")
		schedule(t, q, "k", t0)
		old := claimOne(t, q, t0, time.Second, "k", t0)
		wantNone(t, q, t0.Add(time.Second-time.Millisecond))
		// The claimant died: the firing comes due again, as due as before.
		cur := claimOne(t, q, t0.Add(2*time.Second), time.Second, "k", t0)
		if cur.Token == old.Token {
			t.Fatalf("the new claim has the old token %q", old.Token)
		}
		// The old claimant returns: it can end the claim no longer.
		done(t, q, old)
		if err := q.Defer(ctx, old, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		wantPending(t, q, 1)
		wantNone(t, q, t0.Add(3*time.Second-time.Millisecond))
		done(t, q, cur)
		empty(t, q)
		wantNone(t, q, t0.Add(2*time.Hour))
	})

	t.Run("TriggerScheduleWhileClaimed", func(t *testing.T) {
		q := s.TriggerQueue("while-claimed")
		schedule(t, q, "k", t0)
		c := claimOne(t, q, t0, time.Minute, "k", t0)
		schedule(t, q, "k", t0.Add(10*time.Second))
		// Due, but not while the first firing is being handled.
		wantNone(t, q, t0.Add(10*time.Second))
		wantPending(t, q, 2)
		done(t, q, c)
		wantPending(t, q, 1)
		done(t, q, claimOne(t, q, t0.Add(10*time.Second), time.Minute, "k", t0.Add(10*time.Second)))
		empty(t, q)

		// When the lease of the first runs out, the newer firing
		// replaces it, as a schedule replaces any pending firing.
		schedule(t, q, "k2", t0)
		claimOne(t, q, t0, time.Second, "k2", t0)
		schedule(t, q, "k2", t0.Add(5*time.Second))
		wantNone(t, q, t0.Add(2*time.Second))
		wantPending(t, q, 1)
		done(t, q, claimOne(t, q, t0.Add(5*time.Second), time.Minute, "k2", t0.Add(5*time.Second)))
		empty(t, q)
	})

	t.Run("TriggerDefer", func(t *testing.T) {
		q := s.TriggerQueue("defer")
		schedule(t, q, "k", t0)
		c := claimOne(t, q, t0, time.Minute, "k", t0)
		if err := q.Defer(ctx, c, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		wantPending(t, q, 1)
		wantNone(t, q, t0.Add(time.Hour-time.Millisecond))
		c = claimOne(t, q, t0.Add(time.Hour), time.Minute, "k", t0.Add(time.Hour))

		// Scheduled while deferring's claim was held: the newer schedule
		// stays, whether the deferral would be earlier or later.
		for _, deferral := range []time.Duration{90 * time.Minute, 3 * time.Hour} {
			schedule(t, q, "k", t0.Add(2*time.Hour))
			if err := q.Defer(ctx, c, t0.Add(deferral)); err != nil {
				t.Fatal(err)
			}
			wantPending(t, q, 1)
			wantNone(t, q, t0.Add(2*time.Hour-time.Millisecond))
			c = claimOne(t, q, t0.Add(2*time.Hour), time.Minute, "k", t0.Add(2*time.Hour))
		}
		done(t, q, c)
		empty(t, q)
	})

	t.Run("TriggerConcurrentClaims", func(t *testing.T) {
		// Two stores stand for two nodes draining one queue in batches.
		const firings, batch = 1000, 50
		queues := []*TriggerQueue{s.TriggerQueue("concurrent"), openStore(t, testConfig(url)).TriggerQueue("concurrent")}
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := w; i < firings; i += 4 {
					if err := queues[i%2].Schedule(ctx, fmt.Sprint("k", i), t0.Add(time.Duration(i)*time.Millisecond)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		wantPending(t, queues[0], firings)

		claimed := make([][]string, len(queues))
		start := make(chan struct{})
		for i, q := range queues {
			wg.Go(func() {
				<-start
				for {
					cs, err := q.Claim(ctx, t0.Add(time.Hour), time.Hour, batch)
					if err != nil {
						t.Error(err)
						return
					}
					if len(cs) == 0 {
						return
					}
					if len(cs) > batch {
						t.Errorf("claimed %d, more than %d", len(cs), batch)
					}
					for _, c := range cs {
						claimed[i] = append(claimed[i], c.Key)
						if err := q.Done(ctx, c); err != nil {
							t.Error(err)
							return
						}
					}
				}
			})
		}
		close(start)
		wg.Wait()
		all := slices.Concat(claimed...)
		slices.Sort(all)
		for i := 1; i < len(all); i++ {
			if all[i] == all[i-1] {
				t.Errorf("%s claimed twice", all[i])
			}
		}
		if all = slices.Compact(all); len(all) != firings {
			t.Errorf("%d firings claimed, want %d", len(all), firings)
		}
		t.Logf("claims per node: %d, %d", len(claimed[0]), len(claimed[1]))
		empty(t, queues[0])
	})

	t.Run("TriggerClaimBound", func(t *testing.T) {
		q := s.TriggerQueue("bound")
		const firings = 25
		for _, i := range rand.Perm(firings) {
			schedule(t, q, fmt.Sprintf("k%02d", i), t0.Add(time.Duration(i)*time.Second))
		}
		// Earliest first, in batches of at most 10.
		next := 0
		for _, want := range []int{10, 10, 5, 0} {
			cs, err := q.Claim(ctx, t0.Add(time.Hour), time.Minute, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(cs) != want {
				t.Fatalf("claimed %d, want %d", len(cs), want)
			}
			for _, c := range cs {
				if k := fmt.Sprintf("k%02d", next); c.Key != k || !c.Due.Equal(t0.Add(time.Duration(next)*time.Second)) {
					t.Errorf("claimed %s due %v; want %s due %v", c.Key, c.Due, k, t0.Add(time.Duration(next)*time.Second))
				}
				next++
				done(t, q, c)
			}
		}
		empty(t, q)
	})

	t.Run("TriggerQueueNames", func(t *testing.T) {
		// Names that would break a hash tag still keep each queue on one
		// slot (a Cluster refuses scripts across slots) and apart from the
		// others.
		names := []string{"", "%", "a}b", "{", "}{"}
		for _, name := range names {
			schedule(t, s.TriggerQueue(name), "k", t0)
		}
		for _, name := range names {
			q := s.TriggerQueue(name)
			wantPending(t, q, 1)
			done(t, q, claimOne(t, q, t0, time.Minute, "k", t0))
			empty(t, q)
		}
		if got, want := s.TriggerQueue("a}b").due, "tp:trig:{a%7Db}:due"; got != want {
			t.Errorf("due key %q, want %q", got, want)
		}
	})
}

func schedule(t *testing.T, q *TriggerQueue, key string, due time.Time) {
	t.Helper()
	if err := q.Schedule(context.Background(), key, due); err != nil {
		t.Fatal(err)
	}
}

func done(t *testing.T, q *TriggerQueue, c triggers.Claim) {
	t.Helper()
	if err := q.Done(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

// claimOne claims at now and wants exactly key, due at due.
func claimOne(t *testing.T, q *TriggerQueue, now time.Time, lease time.Duration, key string, due time.Time) triggers.Claim {
	t.Helper()
	cs, err := q.Claim(context.Background(), now, lease, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Key != key || !cs[0].Due.Equal(due) {
		t.Fatalf("Claim at %v = %+v; want %s due %v", now, cs, key, due)
	}
	return cs[0]
}

func wantNone(t *testing.T, q *TriggerQueue, now time.Time) {
	t.Helper()
	cs, err := q.Claim(context.Background(), now, time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 0 {
		t.Fatalf("Claim at %v = %+v; want nothing", now, cs)
	}
}

func wantPending(t *testing.T, q *TriggerQueue, want int64) {
	t.Helper()
	n, err := q.Pending(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Errorf("Pending = %d, want %d", n, want)
	}
}
