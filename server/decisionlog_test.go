package server

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/touchpoint-dev/touchpoint/decisionlog"
)

func fileDecisionLog(t testing.TB, sample float64) (*decisionlog.Logger, string) {
	t.Helper()
	cfg := decisionlog.DefaultConfig()
	cfg.Enabled = true
	cfg.Node = "test-node"
	cfg.Sample = sample
	cfg.File.Path = filepath.Join(t.TempDir(), "decisions.jsonl")
	l, err := decisionlog.New(cfg, decisionlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l, cfg.File.Path
}

// A successful decide is logged with its request's context; failed ones
// are not. The log's counters are in /metrics.
func TestDecideIsLogged(t *testing.T) {
	dl, path := fileDecisionLog(t, 1)
	ts := startServerWith(t, testConfig(), newFakeDecider(), Options{DecisionLog: dl})
	if r := ts.decide(t, `{"customer_id":"c-1","placements":["a"],"context":{"page":"/cart"}}`); r.status != http.StatusOK {
		t.Fatalf("status %d", r.status)
	}
	if r := ts.decide(t, `{"customer_id":"c-reqerr","placements":["a"]}`); r.status != http.StatusBadRequest {
		t.Fatalf("status %d", r.status)
	}
	if err := dl.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 1 {
		t.Fatalf("log %q, want one line", b)
	}
	var line struct {
		DecisionID string            `json:"decision_id"`
		Node       string            `json:"node"`
		CustomerID string            `json:"customer_id"`
		Context    map[string]string `json:"context"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &line); err != nil {
		t.Fatal(err)
	}
	if line.DecisionID != "d-c-1" || line.Node != "test-node" || line.CustomerID != "c-1" || line.Context["page"] != "/cart" {
		t.Errorf("line %s", lines[0])
	}
	r := ts.do(t, http.MethodGet, "/metrics", "", nil)
	for _, w := range []string{
		`touchpoint_decision_log_written_total{sink="file"} 1`,
		`touchpoint_decision_log_errors_total{sink="file"} 0`,
		`touchpoint_decision_log_dropped_total 0`,
		`touchpoint_decision_log_sampled_out_total 0`,
		`touchpoint_decision_log_queue_length 0`,
	} {
		if !strings.Contains(string(r.body), w) {
			t.Errorf("metrics lack %q", w)
		}
	}
}

// BenchmarkHandleDecideLogged is BenchmarkHandleDecide with every decision
// logged to a file: the handler's cost with the decision log on.
func BenchmarkHandleDecideLogged(b *testing.B) {
	_, d := sampleDecision()
	dl, _ := fileDecisionLog(b, 1)
	benchHandleDecide(b, New(testConfig(), staticDecider{d: d}, Options{DecisionLog: dl}), "")
}
