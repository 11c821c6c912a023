package redisstore

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// testConfig gives lookups more time than production would: the race
// detector and a busy machine make milliseconds unreliable.
func testConfig(url string) Config {
	cfg := DefaultConfig()
	cfg.URL = url
	cfg.LookupTimeout = 2 * time.Second
	cfg.WriteTimeout = 5 * time.Second
	return cfg
}

func openStore(tb testing.TB, cfg Config, opts ...Option) *Store {
	tb.Helper()
	s, err := Open(cfg, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// rawClient talks to the same Redis as s, for checking keys directly.
func rawClient(tb testing.TB, url string) redis.UniversalClient {
	tb.Helper()
	t, err := parseURL(url)
	if err != nil {
		tb.Fatal(err)
	}
	c := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: t.addrs, IsClusterMode: t.cluster, DisableIdentity: true})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// inbox collects the invalidations one Subscribe delivers.
type inbox struct {
	mu  sync.Mutex
	ids []string
	ch  chan struct{} // signalled on every arrival
}

// subscribe runs s.Subscribe until the test ends.
func subscribe(tb testing.TB, s *Store) *inbox {
	in := &inbox{ch: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(ctx, func(id string) {
			in.mu.Lock()
			in.ids = append(in.ids, id)
			in.mu.Unlock()
			select {
			case in.ch <- struct{}{}:
			default:
			}
		})
	}()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Subscribe: %v", err)
		}
	})
	return in
}

// has reports whether id arrived, and forgets everything received so far
// when it did.
func (in *inbox) has(id string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, got := range in.ids {
		if got == id {
			in.ids = nil
			return true
		}
	}
	return false
}

// waitFor waits until id arrives. If write is not nil it is repeated until
// then, for subscriptions that may not be established yet.
func (in *inbox) waitFor(tb testing.TB, id string, timeout time.Duration, write func()) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if write != nil {
			write()
		}
		wait := time.NewTimer(100 * time.Millisecond)
		select {
		case <-in.ch:
		case <-wait.C:
		}
		wait.Stop()
		if in.has(id) {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no invalidation for %q within %v", id, timeout)
		}
	}
}

// eventually polls cond until it holds or timeout passes.
func eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
