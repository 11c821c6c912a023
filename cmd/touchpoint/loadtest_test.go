package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
		"bad traffic":   {[]string{"--traffic", "no-such-file.yaml", "--duration", "1s", "http://127.0.0.1:1"}, "cannot read traffic file"},
		"not http":      {[]string{"--traffic", "../../configs/loadtest/traffic.yaml", "--duration", "1s", "ftp://127.0.0.1:1"}, "not an http:// or https:// URL"},
		"unreachable":   {[]string{"--traffic", "../../configs/loadtest/traffic.yaml", "--requests", "10", "http://127.0.0.1:1"}, "cannot reach http://127.0.0.1:1/v1/decide"},
		"bad threshold": {[]string{"compare", "--threshold", "lots", "a.json", "b.json"}, "must be a percentage"},
		"one report":    {[]string{"compare", "a.json"}, "compare needs two reports"},
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

// TestLoadtestAgainstDemo runs the load generator against the real server
// with the demo rules and customers: every request the traffic file makes
// must be answered 200 (--slo errors=0% fails the run on any error).
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
	var rep struct {
		Steps []struct {
			OK     int64 `json:"ok"`
			Errors struct {
				Total int64 `json:"total"`
			} `json:"errors"`
		} `json:"steps"`
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rep); err != nil || len(rep.Steps) != 1 || rep.Steps[0].OK != 300 || rep.Steps[0].Errors.Total != 0 {
		t.Fatalf("report: %+v, %v", rep, err)
	}
	if page, err := os.ReadFile(html); err != nil || !strings.Contains(string(page), `id="percentile-spectrum"`) {
		t.Errorf("HTML report missing or incomplete: %v", err)
	}

	stdout, stderr, code = runCLI("loadtest", "compare", out, out)
	if code != 0 || !strings.Contains(stdout, "overall: B is the same as A") {
		t.Errorf("compare: exit %d\n%s%s", code, stdout, stderr)
	}

	stdout, stderr, code = runCLI("loadtest", "--concurrency", "2", "--requests", "200", "--customers", "3000",
		"--traffic", "../../configs/loadtest/traffic.yaml", srv.base)
	if code != 0 || !strings.Contains(stdout, "CLOSED LOOP") || !strings.Contains(stdout, "closed loop: each worker waits") {
		t.Errorf("closed loop: exit %d\n%s%s", code, stdout, stderr)
	}
}
