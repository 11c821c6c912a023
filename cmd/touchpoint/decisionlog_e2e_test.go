package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The real binary logs a decide to the decision log file, and the line
// outlives a SIGTERM: shutdown drains the queue before exiting.
func TestDecisionLogFile(t *testing.T) {
	dir := workspace(t)
	logPath := filepath.Join(dir, "log", "decisions.jsonl")
	cfgPath := filepath.Join(dir, "decision-log.yaml")
	cfg := "decision_log:\n  enabled: true\n  node: e2e-node\n  file:\n    path: " + logPath + "\n    max_size_mb: 1\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, dir, "--config", cfgPath)
	code, d, raw, err := s.decide(cartRequest)
	if err != nil || code != 200 {
		t.Fatalf("decide: %d %v %s", code, err, raw)
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.waitExit(t, 30*time.Second)
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatalf("%v\n%s", err, s.logs.String())
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 1 {
		t.Fatalf("decision log %q, want one line", b)
	}
	var line struct {
		DecisionID    string            `json:"decision_id"`
		Node          string            `json:"node"`
		Ruleset       string            `json:"ruleset"`
		CustomerID    string            `json:"customer_id"`
		KnownCustomer bool              `json:"known_customer"`
		Context       map[string]string `json:"context"`
		Placements    []struct {
			ID         string `json:"id"`
			Count      int    `json:"count"`
			Candidates []struct {
				Touchpoint string   `json:"touchpoint"`
				Reason     string   `json:"reason"`
				Chosen     bool     `json:"chosen"`
				Propensity *float64 `json:"propensity"`
			} `json:"candidates"`
		} `json:"placements"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &line); err != nil {
		t.Fatal(err)
	}
	if line.DecisionID != d.DecisionID || line.Ruleset != d.Ruleset || line.Node != "e2e-node" ||
		line.CustomerID != "c-000042" || !line.KnownCustomer || line.Context["page"] != "/cart" {
		t.Errorf("line %s\nfor answer %s", lines[0], raw)
	}
	if len(line.Placements) != 1 || line.Placements[0].ID != "cart_banner" || line.Placements[0].Count != 1 {
		t.Fatalf("placements in %s", lines[0])
	}
	// The answer's item is the logged candidate chosen, with the
	// probability of Mei's arm of cart_coupon_test, control: 45%.
	chosen := 0
	for _, c := range line.Placements[0].Candidates {
		if c.Chosen {
			chosen++
			if c.Touchpoint != d.Placements["cart_banner"][0].Touchpoint || c.Propensity == nil || *c.Propensity != 0.45 {
				t.Errorf("chosen candidate %+v, answer %s", c, raw)
			}
		}
	}
	if chosen != 1 {
		t.Errorf("%d chosen candidates in %s", chosen, lines[0])
	}
	// No feature value (the demo customer's first name) in the log.
	if strings.Contains(string(b), "Mei") {
		t.Errorf("the decision log carries a feature value: %s", b)
	}
}
