package rules

import (
	"fmt"
	"slices"
	"strings"

	"github.com/expr-lang/expr/ast"
)

// lint finds problems that do not stop a ruleset from serving but almost
// always mean a mistake: `touchpoint rules check` fails on them, the server
// loads the ruleset and logs them.
func lint(rs *Ruleset, placements []item) ErrorList {
	var warns ErrorList
	at := func(path string, line, col int, format string, args ...any) {
		warns = append(warns, &Error{File: path, Line: line, Col: col, Message: fmt.Sprintf(format, args...)})
	}
	offered := make([]bool, len(rs.Touchpoints))
	for _, r := range rs.Rules {
		for _, tp := range r.Offer {
			offered[tp] = true
		}
		if r.IsSuppress() && !suppressesAny(rs, &r) {
			at(r.File, r.Line, r.Col, "rule %s: suppress matches no touchpoint", r.ID)
		}
		if len(r.Tests) == 0 {
			at(r.File, r.Line, r.Col, "rule %s has no tests", r.ID)
		}
	}
	isFallback := make([]bool, len(rs.Touchpoints))
	for _, p := range rs.Placements {
		if p.Fallback >= 0 {
			isFallback[p.Fallback] = true
		}
	}
	for i, tp := range rs.Touchpoints {
		if !offered[i] && !isFallback[i] {
			at(tp.File, tp.Line, tp.Col, "touchpoint %s is never offered by a rule nor used as a fallback", tp.ID)
		}
	}
	for i, p := range rs.Placements {
		if p.Fallback >= 0 {
			continue
		}
		fillable := false
		for t := range rs.Touchpoints {
			if offered[t] && rs.Touchpoints[t].FitsPlacement(p.ID) {
				fillable = true
				break
			}
		}
		if !fillable {
			it := placements[i]
			at(it.r.src.path, it.node.Line, it.node.Column, "placement %s: no touchpoint offered by a rule can fill it, and it has no fallback", p.ID)
		}
	}
	lintModels(rs, at)
	lintExperiments(rs, at)
	lintConditions(rs, at)
	warns.sort()
	return warns
}

// lintModels warns about models nobody reads, and about candidates that a
// placement ranks by propensity without a model to give one: their rule's
// score stands in, which for a rule without a score is 1, above any
// probability a model gives, so they would lead by accident.
func lintModels(rs *Ruleset, at func(path string, line, col int, format string, args ...any)) {
	used := make([]bool, len(rs.Models))
	mark := func(list ...int) {
		for _, m := range list {
			if m >= 0 {
				used[m] = true
			}
		}
	}
	for i := range rs.Rules {
		mark(rs.Rules[i].Models...)
		mark(rs.Rules[i].Propensity)
	}
	for i := range rs.Touchpoints {
		mark(rs.Touchpoints[i].ValueModels...)
		mark(rs.Touchpoints[i].Propensity)
	}
	for i := range rs.Placements {
		mark(rs.Placements[i].ArbitrationModels...)
	}
	for i, m := range rs.Models {
		if !used[i] {
			at(m.File, m.Line, m.Col, "model %s is never used: no rule, touchpoint or placement reads it", m.ID)
		}
	}
	for _, p := range rs.Placements {
		if p.Arbitration == nil || !readsName(p.Arbitration.Node(), "propensity") {
			continue
		}
		warned := map[int]bool{}
		for _, r := range rs.Rules {
			if r.Propensity >= 0 {
				continue
			}
			for _, ti := range r.Offer {
				t := &rs.Touchpoints[ti]
				if t.Propensity >= 0 || warned[ti] || !t.FitsPlacement(p.ID) {
					continue
				}
				warned[ti] = true
				at(t.File, t.Line, t.Col, "touchpoint %s: placement %s ranks by propensity, but neither it nor rule %s names a propensity model, so the rule's score stands in; name one (propensity: <model>) or leave propensity out of the formula",
					t.ID, p.ID, r.ID)
			}
		}
	}
}

func suppressesAny(rs *Ruleset, r *Rule) bool {
	for i := range rs.Touchpoints {
		if r.Suppresses(&rs.Touchpoints[i], i) {
			return true
		}
	}
	return false
}

// lintExperiments warns about a rule that reads an experiment's variant
// but offers nothing the experiment's placements can show: what the
// variant changes would never be counted for its arm.
func lintExperiments(rs *Ruleset, at func(path string, line, col int, format string, args ...any)) {
	for ri := range rs.Rules {
		r := &rs.Rules[ri]
		for _, xi := range r.Experiments {
			x := &rs.Experiments[xi]
			if x.Placements == nil || r.IsSuppress() {
				continue
			}
			counted := false
			for _, tp := range r.Offer {
				for _, pi := range x.Placements {
					if rs.Touchpoints[tp].Fits(pi, rs.Placements[pi].ID) {
						counted = true
					}
				}
			}
			if !counted {
				names := make([]string, len(x.Placements))
				for i, pi := range x.Placements {
					names[i] = rs.Placements[pi].ID
				}
				at(r.File, r.Line, r.Col, "rule %s reads variant(%q) but offers nothing the experiment's placements (%s) show, so what it changes is not counted for the test",
					r.ID, x.ID, strings.Join(names, ", "))
			}
		}
	}
}

// lintConditions warns about promotions whose eligibility reads a
// protected customer attribute (segments included, since they are inlined
// into the rule), and about comparisons with a value the schema does not
// allow for the field, which can never be equal.
func lintConditions(rs *Ruleset, at func(path string, line, col int, format string, args ...any)) {
	for ri := range rs.Rules {
		r := &rs.Rules[ri]
		if r.When == nil {
			continue
		}
		promotes := false
		for _, tp := range r.Offer {
			if k := rs.Touchpoints[tp].Kind; k == "offer" || k == "coupon" {
				promotes = true
			}
		}
		var protected, impossible []string
		walk(r.When.Node(), func(n ast.Node) {
			if promotes {
				if f := customerField(rs.Schema, n); f != nil && f.Protected && !slices.Contains(protected, f.Name) {
					protected = append(protected, f.Name)
				}
			}
			if msg := impossibleComparison(rs.Schema, n); msg != "" && !slices.Contains(impossible, msg) {
				impossible = append(impossible, msg)
			}
		})
		for _, name := range protected {
			at(r.File, r.Line, r.Col, "rule %s offers a promotion to customers chosen by customer.%s, which the schema marks protected: eligibility for offers and coupons must not depend on it", r.ID, name)
		}
		for _, msg := range impossible {
			at(r.File, r.Line, r.Col, "rule %s: %s", r.ID, msg)
		}
	}
}

// customerField is the schema field n reads as customer.<name>, or nil.
func customerField(s *Schema, n ast.Node) *Field {
	m, ok := n.(*ast.MemberNode)
	if !ok {
		return nil
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	prop, ok2 := m.Property.(*ast.StringNode)
	if !ok || !ok2 || id.Value != "customer" {
		return nil
	}
	if i := s.CustomerField(prop.Value); i >= 0 {
		return &s.Customer[i]
	}
	return nil
}

// impossibleComparison describes `customer.f == "x"` (or context.f) where
// f declares values and "x" is not one of them: always false ("!=":
// always true).
func impossibleComparison(s *Schema, n ast.Node) string {
	b, ok := n.(*ast.BinaryNode)
	if !ok || b.Operator != "==" && b.Operator != "!=" {
		return ""
	}
	check := func(field, value ast.Node) string {
		lit, ok := value.(*ast.StringNode)
		if !ok {
			return ""
		}
		m, ok := field.(*ast.MemberNode)
		if !ok {
			return ""
		}
		id, ok := m.Node.(*ast.IdentifierNode)
		prop, ok2 := m.Property.(*ast.StringNode)
		if !ok || !ok2 {
			return ""
		}
		var f *Field
		switch id.Value {
		case "customer":
			if i := s.CustomerField(prop.Value); i >= 0 {
				f = &s.Customer[i]
			}
		case "context":
			if i := s.ContextField(prop.Value); i >= 0 {
				f = &s.Context[i]
			}
		}
		if f == nil || len(f.Values) == 0 || slices.Contains(f.Values, lit.Value) {
			return ""
		}
		outcome := "never true"
		if b.Operator == "!=" {
			outcome = "always true"
		}
		return fmt.Sprintf("%s.%s %s %q is %s: the schema allows only %s%s", id.Value, f.Name, b.Operator, lit.Value, outcome,
			strings.Join(f.Values, ", "), Suggest(lit.Value, f.Values))
	}
	if msg := check(b.Left, b.Right); msg != "" {
		return msg
	}
	return check(b.Right, b.Left)
}
