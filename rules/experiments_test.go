package rules

import (
	"strings"
	"testing"
)

// A rule that reads a variant but offers nothing the experiment's
// placements show is warned about: its effect would not be counted.
func TestExperimentLint(t *testing.T) {
	file := "experiments:\n  - id: x\n    variants: {a: 1, b: 1}\n    placements: [p]\n" +
		"placements:\n  - id: p\n  - id: q\n" +
		"touchpoints:\n  - {id: t, kind: offer, placements: [p]}\n  - {id: u, kind: offer, placements: [q]}\n" +
		"rules:\n  - id: in_test\n    when: variant(\"x\") == \"a\"\n    offer: [t]\n" +
		"  - id: elsewhere\n    when: variant(\"x\") == \"b\"\n    offer: [u]\n"
	rs, err := compileModels(t, file, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range rs.Warnings {
		if strings.Contains(w.Error(), "variant(") {
			got = append(got, w.Error())
		}
	}
	want := `r.yaml:15:5: rule elsewhere reads variant("x") but offers nothing the experiment's placements (p) show, so what it changes is not counted for the test`
	if len(got) != 1 || got[0] != want {
		t.Errorf("warnings %q, want only %q", got, want)
	}
}
