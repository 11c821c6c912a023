package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// touchpoint rules replay on decide requests: a draft that raises the
// coupon's threshold changes cart decisions and nothing else, says which
// rule loses them, and --fail-if-changed turns that into an exit status.
func TestRulesReplay(t *testing.T) {
	dir := workspace(t)
	var reqs strings.Builder
	for i := 1; i <= 600; i++ {
		fmt.Fprintf(&reqs, `{"customer_id":"c-%06d","placements":["cart_banner","checkout_message"],"context":{"channel":"web","page":"/cart"}}`+"\n", i)
	}
	reqPath := filepath.Join(dir, "requests.jsonl")
	writeTestFile(t, reqPath, reqs.String())
	draft := couponDraft(t, dir, "0.35")

	replayRun := func(extra ...string) (string, int) {
		args := append([]string{"rules", "replay", "--log", reqPath, "--rules", draft, "--base", filepath.Join(dir, "rules"),
			"--schema", filepath.Join(dir, "features.yaml"), "--customers", filepath.Join(dir, "customers.jsonl")}, extra...)
		out, err := exec.Command(binary, args...).CombinedOutput()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return string(out), exit.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	out, code := replayRun()
	row := regexp.MustCompile(`(?m)^cart_banner\s+600\s+(\d+)\s+0\s+(\d+)\s+(\d+)\s+([\d.]+)%$`).FindStringSubmatch(out)
	if code != 0 || row == nil || row[1] == "600" || !regexp.MustCompile(`(?m)^checkout_message\s+600\s+600\s+0\s+0\s+0\s+0\.0%$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^cart_abandon_coupon\s+0\s+[1-9]\d*$`).MatchString(out) ||
		!strings.Contains(out, "(rule cart_abandon_coupon) → ") {
		t.Fatalf("replay (exit %d):\n%s", code, out)
	}
	if out, code := replayRun("--fail-if-changed", "0.1"); code != 1 || !strings.Contains(out, "more than --fail-if-changed 0.1%") {
		t.Errorf("--fail-if-changed 0.1: exit %d\n%s", code, out)
	}
	if _, code := replayRun("--fail-if-changed", "50"); code != 0 {
		t.Errorf("--fail-if-changed 50: exit %d", code)
	}
	if out, code := replayRun("--fail-if-changed", "150"); code == 0 || !strings.Contains(out, "percent from 0 to 100") {
		t.Errorf("--fail-if-changed 150: exit %d\n%s", code, out)
	}
	writeTestFile(t, filepath.Join(draft, "broken.yaml"), "rules:\n  - id: x\n    when: customer.nope\n    offer: [cart_coupon_10]\n")
	if out, code := replayRun(); code == 0 || !strings.Contains(out, "broken.yaml:3:") || !strings.Contains(out, "cannot load the draft rules") {
		t.Errorf("a broken draft: exit %d\n%s", code, out)
	}
}

// touchpoint rules diff names what a draft changed, in the files' words.
func TestRulesDiff(t *testing.T) {
	dir := workspace(t)
	draft := couponDraft(t, dir, "0.35")
	schema := filepath.Join(dir, "features.yaml")
	out, err := exec.Command(binary, "rules", "diff", "--schema", schema, filepath.Join(dir, "rules"), draft).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": 1 change\n") || !strings.Contains(string(out), "rule cart_abandon_coupon changed (") ||
		!strings.Contains(string(out), `model("coupon_response") >= 0.35`) {
		t.Errorf("rules diff: %v\n%s", err, out)
	}
	out, err = exec.Command(binary, "rules", "diff", "--schema", schema, filepath.Join(dir, "rules"), filepath.Join(dir, "rules")).CombinedOutput()
	if err != nil || !strings.HasSuffix(string(out), ": no changes\n") {
		t.Errorf("rules diff of a directory with itself: %v\n%s", err, out)
	}
	if out, err := exec.Command(binary, "rules", "diff", "--schema", schema, filepath.Join(dir, "rules")).CombinedOutput(); err == nil {
		t.Errorf("rules diff with one directory succeeded:\n%s", out)
	}
}

// "now" previews a decision at another time, for the admin key only, and
// leaves nothing behind: no decision log line, no exposure.
func TestDecideAtAnotherTime(t *testing.T) {
	dir := workspace(t)
	logPath := filepath.Join(dir, "decisions.jsonl")
	s := startServer(t, dir, "--config", writeConfig(t, dir, "decision_log:\n  enabled: true\n  file:\n    path: "+logPath+"\n"))
	body := func(now string) string {
		return `{"customer_id":"visitor-1","placements":["home_hero"],"context":{"channel":"web","page":"/"},"now":"` + now + `"}`
	}
	if code, out := s.call(t, "POST", "/v1/decide", body("2026-11-27T12:00:00Z"), false); code != 401 || !strings.Contains(out, `"field":"now"`) {
		t.Errorf("now without the admin key: %d %s", code, out)
	}
	code, out := s.call(t, "POST", "/v1/decide", body("2026-11-27T12:00:00Z"), true)
	if code != 200 || !strings.Contains(out, `"touchpoint":"black_friday_20"`) {
		t.Errorf("during Black Friday week: %d %s", code, out)
	}
	code, out = s.call(t, "POST", "/v1/decide", body("2027-01-15T12:00:00Z"), true)
	if code != 200 || strings.Contains(out, "black_friday_20") {
		t.Errorf("in January: %d %s", code, out)
	}
	if code, out := s.call(t, "POST", "/v1/decide", body("next friday"), true); code != 400 || !strings.Contains(out, `"field":"now"`) {
		t.Errorf("a malformed now: %d %s", code, out)
	}
	// A real decision after the previews: the log holds it alone.
	if code, _, raw, err := s.decide(`{"customer_id":"visitor-1","placements":["home_hero"],"context":{"channel":"web","page":"/"}}`); err != nil || code != 200 {
		t.Fatalf("decide: %d %v %s", code, err, raw)
	}
	waitUntil(t, "the real decision in the log", func() bool { return countLines(logPath) >= 1 })
	if n := countLines(logPath); n != 1 {
		t.Errorf("%d lines in the decision log; previews must not be logged", n)
	}
}

// couponDraft copies the workspace's rules to draft/ with the 10% coupon's
// threshold raised to threshold.
func couponDraft(t *testing.T, dir, threshold string) string {
	t.Helper()
	draft := filepath.Join(dir, "draft")
	copyTree(t, filepath.Join(dir, "rules"), draft)
	cart := filepath.Join(draft, "cart.yaml")
	b, err := os.ReadFile(cart)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(b), `model("coupon_response") >= 0.2`, `model("coupon_response") >= `+threshold, 1)
	if edited == string(b) {
		t.Fatal("the demo's coupon condition moved; update this test")
	}
	writeTestFile(t, cart, edited)
	return draft
}
