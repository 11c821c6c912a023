package rules

import (
	"strings"
	"sync"

	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/vm"
	"go.yaml.in/yaml/v3"
)

// Term is one operand of a rule condition's top-level && or || chain,
// compiled alone so that explain can say which part of a false condition
// failed. A term that is just segment("name") carries the segment's own
// terms.
type Term struct {
	Source  string
	Program *vm.Program // nil: it cannot be evaluated alone (Problem says why)
	Problem string
	Segment string
	Terms   []Term
}

// termCompiler compiles rule conditions' terms on first demand: explain
// is rare, and compiling every term at load would double the cost of
// loading large rulesets. It keeps the load's compiler, with one of its
// configurations, behind a mutex.
type termCompiler struct {
	mu    sync.Mutex
	comp  *exprCompiler
	terms map[int]*ruleTerms
}

type ruleTerms struct {
	op    string
	terms []Term
}

// maxTerms bounds the terms explained per condition (and per segment).
const maxTerms = 32

func newTermCompiler(comp *exprCompiler) *termCompiler {
	// One configuration is enough here; the others may go.
	comp.configs = []*conf.Config{comp.configs[0]}
	return &termCompiler{comp: comp, terms: map[int]*ruleTerms{}}
}

// WhenTerms splits rule i's condition at its top-level && (op "and") or
// || (op "or") and compiles each operand; a condition that is not such a
// chain is one term. Results are kept for the ruleset's life.
func (rs *Ruleset) WhenTerms(i int) (op string, terms []Term) {
	tc := rs.termCompiler
	if tc == nil || i < 0 || i >= len(rs.Rules) || rs.Rules[i].WhenSource == "" {
		return "", nil
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if t, ok := tc.terms[i]; ok {
		return t.op, t.terms
	}
	op, terms = tc.compileTerms(rs.Rules[i].WhenSource, 0)
	tc.terms[i] = &ruleTerms{op: op, terms: terms}
	return op, terms
}

func (tc *termCompiler) compileTerms(src string, depth int) (string, []Term) {
	op, parts := splitTerms(src)
	if len(parts) > maxTerms {
		parts = parts[:maxTerms]
	}
	terms := make([]Term, len(parts))
	for j, p := range parts {
		t := Term{Source: p}
		var errs ErrorList
		r := &reader{src: newSource("term", []byte(p)), errs: &errs}
		t.Program = tc.comp.compileScoped(r, &yaml.Node{Kind: yaml.ScalarNode, Value: p, Line: 1, Column: 1}, exprBool, "term", 0, scopeRule)
		if t.Program == nil {
			t.Problem = "cannot be evaluated alone"
			if len(errs) > 0 {
				t.Problem = errs[0].Message
			}
		}
		if name, ok := segmentCall(p); ok && depth == 0 {
			if seg := tc.comp.segments[name]; seg != nil {
				t.Segment = name
				_, t.Terms = tc.compileTerms(seg.source, depth+1)
			}
		}
		terms[j] = t
	}
	return op, terms
}

// segmentCall reports whether src is just segment("name").
func segmentCall(src string) (string, bool) {
	s := strings.TrimSpace(src)
	rest, ok := strings.CutPrefix(s, "segment(")
	if !ok || !strings.HasSuffix(rest, ")") {
		return "", false
	}
	arg := strings.TrimSpace(strings.TrimSuffix(rest, ")"))
	if len(arg) < 2 || (arg[0] != '"' && arg[0] != '\'') || arg[len(arg)-1] != arg[0] || strings.ContainsAny(arg[1:len(arg)-1], `"'()`) {
		return "", false
	}
	return arg[1 : len(arg)-1], true
}

// splitTerms splits an expression at its top-level || (or "or") if it
// has any, else at its top-level && (or "and"), the way expr groups them
// (&& binds tighter); outer parentheses around the whole are removed
// first. An expression with neither is one term, with op "".
func splitTerms(src string) (op string, terms []string) {
	s := strings.TrimSpace(src)
	for enclosed(s) {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	for _, o := range []struct{ op, sym, word string }{{"or", "||", "or"}, {"and", "&&", "and"}} {
		cuts := topLevel(s, o.sym, o.word)
		if len(cuts) == 0 {
			continue
		}
		prev := 0
		for _, c := range cuts {
			terms = append(terms, strings.TrimSpace(s[prev:c[0]]))
			prev = c[1]
		}
		terms = append(terms, strings.TrimSpace(s[prev:]))
		return o.op, terms
	}
	return "", []string{s}
}

// enclosed reports whether s is wholly inside one pair of parentheses.
func enclosed(s string) bool {
	if len(s) < 2 || s[0] != '(' || s[len(s)-1] != ')' {
		return false
	}
	whole := true
	depth := scanCode(s, func(i, depth int) int {
		if depth == 0 && i != len(s)-1 {
			whole = false // the first parenthesis closed before the end
		}
		return 0
	})
	return whole && depth == 0
}

// topLevel finds the [start, end) spans of the operator sym, or the word
// operator word, outside brackets and string literals.
func topLevel(s, sym, word string) [][2]int {
	var out [][2]int
	isIdent := func(c byte) bool {
		return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.'
	}
	scanCode(s, func(i, depth int) int {
		switch {
		case depth != 0:
		case strings.HasPrefix(s[i:], sym):
			out = append(out, [2]int{i, i + len(sym)})
			return len(sym) - 1
		case strings.HasPrefix(s[i:], word) && (i == 0 || !isIdent(s[i-1])) && (i+len(word) == len(s) || !isIdent(s[i+len(word)])):
			out = append(out, [2]int{i, i + len(word)})
			return len(word) - 1
		}
		return 0
	})
	return out
}

// scanCode calls at for each byte of s outside string literals with the
// bracket depth after it, and skips as many more bytes as at returns; it
// returns the depth at the end.
func scanCode(s string, at func(i, depth int) int) int {
	depth := 0
	inStr := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inStr != 0:
			if c == '\\' {
				i++
			} else if c == inStr {
				inStr = 0
			}
			continue
		case c == '"' || c == '\'' || c == '`':
			inStr = c
			continue
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || c == ']' || c == '}':
			depth--
		}
		i += at(i, depth)
	}
	return depth
}
