package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

type explained struct {
	Explain struct {
		Candidates []struct {
			Touchpoint string  `json:"touchpoint"`
			Reason     string  `json:"reason"`
			Score      float64 `json:"score"`
			Propensity float64 `json:"propensity"`
			Value      float64 `json:"value"`
			Models     []struct {
				Model  string                     `json:"model"`
				Output float64                    `json:"output"`
				Inputs map[string]json.RawMessage `json:"inputs"`
				Bias   float64                    `json:"bias"`
				Top    []struct {
					Input        string  `json:"input"`
					Contribution float64 `json:"contribution"`
				} `json:"top"`
			} `json:"models"`
		} `json:"candidates"`
	} `json:"explain"`
}

// The demo server ranks Mei's cart coupon with the XGBoost model; what the
// explanation says it read, scored by `touchpoint models predict`, gives
// the propensity the server used.
func TestServedModelMatchesPredict(t *testing.T) {
	dir := workspace(t)
	s := startServer(t, dir)
	code, _, raw, err := s.decide(`{"customer_id":"c-000042","placements":[{"id":"cart_banner"}],"context":{"channel":"web","page":"/cart"},"explain":true}`)
	if err != nil || code != 200 {
		t.Fatalf("decide: %d %v %s", code, err, raw)
	}
	var ex explained
	if err := json.Unmarshal([]byte(raw), &ex); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range ex.Explain.Candidates {
		if c.Touchpoint != "cart_coupon_10" || c.Reason != "chosen" {
			continue
		}
		found = true
		if len(c.Models) != 1 || c.Models[0].Model != "coupon_response" || len(c.Models[0].Top) == 0 {
			t.Fatalf("models: %s", raw)
		}
		m := c.Models[0]
		if m.Output != c.Propensity || math.Abs(c.Score-c.Propensity*c.Value) > 1e-9 {
			t.Errorf("score %v, propensity %v, value %v, model output %v", c.Score, c.Propensity, c.Value, m.Output)
		}
		row, _ := json.Marshal(m.Inputs)
		cmd := exec.Command(binary, "models", "predict", "--type", "xgboost", filepath.Join(dir, "rules", "models", "coupon_response.json"))
		cmd.Stdin = strings.NewReader(string(row) + "\n")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("models predict: %v\n%s", err, out)
		}
		got, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		if err != nil || got != m.Output {
			t.Errorf("models predict on %s = %s, the server used %v", row, out, m.Output)
		}
	}
	if !found {
		t.Fatalf("cart_coupon_10 was not chosen: %s", raw)
	}
}

// A broken model file is refused like a broken rule file: the server
// keeps serving the last good ruleset and says why; a good one goes live.
func TestModelFileHotReload(t *testing.T) {
	dir := workspace(t)
	s := startServer(t, dir)
	before := s.status(t)
	models := map[string]string{}
	for _, m := range before.Models {
		models[m.ID] = fmt.Sprintf("%s %s %s trees=%d inputs=%d per_candidate=%v", m.Type, m.Objective, m.File, m.Trees, m.Inputs, m.PerCandidate)
	}
	if models["coupon_response"] != "xgboost binary:logistic models/coupon_response.json trees=80 inputs=8 per_candidate=true" ||
		!strings.HasPrefix(models["recs_click"], "logistic logistic  trees=0 inputs=7 per_candidate=true") {
		t.Errorf("/admin/ruleset models: %v", models)
	}
	modelPath := filepath.Join(dir, "rules", "models", "coupon_response.json")
	good, err := os.ReadFile(modelPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(modelPath, good[:len(good)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	waitLogged(t, s, "the broken model to be refused", func() bool { return s.status(t).FailedLoads > before.FailedLoads })
	st := s.status(t)
	if st.Version != before.Version || !strings.Contains(st.LastError, "coupon_response.json") {
		t.Errorf("after a broken model: %+v", st)
	}
	if code, d, raw, _ := s.decide(cartRequest); code != 200 || d.Ruleset != before.Version || len(d.Placements["cart_banner"]) != 1 || d.Placements["cart_banner"][0].Touchpoint != "cart_coupon_10" {
		t.Errorf("served while the model file was broken: %d %s", code, raw)
	}
	// The same trees with another base score: a new model, a new version.
	changed := strings.Replace(string(good), `"base_score":"5E-1"`, `"base_score":"4E-1"`, 1)
	if changed == string(good) {
		t.Fatal("the demo model has no base_score to change")
	}
	if err := os.WriteFile(modelPath, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	// It moves the scores the model's own tests expect, and a ruleset whose
	// tests fail does not go live (rules.require_passing_tests).
	failed := s.status(t).FailedLoads
	waitLogged(t, s, "the changed model to be refused for its tests", func() bool { return s.status(t).FailedLoads > failed })
	st = s.status(t)
	if st.Version != before.Version || !strings.Contains(st.LastError, `model coupon_response, test "Mei (c-000042) and 10% off her 89.90 EUR cart" failed: model coupon_response: expected 0.4017`) ||
		!strings.Contains(st.LastError, "rules.require_passing_tests") {
		t.Errorf("after a model that fails its tests: %+v", st)
	}

	// Without the requirement it goes live, a new model and a new version.
	s2 := startServer(t, dir, "--config", writeConfig(t, dir, "rules:\n  require_passing_tests: false\n"))
	if st := s2.status(t); st.Version == before.Version || st.LastError != "" {
		t.Errorf("with require_passing_tests off: %+v", st)
	}
}

func writeConfig(t *testing.T, dir, text string) string {
	t.Helper()
	path := filepath.Join(dir, "touchpoint-test.yaml")
	writeTestFile(t, path, "log:\n  level: info\n"+text)
	return path
}

// waitLogged is waitUntil that shows the server's log when it times out.
func waitLogged(t *testing.T, s *process, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; status %+v; server log:\n%s", what, s.status(t), s.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
