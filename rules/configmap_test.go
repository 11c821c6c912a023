package rules

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// A Kubernetes ConfigMap volume holds its files in a hidden, timestamped
// folder and shows them through links: file -> ..data/file, and
// ..data -> ..2026_11_30_12_00_00.123. The rule files are found once each,
// through the links, under the names they have in the repository, so the
// ruleset's version is the same as anywhere else.
func TestRuleFilesInAConfigMapVolume(t *testing.T) {
	dir := t.TempDir()
	stamp := filepath.Join(dir, "..2026_11_30_12_00_00.123")
	for _, f := range []string{"cart.yaml", "models/recs.yaml", "models/coupon.json", "notes.txt"} {
		p := filepath.Join(stamp, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("{}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"..data":     filepath.Base(stamp),
		"cart.yaml":  "..data/cart.yaml",
		"models":     "..data/models",
		"notes.txt":  "..data/notes.txt",
		".swap.yaml": "..data/cart.yaml",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ruleFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range got {
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			t.Fatal(err)
		}
		got[i] = filepath.ToSlash(rel)
	}
	if want := []string{"cart.yaml", "models/recs.yaml"}; !slices.Equal(got, want) {
		t.Errorf("rule files %v, want %v", got, want)
	}

	// A link to an enclosing folder ends in an error, not a loop.
	if err := os.Symlink("..", filepath.Join(stamp, "models", "loop")); err != nil {
		t.Fatal(err)
	}
	if _, err := ruleFiles(dir); err == nil {
		t.Error("a link loop was walked without an error")
	}
}
