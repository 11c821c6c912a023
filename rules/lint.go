package rules

import "fmt"

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
	warns.sort()
	return warns
}

func suppressesAny(rs *Ruleset, r *Rule) bool {
	for i := range rs.Touchpoints {
		if r.Suppresses(&rs.Touchpoints[i], i) {
			return true
		}
	}
	return false
}
