package rules

import (
	"fmt"
	"strings"
	"testing"
)

func TestSplitTerms(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{`a && b && c`, `and [a b c]`},
		{`a && b || c`, `or [a && b c]`},
		{`(a || b) && c`, `and [(a || b) c]`},
		{`((a and b))`, `and [a b]`},
		{`customer.tier in ["a||b", 'c&&d'] && band`, `and [customer.tier in ["a||b", 'c&&d'] band]`},
		{`brand or android`, `or [brand android]`},
		{`a`, ` [a]`},
		{`(a) && (b)`, `and [(a) (b)]`},
	} {
		op, terms := splitTerms(c.src)
		if got := fmt.Sprintf("%s %v", op, terms); got != c.want {
			t.Errorf("%q: %s, want %s", c.src, got, c.want)
		}
	}
}

// Each term of a condition compiles alone, and a segment's terms come
// with it.
func TestWhenTerms(t *testing.T) {
	file := "segments:\n  rich: customer.ltv > 100 && customer.vip\n" + tps +
		"rules:\n  - id: r\n    when: segment(\"rich\") && context.channel == \"web\"\n    offer: [t]\n" +
		"  - id: one\n    when: customer.ltv > 5\n    offer: [u]\n"
	rs, err := compileModels(t, file, nil)
	if err != nil {
		t.Fatal(err)
	}
	op, terms := rs.WhenTerms(0)
	if op != "and" || len(terms) != 2 || terms[0].Segment != "rich" || len(terms[0].Terms) != 2 || terms[1].Source != `context.channel == "web"` {
		t.Fatalf("terms of r: %s %+v", op, terms)
	}
	for _, term := range append(terms, terms[0].Terms...) {
		if term.Program == nil {
			t.Errorf("term %q did not compile: %s", term.Source, term.Problem)
		}
	}
	if op, terms := rs.WhenTerms(1); op != "" || len(terms) != 1 || !strings.Contains(terms[0].Source, "ltv > 5") {
		t.Errorf("a single term: %s %+v", op, terms)
	}
	if _, again := rs.WhenTerms(0); &again[0] != &terms[0] {
		t.Errorf("terms are compiled once")
	}
}
