package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// These tests run the real binary as a user would: built from this
// package, started on a free port, spoken to over HTTP.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "touchpoint-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "touchpoint")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "cannot build touchpoint:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const adminKey = "e2e-admin-key-0123456789"

// webhookSecret signs the demo's webhook deliveries in these tests.
const webhookSecret = "e2e-webhook-secret-0123456789"

// process is a running touchpoint serve process.
type process struct {
	cmd  *exec.Cmd
	base string
	logs *syncBuffer
	done chan error
}

// waitExit waits up to within for the process to exit after SIGTERM and
// fails the test unless it exits cleanly.
func (s *process) waitExit(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, s.logs.String())
		}
	case <-time.After(within):
		t.Fatalf("did not exit within %v of SIGTERM", within)
	}
}

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

// workspace copies the demo schema and rules into a temporary directory
// the test may edit, with a small customers file.
func workspace(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	copyTree(t, "../../configs/rules", filepath.Join(dir, "rules"))
	copyTree(t, "../../configs/features.yaml", filepath.Join(dir, "features.yaml"))
	copyTree(t, "../../configs/demo/customers.jsonl", filepath.Join(dir, "customers.jsonl"))
	return dir
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func startServer(t *testing.T, dir string, extra ...string) *process {
	t.Helper()
	return startServerEnv(t, dir, nil, extra...)
}

// startServerEnv is startServer with env added to the process's
// environment.
func startServerEnv(t *testing.T, dir string, env []string, extra ...string) *process {
	t.Helper()
	args := append([]string{"serve", "--config", filepath.Join(dir, "none.yaml"), "--addr", "127.0.0.1:0",
		"--rules", filepath.Join(dir, "rules"), "--schema", filepath.Join(dir, "features.yaml"),
		"--customers", filepath.Join(dir, "customers.jsonl")}, extra...)
	os.WriteFile(filepath.Join(dir, "none.yaml"), []byte("log:\n  level: info\n"), 0o644)
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "TOUCHPOINT_ADMIN_KEY="+adminKey, "TOUCHPOINT_WEBHOOK_SECRET="+webhookSecret)
	cmd.Env = append(cmd.Env, env...)
	logs := &syncBuffer{}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &process{cmd: cmd, logs: logs, done: make(chan error, 1)}
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			logs.Write([]byte(line + "\n"))
			var entry struct{ Message, Addr string }
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Message == "touchpoint serving" {
				addrCh <- entry.Addr
			}
		}
		s.done <- cmd.Wait()
	}()
	select {
	case addr := <-addrCh:
		s.base = "http://" + addr
	case err := <-s.done:
		t.Fatalf("touchpoint serve exited before serving: %v\n%s", err, logs.String())
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("touchpoint serve did not start within 20s\n%s", logs.String())
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-s.done
	})
	return s
}

type decision struct {
	DecisionID    string `json:"decision_id"`
	Ruleset       string `json:"ruleset"`
	KnownCustomer bool   `json:"known_customer"`
	Placements    map[string][]struct {
		Touchpoint string          `json:"touchpoint"`
		Rule       string          `json:"rule"`
		Content    json.RawMessage `json:"content"`
		Experiment string          `json:"experiment"`
		Variant    string          `json:"variant"`
	} `json:"placements"`
}

var client = &http.Client{Timeout: 10 * time.Second}

func (s *process) decide(body string) (int, decision, string, error) {
	resp, err := client.Post(s.base+"/v1/decide", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, decision{}, "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var d decision
	_ = json.Unmarshal(raw, &d)
	return resp.StatusCode, d, string(raw), nil
}

type rulesetStatus struct {
	Version     string `json:"version"`
	LastError   string `json:"last_error"`
	FailedLoads uint64 `json:"failed_loads"`
	Models      []struct {
		ID           string `json:"id"`
		Type         string `json:"type"`
		Objective    string `json:"objective"`
		File         string `json:"file"`
		Trees        int    `json:"trees"`
		Inputs       int    `json:"inputs"`
		PerCandidate bool   `json:"per_candidate"`
	} `json:"models"`
}

func (s *process) status(t *testing.T) rulesetStatus {
	t.Helper()
	req, _ := http.NewRequest("GET", s.base+"/admin/ruleset", nil)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st rulesetStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /admin/ruleset: %d %v", resp.StatusCode, err)
	}
	return st
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitFor(t, 10*time.Second, what, cond)
}

// waitLong waits for a condition that depends on a periodic task of the
// server (a flush every second), with room for a busy machine.
func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitFor(t, 60*time.Second, what, cond)
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// decisionIDPattern is a decision id: 32 hex digits, then a tag per item
// that counts for an experiment or bandit arm (Mei's coupon is in
// cart_coupon_test).
var decisionIDPattern = regexp.MustCompile(`^[0-9a-f]{32}(\.[xb][0-9a-f]{12}){1,6}$`)

const cartRequest = `{"customer_id":"c-000042","placements":[{"id":"cart_banner","count":1}],"context":{"channel":"web","page":"/cart","device":"mobile"}}`

func TestServeDecides(t *testing.T) {
	s := startServer(t, workspace(t), "--log-level", "debug")
	code, d, raw, err := s.decide(cartRequest)
	if err != nil || code != 200 {
		t.Fatalf("decide: %d %v %s", code, err, raw)
	}
	if !d.KnownCustomer || !decisionIDPattern.MatchString(d.DecisionID) || d.Ruleset != s.status(t).Version {
		t.Errorf("decision = %s", raw)
	}
	if len(d.Placements["cart_banner"]) != 1 {
		t.Errorf("cart_banner = %s", raw)
	}
	if !strings.Contains(string(d.Placements["cart_banner"][0].Content), "Mei") {
		t.Errorf("content is not personalised: %s", raw)
	}
	code, _, raw, _ = s.decide(`{"customer_id":"c-000042","placements":[{"id":"nope"}],"context":{"channel":"web"}}`)
	if code != 400 || !strings.Contains(raw, `"code":"unknown_placement"`) {
		t.Errorf("unknown placement: %d %s", code, raw)
	}
	// Even at debug level, no feature value (here the first name) and no
	// per-request line reaches the logs.
	logs := s.logs.String()
	if strings.Contains(logs, "Mei") || strings.Contains(logs, "c-000042") {
		t.Errorf("logs carry customer data:\n%s", logs)
	}
}

// TestHotReloadUnderLoad edits the rules while decides run concurrently:
// good edits must go live, broken ones must be refused, and no request may
// fail or be answered by a ruleset that was never valid.
func TestHotReloadUnderLoad(t *testing.T) {
	dir := workspace(t)
	s := startServer(t, dir)
	valid := map[string]bool{s.status(t).Version: true}
	var validMu sync.Mutex

	var stop atomic.Bool
	var failures, total atomic.Int64
	seen := sync.Map{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				code, d, raw, err := s.decide(cartRequest)
				total.Add(1)
				if err != nil || code != 200 {
					failures.Add(1)
					t.Errorf("decide during reload: %d %v %s", code, err, raw)
					continue
				}
				seen.Store(d.Ruleset, true)
			}
		}()
	}

	extra := filepath.Join(dir, "rules", "zz_extra.yaml")
	good := func(n int) string {
		return fmt.Sprintf("segments:\n  extra_%d: customer.ltv > %d\n", n, n)
	}
	write := func(content string) {
		tmp := extra + ".tmp"
		os.WriteFile(tmp, []byte(content), 0o644)
		os.Rename(tmp, extra)
	}
	for round := 1; round <= 3; round++ {
		before := s.status(t)
		write(good(round))
		waitUntil(t, "a good edit to go live", func() bool { return s.status(t).Version != before.Version })
		validMu.Lock()
		valid[s.status(t).Version] = true
		validMu.Unlock()

		failedBefore := s.status(t).FailedLoads
		write("segments:\n  broken: customer.nosuchfeature > 1\n")
		waitUntil(t, "a broken edit to be refused", func() bool { return s.status(t).FailedLoads > failedBefore })
		if st := s.status(t); !strings.Contains(st.LastError, "zz_extra.yaml:2:20: segment broken: unknown feature customer.nosuchfeature") {
			t.Errorf("last_error = %q", st.LastError)
		}
	}
	// SIGHUP reloads too: a good edit followed by a signal goes live.
	before := s.status(t).Version
	write(good(99))
	s.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, "the edit to go live after SIGHUP", func() bool { return s.status(t).Version != before })
	valid[s.status(t).Version] = true

	waitUntil(t, "some traffic", func() bool { return total.Load() > 50 })
	stop.Store(true)
	wg.Wait()
	if failures.Load() > 0 {
		t.Fatalf("%d of %d decides failed during reloads", failures.Load(), total.Load())
	}
	seen.Range(func(k, _ any) bool {
		if !valid[k.(string)] {
			t.Errorf("a response named ruleset %q, which was never valid (valid: %v)", k, valid)
		}
		return true
	})
}

// TestGracefulShutdown sends SIGTERM while requests are in flight: they
// complete and the process exits 0.
func TestGracefulShutdown(t *testing.T) {
	s := startServer(t, workspace(t))
	var wg sync.WaitGroup
	var failed atomic.Int64
	var stopping atomic.Bool
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200 && !stopping.Load(); i++ {
				code, _, _, err := s.decide(cartRequest)
				if err == nil && code != 200 {
					failed.Add(1) // an answered request must be a good answer
				}
			}
		}()
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	stopping.Store(true)
	wg.Wait()
	s.waitExit(t, 15*time.Second)
	if failed.Load() > 0 {
		t.Errorf("%d requests answered with an error status during shutdown", failed.Load())
	}
	if !strings.Contains(s.logs.String(), "touchpoint stopped") {
		t.Errorf("no shutdown log line:\n%s", s.logs.String())
	}
}
