package redistest

import (
	"strings"
	"testing"
	"time"
)

func TestServerKillRestart(t *testing.T) {
	s := Start(t)
	if _, err := s.Do("SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Do("GET", "k"); err != nil || got != "v" {
		t.Fatalf("GET k = %q, %v; want v", got, err)
	}
	if !strings.HasPrefix(s.URL(), "redis://127.0.0.1:") {
		t.Errorf("URL = %q", s.URL())
	}

	s.Kill()
	if _, err := s.Do("PING"); err == nil {
		t.Fatal("PING answered after Kill")
	}
	addr := s.Addr()
	s.Restart()
	if s.Addr() != addr {
		t.Fatalf("Restart moved the server from %s to %s", addr, s.Addr())
	}
	// Persistence is off: a restarted server is empty.
	if got, err := s.Do("GET", "k"); err != nil || got != "" {
		t.Fatalf("GET k after restart = %q, %v; want nothing", got, err)
	}
}

func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := StartCluster(t, 3)
	if len(c.Addrs()) != 3 || !strings.HasPrefix(c.URL(), "redis+cluster://") {
		t.Fatalf("Addrs = %v, URL = %q", c.Addrs(), c.URL())
	}
	for _, s := range c.Servers {
		info, err := s.Do("CLUSTER", "INFO")
		if err != nil || !strings.Contains(info, "cluster_state:ok") {
			t.Fatalf("node %s: CLUSTER INFO = %q, %v", s.Addr(), info, err)
		}
	}
}

func TestServerPauseResume(t *testing.T) {
	s := Start(t)
	s.Pause()
	if _, err := command(s.Addr(), 200*time.Millisecond, "PING"); err == nil {
		t.Fatal("a paused server answered")
	}
	// A command sent while paused runs once the server is resumed.
	done := make(chan error, 1)
	go func() {
		_, err := command(s.Addr(), startTimeout, "SET", "k", "v")
		done <- err
	}()
	s.Resume()
	if err := <-done; err != nil {
		t.Fatalf("SET sent while paused: %v", err)
	}
	if got, err := s.Do("GET", "k"); err != nil || got != "v" {
		t.Fatalf("GET k = %q, %v; want v", got, err)
	}
	s.Pause() // stopping a paused server at the end of the test must work
}
