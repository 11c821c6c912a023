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

// A promotion chosen by a protected attribute, directly or through a
// segment, is warned about, as is a comparison with a value the schema
// does not allow; messages and content may read protected attributes.
func TestConditionLint(t *testing.T) {
	schema, err := ParseSchema("f.yaml", []byte("customer:\n  age: {type: number, protected: true}\n  tier: {type: string, values: [none, gold]}\ncontext:\n  channel: {type: string, values: [web, app]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	file := "segments:\n  young: customer.age < 30\n" +
		"touchpoints:\n  - {id: c, kind: coupon}\n  - {id: m, kind: message}\n" +
		"rules:\n" +
		"  - id: by_age\n    when: segment(\"young\") && customer.tier == \"gold\"\n    offer: [c]\n" +
		"  - id: birthday_note\n    when: customer.age >= 18\n    offer: [m]\n" +
		"  - id: typo\n    when: customer.tier == \"glod\" || context.channel != \"ios\"\n    offer: [m]\n"
	rs, err := Compile(schema, []string{"r.yaml"}, map[string][]byte{"r.yaml": []byte(file)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range rs.Warnings {
		if !strings.Contains(w.Error(), "has no tests") {
			got = append(got, w.Error())
		}
	}
	want := []string{
		"r.yaml:7:5: rule by_age offers a promotion to customers chosen by customer.age, which the schema marks protected: eligibility for offers and coupons must not depend on it",
		`r.yaml:13:5: rule typo: customer.tier == "glod" is never true: the schema allows only none, gold (did you mean gold?)`,
		`r.yaml:13:5: rule typo: context.channel != "ios" is always true: the schema allows only web, app`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
