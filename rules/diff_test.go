package rules

import (
	"strings"
	"testing"
)

// Diff matches items by id across files, ignores comments and order, and
// says what each change is in the files' own words.
func TestDiff(t *testing.T) {
	schema, err := ParseSchema("f.yaml", []byte(modelSchema))
	if err != nil {
		t.Fatal(err)
	}
	compileFiles := func(files map[string]string) *Ruleset {
		t.Helper()
		var paths []string
		data := map[string][]byte{}
		for p, text := range files {
			paths = append(paths, p)
			data[p] = []byte(text)
		}
		rs, err := Compile(schema, paths, data)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	old := compileFiles(map[string]string{
		"a.yaml": "segments:\n  rich: customer.ltv > 100\npolicy:\n  caps:\n    - {count: 5, per: 1d}\n" +
			"placements:\n  - id: p\n  - id: gone\ntouchpoints:\n  - {id: t, kind: offer, placements: [p]}\n  - {id: u, kind: offer, placements: [p]}\n",
		"b.yaml": "rules:\n  - id: r\n    when: segment(\"rich\")\n    offer: [t]\n    priority: 5\n    tests:\n      - {customer: {ltv: 200}, expect: {p: [t]}}\n" +
			"  - id: s\n    when: true\n    offer: [u]\n",
	})
	cur := compileFiles(map[string]string{
		// r moved to another file, reordered and commented: only its
		// priority and fixtures changed.
		"a.yaml": "segments:\n  rich: customer.ltv > 500\npolicy:\n  caps:\n    - {count: 3, per: 1d}\n" +
			"placements:\n  - id: p\n    fallback: u\ntouchpoints:\n  - {id: t, kind: offer, placements: [p]}\n  - {id: u, kind: offer, placements: [p]}\n" +
			"rules:\n  # comment\n  - id: r\n    priority: 7\n    offer: [t]\n    when: segment(\"rich\")\n    tests:\n      - {customer: {ltv: 600}, expect: {p: [t]}}\n      - {customer: {ltv: 1}, expect: {p: [u]}}\n",
		"c.yaml": "rules:\n  - id: n\n    description: new one\n    when: true\n    offer: [t]\n",
	})
	changes, err := Diff(old, cur)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range changes {
		got = append(got, c.String())
	}
	want := []string{
		"placement gone removed (a.yaml:8)",
		"placement p changed (a.yaml:7)\n    fallback: added, u",
		"rule n added (c.yaml:2)\n    description: new one\n    when: true\n    offer: [t]",
		"rule r changed (a.yaml:14)\n    priority: 5 → 7\n    tests: changed (2 fixtures, were 1)",
		"rule s removed (b.yaml:8)",
		"segment rich changed (a.yaml:2)\n    condition: customer.ltv > 100 → customer.ltv > 500",
		"policy changed (a.yaml:3)\n    caps: [{count: 5, per: 1d}] → [{count: 3, per: 1d}]",
	}
	if strings.Join(got, "\n\n") != strings.Join(want, "\n\n") {
		t.Errorf("diff:\n%s\n\nwant:\n%s", strings.Join(got, "\n\n"), strings.Join(want, "\n\n"))
	}
	if same, _ := Diff(cur, cur); len(same) != 0 {
		t.Errorf("a ruleset differs from itself: %v", same)
	}
}
