package rules

import (
	"fmt"
	"strings"
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
