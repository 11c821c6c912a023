package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// An A/B test on the real server: every decision on the cart page puts
// the customer in an arm, the decision log records it, and the report
// over the log and the clicks shows each arm's exposures near its share,
// the better arm's uplift, and no sample ratio warning; a log that lost a
// fifth of one arm's decisions gets the warning.
func TestExperimentReportOnServedDecisions(t *testing.T) {
	dir := workspace(t)
	writeTestFile(t, filepath.Join(dir, "rules", "ab_test.yaml"), `experiments:
  - id: recs_lead_test
    variants: {control: 1, top_rated: 1}
    holdout: 10
    when: context.page == "/cart"
    placements: [product_recs]
rules:
  - id: recs_lead_control
    when: variant("recs_lead_test") == "control"
    offer: [recs_bestsellers]
    priority: 1000
  - id: recs_lead_top_rated
    when: variant("recs_lead_test") == "top_rated"
    offer: [recs_top_rated]
    priority: 1000
`)
	logPath := filepath.Join(dir, "decisions.jsonl")
	cfg := filepath.Join(dir, "touchpoint.yaml")
	// No decide deadline: a decision a busy machine held up past it would
	// show nothing, which this test does not count on.
	writeTestFile(t, cfg, "log:\n  level: info\nrules:\n  decide_deadline: 0s\ndecision_log:\n  enabled: true\n  file:\n    path: "+logPath+"\n")
	s := startServer(t, dir, "--config", cfg)
	var events bytes.Buffer
	const n = 4000
	for i := 1; i <= n; i++ {
		code, d, raw, err := s.decide(fmt.Sprintf(`{"customer_id":"ab-%d","placements":[{"id":"product_recs","count":1}],"context":{"channel":"web","page":"/cart"}}`, i))
		if err != nil || code != 200 || len(d.Placements["product_recs"]) != 1 {
			t.Fatalf("decide: %d %v %s", code, err, raw)
		}
		tp := d.Placements["product_recs"][0].Touchpoint
		fmt.Fprintf(&events, `{"event_id":"i%d","decision_id":%q,"customer_id":"ab-%d","touchpoint":%q,"type":"impression"}`+"\n", i, d.DecisionID, i, tp)
		// Top rated is clicked three times as often as the bestsellers.
		if tp == "recs_top_rated" && i%4 == 0 || tp != "recs_top_rated" && i%12 == 0 {
			fmt.Fprintf(&events, `{"event_id":"c%d","decision_id":%q,"customer_id":"ab-%d","touchpoint":%q,"type":"click"}`+"\n", i, d.DecisionID, i, tp)
		}
	}
	eventsPath := filepath.Join(dir, "events.jsonl")
	writeTestFile(t, eventsPath, events.String())
	waitUntil(t, "every decision in the log", func() bool { return countLines(logPath) == n })

	report := func(log string) string {
		out, err := exec.Command(binary, "experiments", "report", "--log", log, "--events", eventsPath,
			"--rules", filepath.Join(dir, "rules"), "--schema", filepath.Join(dir, "features.yaml"), "recs_lead_test").CombinedOutput()
		if err != nil {
			t.Fatalf("experiments report: %v\n%s", err, out)
		}
		return string(out)
	}
	out := report(logPath)
	exposures := regexp.MustCompile(`(?m)^(control|top_rated|holdout)\s+[\d.]+%\s+(\d+)`).FindAllStringSubmatch(out, -1)
	if len(exposures) != 3 || strings.Contains(out, "SAMPLE RATIO MISMATCH") || !strings.Contains(out, "top_rated: over control: clicks +") {
		t.Fatalf("report:\n%s", out)
	}
	total := 0
	for _, m := range exposures {
		var k int
		fmt.Sscan(m[2], &k)
		total += k
	}
	if total != n {
		t.Errorf("exposures add up to %d, want %d:\n%s", total, n, out)
	}

	// The same events posted to the server count live, in the store: the
	// server's report (GET /v1/experiments/{id}, which the CLI reads by
	// default) agrees with the one computed from the log.
	lines := strings.Split(strings.TrimSpace(events.String()), "\n")
	for len(lines) > 0 {
		k := min(len(lines), 1000)
		if code, body := s.call(t, "POST", "/v1/events", `{"events":[`+strings.Join(lines[:k], ",")+`]}`, false); code != 202 {
			t.Fatalf("events: %d %s", code, body)
		}
		lines = lines[k:]
	}
	armRows := regexp.MustCompile(`(?m)^(control|top_rated|holdout)\s+.*$`)
	live := func() (string, error) {
		cmd := exec.Command(binary, "experiments", "report", "--server", s.base, "recs_lead_test")
		cmd.Env = append(os.Environ(), "TOUCHPOINT_ADMIN_KEY="+adminKey)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	var liveOut string
	// Exposures reach the store at the next flush, within a second or so.
	waitLong(t, "the live report to match the log's", func() bool {
		var err error
		liveOut, err = live()
		return err == nil && strings.Join(armRows.FindAllString(liveOut, -1), "\n") == strings.Join(armRows.FindAllString(out, -1), "\n")
	})
	if code, body := s.call(t, "GET", "/v1/experiments/recs_lead_test", "", false); code != 401 {
		t.Errorf("the live report without the admin key: %d %s", code, body)
	}
	code, body := s.call(t, "GET", "/v1/experiments/recs_lead_test", "", true)
	if code != 200 || !strings.Contains(body, `"name":"top_rated"`) || !strings.Contains(body, `"mismatch":false`) {
		t.Errorf("GET /v1/experiments/recs_lead_test: %d %s", code, body)
	}
	if code, body := s.call(t, "GET", "/v1/experiments/recs_lead_tset", "", true); code != 404 || !strings.Contains(body, "did you mean recs_lead_test?") {
		t.Errorf("an unknown experiment: %d %s", code, body)
	}

	// Lose every fifth top_rated decision from the log.
	skewed := filepath.Join(dir, "skewed.jsonl")
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var kept bytes.Buffer
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	seen := 0
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, `"variant":"top_rated"`) {
			if seen++; seen%5 == 0 {
				continue
			}
		}
		kept.WriteString(line + "\n")
	}
	writeTestFile(t, skewed, kept.String())
	if out := report(skewed); !strings.Contains(out, "SAMPLE RATIO MISMATCH") {
		t.Errorf("a log missing a fifth of one arm passed the check:\n%s", out)
	}
}

func writeTestFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
