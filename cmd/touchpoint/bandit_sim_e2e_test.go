package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// simRules is a Thompson placement of four promotions whose true click
// rates only the simulated customers know.
const simRules = `placements:
  - id: sim_slot
    arbitration: {mode: thompson, reward: click, prior: {alpha: 1, beta: 20}, min_share: 0.02}
touchpoints:
  - {id: sim_a, kind: content, placements: [sim_slot]}
  - {id: sim_b, kind: content, placements: [sim_slot]}
  - {id: sim_c, kind: content, placements: [sim_slot]}
  - {id: sim_d, kind: content, placements: [sim_slot]}
rules:
  - id: sim_offers
    when: context.page == "/sim"
    offer: [sim_a, sim_b, sim_c, sim_d]
`

// simTruth are the hidden click rates; sim_d is the best.
var simTruth = map[string]float64{"sim_a": 0.02, "sim_b": 0.04, "sim_c": 0.06, "sim_d": 0.12}

// The learning loop end to end, through the real HTTP API: synthetic
// customers click each promotion at its hidden rate, a client posts the
// impressions and clicks, and after 20,000 decisions the Thompson
// placement gives the best promotion at least 80% of its traffic. The
// decision log of that traffic, with the propensities the bandit logged,
// then lets evaluate estimate the click rate of a policy that always
// shows the best promotion, which it must find within its interval.
//
// Decisions draw from rules.random_seed and the client from its own
// seed, and each round of decisions starts only once the bandit has read
// every event of the rounds before it, so the run is the same every time.
func TestBanditSimulation(t *testing.T) {
	dir := workspace(t)
	writeTestFile(t, filepath.Join(dir, "rules", "sim.yaml"), simRules)
	logPath := filepath.Join(dir, "decisions.jsonl")
	cfg := filepath.Join(dir, "touchpoint.yaml")
	// No decide deadline: on a busy machine a descheduled decision would
	// pass it and show nothing, which is not what this test is about.
	writeTestFile(t, cfg, "log:\n  level: info\nrules:\n  learn_every: 20ms\n  random_seed: 7\n  decide_deadline: 0s\ndecision_log:\n  enabled: true\n  file:\n    path: "+logPath+"\n")
	s := startServer(t, dir, "--config", cfg)

	const rounds, perRound = 40, 500
	rng := rand.New(rand.NewPCG(20261130, 1))
	shown := map[string]int{}
	var allEvents bytes.Buffer
	posted := 0
	for round := 0; round < rounds; round++ {
		var batch []string
		for k := 0; k < perRound; k++ {
			i := round*perRound + k
			customer := fmt.Sprintf("sim-%d", i%2000)
			code, d, raw, err := s.decide(`{"customer_id":"` + customer + `","placements":[{"id":"sim_slot"}],"context":{"channel":"web","page":"/sim"}}`)
			if err != nil || code != 200 || len(d.Placements["sim_slot"]) != 1 {
				t.Fatalf("decide: %d %v %s", code, err, raw)
			}
			tp := d.Placements["sim_slot"][0].Touchpoint
			shown[tp]++
			event := func(typ string) string {
				return fmt.Sprintf(`{"event_id":"%s-%d","decision_id":%q,"customer_id":%q,"touchpoint":%q,"type":%q}`, typ, i, d.DecisionID, customer, tp, typ)
			}
			batch = append(batch, event("impression"))
			if rng.Float64() < simTruth[tp] {
				batch = append(batch, event("click"))
			}
		}
		if code, body := s.call(t, "POST", "/v1/events", `{"events":[`+strings.Join(batch, ",")+`]}`, false); code != 202 {
			t.Fatalf("events: %d %s", code, body)
		}
		for _, ev := range batch {
			allEvents.WriteString(ev + "\n")
		}
		posted += perRound
		waitLong(t, fmt.Sprintf("the bandit to read round %d's impressions", round), func() bool { return simImpressions(t, s) == posted })
	}
	total := rounds * perRound
	if share := float64(shown["sim_d"]) / float64(total); share < 0.8 {
		t.Errorf("the best promotion got %.3f of the traffic (%v), want at least 0.8", share, shown)
	} else {
		t.Logf("the best promotion got %.3f of %d decisions (%v)", share, total, shown)
	}
	for tp := range simTruth {
		if shown[tp] < total/100 {
			t.Errorf("%s was shown %d times: min_share should keep exploring it", tp, shown[tp])
		}
	}

	// Evaluate a policy that always shows sim_d on the logged traffic.
	waitLong(t, "every decision in the log", func() bool { return countLines(logPath) == total })
	eventsPath := filepath.Join(dir, "events.jsonl")
	writeTestFile(t, eventsPath, allEvents.String())
	best := filepath.Join(dir, "best")
	copyTree(t, filepath.Join(dir, "rules"), best)
	writeTestFile(t, filepath.Join(best, "sim.yaml"), strings.Replace(
		strings.Replace(simRules, "offer: [sim_a, sim_b, sim_c, sim_d]", "offer: [sim_d]", 1),
		"arbitration: {mode: thompson, reward: click, prior: {alpha: 1, beta: 20}, min_share: 0.02}", "description: always the best", 1))
	out, err := exec.Command(binary, "evaluate", "--log", logPath, "--events", eventsPath, "--rules", best,
		"--schema", filepath.Join(dir, "features.yaml"), "--customers", filepath.Join(dir, "customers.jsonl")).CombinedOutput()
	if err != nil {
		t.Fatalf("evaluate: %v\n%s", err, out)
	}
	row := regexp.MustCompile(`(?m)^sim_slot\s+(\d+)\s+(\S+)%\s+(\S+) \[[^]]*\]\s+(\S+) \[(\S+), (\S+)\]\s+(\S+) \[(\S+), (\S+)\]`).FindStringSubmatch(string(out))
	if row == nil {
		t.Fatalf("no sim_slot row in:\n%s", out)
	}
	num := func(i int) float64 {
		f, err := strconv.ParseFloat(row[i], 64)
		if err != nil {
			t.Fatalf("%q in %q: %v", row[i], row[0], err)
		}
		return f
	}
	t.Logf("%s", row[0])
	truth := simTruth["sim_d"]
	if num(1) != float64(total) || num(2) <= 0 {
		t.Errorf("every decision should be replayed and those that explored should change:\n%s", out)
	}
	if lo, hi := num(5), num(6); !(lo <= truth && truth <= hi) {
		t.Errorf("IPS estimates always-sim_d at [%v, %v], which misses its true click rate %v:\n%s", lo, hi, truth, out)
	}
	if lo, hi := num(8), num(9); !(lo <= truth && truth <= hi) {
		t.Errorf("SNIPS estimates always-sim_d at [%v, %v], which misses its true click rate %v:\n%s", lo, hi, truth, out)
	}
	if logged := num(3); logged >= truth {
		t.Errorf("the bandit, which explores, logged a click rate of %v, not below the best promotion's %v", logged, truth)
	}
}

// simImpressions is how many impressions of sim_slot the bandit has read.
func simImpressions(t *testing.T, s *process) int {
	t.Helper()
	code, body := s.call(t, "GET", "/admin/bandits", "", true)
	if code != 200 {
		t.Fatalf("GET /admin/bandits: %d %s", code, body)
	}
	var answer struct {
		Bandits []struct {
			Placement string
			Segments  []struct{ Arms []struct{ Impressions int } }
		}
	}
	if err := json.Unmarshal([]byte(body), &answer); err != nil {
		t.Fatalf("GET /admin/bandits: %v in %s", err, body)
	}
	n := 0
	for _, b := range answer.Bandits {
		if b.Placement == "sim_slot" {
			for _, seg := range b.Segments {
				for _, a := range seg.Arms {
					n += a.Impressions
				}
			}
		}
	}
	return n
}
