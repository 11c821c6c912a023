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
	draft := filepath.Join(dir, "draft")
	copyTree(t, filepath.Join(dir, "rules"), draft)
	cart := filepath.Join(draft, "cart.yaml")
	b, err := os.ReadFile(cart)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, cart, strings.Replace(string(b), `model("coupon_response") >= 0.2`, `model("coupon_response") >= 0.35`, 1))

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
	draft := filepath.Join(dir, "draft")
	copyTree(t, filepath.Join(dir, "rules"), draft)
	cart := filepath.Join(draft, "cart.yaml")
	b, err := os.ReadFile(cart)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, cart, strings.Replace(string(b), `model("coupon_response") >= 0.2`, `model("coupon_response") >= 0.35`, 1))
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
