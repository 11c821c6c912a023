package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/touchpoint-dev/touchpoint/loadtest"
)

func TestLoadtestRefusesBadRuns(t *testing.T) {
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"no end":        {[]string{"http://127.0.0.1:1"}, "set --duration or --requests"},
		"no url":        {[]string{"--duration", "1s"}, "loadtest needs a target URL"},
		"two urls":      {[]string{"--duration", "1s", "http://127.0.0.1:1", "http://127.0.0.1:2"}, "takes one URL"},
		"bad range":     {[]string{"--rate", "5000:40000", "--duration", "1s", "http://127.0.0.1:1"}, "a range is FROM:TO:STEP"},
		"backwards":     {[]string{"--rate", "40000:5000:5000", "--duration", "1s", "http://127.0.0.1:1"}, "TO (5000) is below FROM (40000)"},
		"both loops":    {[]string{"--rate", "100", "--concurrency", "4", "--duration", "1s", "http://127.0.0.1:1"}, "choose --rate (open loop) or --concurrency"},
		"bad slo":       {[]string{"--slo", "p99", "--duration", "1s", "http://127.0.0.1:1"}, "not NAME=VALUE"},
		"find no slo":   {[]string{"--find-max", "--traffic", "../../configs/loadtest/traffic.yaml", "--duration", "1s", "http://127.0.0.1:1"}, "--find-max needs an --slo"},
		"bad traffic":   {[]string{"--traffic", "no-such-file.yaml", "--duration", "1s", "http://127.0.0.1:1"}, `--traffic "no-such-file.yaml" does not exist`},
		"not http":      {[]string{"--traffic", "../../configs/loadtest/traffic.yaml", "--duration", "1s", "ftp://127.0.0.1:1"}, "not an http:// or https:// URL"},
		"unreachable":   {[]string{"--traffic", "../../configs/loadtest/traffic.yaml", "--requests", "10", "http://127.0.0.1:1"}, "cannot reach http://127.0.0.1:1/v1/decide"},
		"bad threshold": {[]string{"compare", "--threshold", "lots", "a.json", "b.json"}, "must be a percentage"},
		"one report":    {[]string{"compare", "a.json"}, "compare needs two reports"},
		"event share":   {[]string{"--event-share", "2", "--traffic", "../../configs/loadtest/traffic.yaml", "--duration", "1s", "http://127.0.0.1:1"}, "--event-share: event share must be between 0 and 1"},
	} {
		stdout, stderr, code := runCLI(append([]string{"loadtest"}, c.args...)...)
		if code != 1 || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 || stdout != "" {
			t.Errorf("%s: exit %d, stderr %q, stdout %q; want exit 1 and one line containing %q", name, code, stderr, stdout, c.want)
		}
	}
	if _, stderr, code := runCLI("loadtest", "--help"); code != 0 || !strings.Contains(stderr, "--find-max") || !strings.Contains(stderr, "touchpoint loadtest compare") {
		t.Errorf("--help: exit %d\n%s", code, stderr)
	}
}

// loadtestReport is the part of --out these tests read.
type loadtestReport struct {
	Settings struct {
		Events *struct {
			Share    float64 `json:"share"`
			URL      string  `json:"url"`
			IDPrefix string  `json:"id_prefix"`
		} `json:"events"`
	} `json:"settings"`
	Steps []struct {
		OK     int64 `json:"ok"`
		Errors struct {
			Total int64 `json:"total"`
		} `json:"errors"`
		ByKind struct {
			Decide *kindReport `json:"decide"`
			Events *kindReport `json:"events"`
		} `json:"by_kind"`
	} `json:"steps"`
}

type kindReport struct {
	Planned int64 `json:"planned"`
	OK      int64 `json:"ok"`
	Errors  struct {
		Total int64 `json:"total"`
	} `json:"errors"`
	Latency struct {
		Count int64 `json:"count"`
		P99   int64 `json:"p99"`
	} `json:"latency_us"`
	Feedback *struct {
		Events     int64 `json:"events"`
		Accepted   int64 `json:"accepted"`
		Duplicates int64 `json:"duplicates"`
	} `json:"feedback"`
}

func readLoadtestReport(t *testing.T, path string) loadtestReport {
	t.Helper()
	var rep loadtestReport
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rep); err != nil || len(rep.Steps) != 1 {
		t.Fatalf("report %s: %v\n%s", path, err, data)
	}
	return rep
}

// eventsApplied reads the server's count of events it recorded.
func eventsApplied(t *testing.T, srv *process) int64 {
	t.Helper()
	_, metrics := srv.call(t, "GET", "/metrics", "", false)
	for _, line := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, "touchpoint_events_applied_total "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metrics: %q", line)
			}
			return int64(n)
		}
	}
	t.Fatal("metrics lack touchpoint_events_applied_total")
	return 0
}

// TestLoadtestAgainstDemo runs the load generator against the real server
// with the demo rules and customers: every request the traffic file makes,
// decides and event batches alike, must be answered 2xx (--slo errors=0%
// fails the run on any error), and the server must count every event.
func TestLoadtestAgainstDemo(t *testing.T) {
	dir := workspace(t)
	srv := startServer(t, dir)
	tmp := t.TempDir()
	out, html := filepath.Join(tmp, "run.json"), filepath.Join(tmp, "run.html")
	stdout, stderr, code := runCLI("loadtest", srv.base, "--rate", "300", "--duration", "1s", "--customers", "3000",
		"--traffic", "../../configs/loadtest/traffic.yaml", "--slo", "p99=1s,errors=0%", "--out", out, "--html", html, "--progress")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "OPEN LOOP") || !strings.Contains(stdout, "pass") {
		t.Errorf("summary:\n%s", stdout)
	}
	if !strings.Contains(stderr, "\r") || !strings.Contains(stderr, "open loop 300 req/s") {
		t.Errorf("--progress drew no progress line: %q", stderr)
	}
	rep := readLoadtestReport(t, out)
	st := rep.Steps[0]
	dec, ev := st.ByKind.Decide, st.ByKind.Events
	if st.OK != 300 || st.Errors.Total != 0 || dec == nil || ev == nil {
		t.Fatalf("report: %+v", rep)
	}
	// The demo traffic mixes in event batches of one event each; the real
	// server accepts every one and counts it (the preflight sent one more).
	if ev.OK == 0 || dec.OK+ev.OK != 300 || ev.Errors.Total != 0 || ev.Latency.Count != ev.OK || ev.Feedback == nil ||
		ev.Feedback.Accepted != ev.OK || ev.Feedback.Duplicates != 0 || ev.Feedback.Events != ev.OK {
		t.Fatalf("events: %+v, decides %+v", ev, dec)
	}
	if got := eventsApplied(t, srv); got != ev.Feedback.Accepted+1 {
		t.Errorf("the server counted %d events; the run says %d accepted plus one preflight event", got, ev.Feedback.Accepted)
	}
	if !strings.Contains(stdout, "events   step 1: ") || !strings.Contains(stdout, "  events  ") {
		t.Errorf("summary does not show the events:\n%s", stdout)
	}
	if page, err := os.ReadFile(html); err != nil || !strings.Contains(string(page), `id="percentile-spectrum"`) ||
		!strings.Contains(string(page), `id="by-kind"`) {
		t.Errorf("HTML report missing or incomplete: %v", err)
	}

	stdout, stderr, code = runCLI("loadtest", "compare", out, out)
	if code != 0 || !strings.Contains(stdout, "overall: B is the same as A") {
		t.Errorf("compare: exit %d\n%s%s", code, stdout, stderr)
	}

	// The same seed again: the same requests, but fresh event ids, so the
	// server counts them instead of skipping them as retried duplicates.
	before := eventsApplied(t, srv)
	closedOut := filepath.Join(tmp, "closed.json")
	stdout, stderr, code = runCLI("loadtest", "--concurrency", "2", "--requests", "200", "--customers", "3000",
		"--traffic", "../../configs/loadtest/traffic.yaml", "--out", closedOut, srv.base)
	if code != 0 || !strings.Contains(stdout, "CLOSED LOOP") || !strings.Contains(stdout, "closed loop: each worker waits") {
		t.Fatalf("closed loop: exit %d\n%s%s", code, stdout, stderr)
	}
	again := readLoadtestReport(t, closedOut)
	if ev := again.Steps[0].ByKind.Events; ev == nil || ev.OK == 0 || ev.Feedback.Duplicates != 0 ||
		eventsApplied(t, srv) != before+ev.Feedback.Accepted+1 || again.Settings.Events.IDPrefix == rep.Settings.Events.IDPrefix {
		t.Errorf("a second run with the same seed: %+v, prefixes %q and %q", ev, rep.Settings.Events.IDPrefix, again.Settings.Events.IDPrefix)
	}
}

// TestLoadtestRefusesServerWithoutEvents points the demo traffic at a
// server from before POST /v1/events: the run refuses to start, in one
// line that says how to send decides only, and does with --event-share 0.
func TestLoadtestRefusesServerWithoutEvents(t *testing.T) {
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != "/v1/decide" {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":{"code":"not_found","message":"no such endpoint"}}`)
			return
		}
		io.WriteString(w, `{"decision_id":"d","customer_id":"c","ruleset":"r","known_customer":true,"placements":{}}`)
	}))
	defer old.Close()
	args := []string{"loadtest", "--requests", "20", "--rate", "200", "--customers", "3000", "--traffic", "../../configs/loadtest/traffic.yaml", old.URL}
	stdout, stderr, code := runCLI(args...)
	if code != 1 || stdout != "" || strings.Count(stderr, "\n") != 1 ||
		!strings.Contains(stderr, old.URL+"/v1/events answered 404 to an event batch: the target has no events endpoint there") ||
		!strings.Contains(stderr, "--event-share 0") {
		t.Errorf("exit %d, stderr %q, stdout %q", code, stderr, stdout)
	}
	stdout, stderr, code = runCLI(append([]string{"loadtest", "--event-share", "0"}, args[1:]...)...)
	if code != 0 || strings.Contains(stdout, "events") {
		t.Errorf("--event-share 0: exit %d\n%s%s", code, stdout, stderr)
	}
}

// A load test that ends on its own must not print anything after it
// returned (the signal watcher once reported an interrupt nobody sent, racing
// with the caller's reads of stderr), and an interrupt stops the run early
// with one line, all before runInterruptible returns.
func TestLoadtestSignalWatcher(t *testing.T) {
	for i := 0; i < 200; i++ {
		var stderr bytes.Buffer
		_, err := runInterruptible(&stderr, func(ctx context.Context) (*loadtest.Report, error) { return &loadtest.Report{}, nil })
		if err != nil || stderr.Len() != 0 {
			t.Fatalf("run %d: err %v, stderr %q; want nothing printed", i, err, stderr.String())
		}
	}

	var stderr bytes.Buffer
	rep, err := runInterruptible(&stderr, func(ctx context.Context) (*loadtest.Report, error) {
		if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return &loadtest.Report{Interrupted: true}, nil
		case <-time.After(time.Minute):
			return nil, errors.New("the interrupt did not stop the run")
		}
	})
	if err != nil || rep == nil || !rep.Interrupted {
		t.Fatalf("interrupted run: report %+v, err %v", rep, err)
	}
	if got := stderr.String(); strings.Count(got, "interrupted:") != 1 {
		t.Errorf("stderr = %q; want one interrupted line", got)
	}
}

// TestLoadtestBodies checks that the bodies written for other generators
// are decides the demo server answers with 200, and the same for a seed.
func TestLoadtestBodies(t *testing.T) {
	dir := workspace(t)
	srv := startServer(t, dir)
	args := []string{"loadtest", "bodies", "--count", "200", "--customers", "3000", "--traffic", "../../configs/loadtest/traffic.yaml"}
	stdout, stderr, code := runCLI(args...)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 200 {
		t.Fatalf("%d lines, want 200", len(lines))
	}
	for i, line := range lines {
		resp, err := http.Post(srv.base+"/v1/decide", "application/json", strings.NewReader(line))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("body %d %s: %d %s", i, line, resp.StatusCode, body)
		}
	}
	again, _, _ := runCLI(args...)
	if again != stdout {
		t.Error("the same seed wrote other bodies")
	}
	other, _, _ := runCLI(append(args, "--seed", "7")...)
	if other == stdout {
		t.Error("--seed 7 wrote the same bodies as the default seed")
	}
	if _, stderr, code := runCLI("loadtest", "bodies", "--count", "0"); code == 0 || !strings.Contains(stderr, "--count") {
		t.Errorf("--count 0: exit %d, %s", code, stderr)
	}
}
