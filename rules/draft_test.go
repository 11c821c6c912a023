package rules

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDraftPath(t *testing.T) {
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"cart.yaml", true},
		{"campaigns/winter.yml", true},
		{"", false},
		{"../features.yaml", false},
		{"a/../../b.yaml", false},
		{"/etc/passwd.yaml", false},
		{"./cart.yaml", false},
		{"a//b.yaml", false},
		{".hidden.yaml", false},
		{"a/.git/x.yaml", false},
		{"cart.json", false},
		{"cart", false},
		{`a\b.yaml`, false},
		{"c:cart.yaml", false},
		{"a\x00.yaml", false},
		{strings.Repeat("a", 300) + ".yaml", false},
	} {
		err := DraftPath(tc.path)
		if (err == nil) != tc.ok {
			t.Errorf("DraftPath(%q) = %v, want ok %v", tc.path, err, tc.ok)
		}
	}
}

func TestLoadDraftReplacesAndAddsFilesWithoutWriting(t *testing.T) {
	dir, schema := "testdata/good/rules", "testdata/good/features.yaml"
	live, err := Load(dir, schema)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(live.Files[0])
	before, err := os.ReadFile(live.Files[0])
	if err != nil {
		t.Fatal(err)
	}

	t.Run("no drafts is the live ruleset", func(t *testing.T) {
		rs, err := LoadDraft(dir, schema, nil)
		if err != nil || rs.Version != live.Version {
			t.Fatalf("LoadDraft(nil) = %v, %v; want version %s", rs, err, live.Version)
		}
	})
	t.Run("a replaced file changes the version and is reported at its path", func(t *testing.T) {
		broken := strings.Replace(string(before), "when:", "when: customer.no_such_feature > 1 ||", 1)
		if broken == string(before) {
			t.Fatalf("%s has no condition to break", name)
		}
		_, err := LoadDraft(dir, schema, map[string][]byte{name: []byte(broken)})
		var list ErrorList
		if !errors.As(err, &list) || len(list) == 0 {
			t.Fatalf("LoadDraft with a broken file = %v, want an ErrorList", err)
		}
		if got, want := list[0].File, filepath.Join(dir, name); got != want {
			t.Errorf("error names %s, want %s", got, want)
		}
		if !strings.Contains(list[0].Message, "no_such_feature") {
			t.Errorf("error %q does not name the unknown feature", list[0].Message)
		}
	})
	t.Run("an added file joins the ruleset", func(t *testing.T) {
		added := "rules:\n  - id: draft_only_rule\n    when: \"true\"\n    offer: [" + live.Touchpoints[0].ID + "]\n"
		rs, err := LoadDraft(dir, schema, map[string][]byte{"extra/new.yaml": []byte(added)})
		if err != nil {
			t.Fatal(err)
		}
		if len(rs.Rules) != len(live.Rules)+1 || rs.Version == live.Version {
			t.Fatalf("draft has %d rules (version %s), want %d and a new version", len(rs.Rules), rs.Version, len(live.Rules)+1)
		}
		if _, ok := rs.Source(filepath.Join(dir, "extra", "new.yaml")); !ok {
			t.Errorf("the added file is not among the draft's sources")
		}
		if _, err := os.Stat(filepath.Join(dir, "extra")); !os.IsNotExist(err) {
			t.Errorf("LoadDraft wrote to the rules directory: %v", err)
		}
	})
	t.Run("a bad path is refused", func(t *testing.T) {
		if _, err := LoadDraft(dir, schema, map[string][]byte{"../features.yaml": nil}); err == nil {
			t.Fatal("LoadDraft accepted a path outside the rules directory")
		}
	})
	t.Run("an oversized draft is refused at its path", func(t *testing.T) {
		_, err := LoadDraft(dir, schema, map[string][]byte{name: make([]byte, MaxFileBytes+1)})
		var list ErrorList
		if !errors.As(err, &list) || !strings.Contains(list[0].Message, "larger than") {
			t.Fatalf("LoadDraft with a 1 MiB + 1 file = %v", err)
		}
	})
	after, _ := os.ReadFile(live.Files[0])
	if string(after) != string(before) {
		t.Fatal("LoadDraft changed a live file")
	}
}
