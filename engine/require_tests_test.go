package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// With require_passing_tests, a ruleset whose fixtures fail does not
// load, at start or on reload; the last good one keeps serving.
func TestRequirePassingTests(t *testing.T) {
	dir := t.TempDir()
	schema := filepath.Join(dir, "features.yaml")
	rulesDir := filepath.Join(dir, "rules")
	if err := os.MkdirAll(rulesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(schema, "customer:\n  ltv: {type: number}\ncontext:\n  channel: {type: string}\n")
	ruleFile := func(threshold string) string {
		return "placements:\n  - id: p\ntouchpoints:\n  - {id: t, kind: offer, placements: [p]}\nrules:\n  - id: r\n    when: customer.ltv > " + threshold +
			"\n    offer: [t]\n    tests:\n      - name: a good customer gets t\n        customer: {ltv: 100}\n        expect: {p: [t]}\n"
	}
	path := filepath.Join(rulesDir, "r.yaml")
	write(path, ruleFile("500"))
	cfg := Config{RulesDir: rulesDir, SchemaPath: schema, RequirePassingTests: true}
	if _, err := New(cfg, mapSource{}, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), `r.yaml:10:9: rule r, test "a good customer gets t" failed`) {
		t.Fatalf("start with a failing test: %v", err)
	}
	cfg.RequirePassingTests = false
	if _, err := New(cfg, mapSource{}, zerolog.Nop()); err != nil {
		t.Fatalf("without the requirement: %v", err)
	}
	cfg.RequirePassingTests = true
	write(path, ruleFile("50"))
	e, err := New(cfg, mapSource{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	version := e.Status().Version
	write(path, ruleFile("500"))
	if err := e.Reload(); err == nil || e.Status().Version != version || !strings.Contains(e.Status().LastError, "failed") {
		t.Errorf("a reload with a failing test: %v, %+v", err, e.Status())
	}
}
