package rules

import "slices"

// ruleIndex finds the rules worth evaluating for one placement without
// looking at the others: each rule is filed under one of its guards (the
// context value it requires), or under always when it has none. A request
// then reads only the rules filed under its own context values, so the cost
// of a decision follows the number of rules that could apply to the page,
// not the size of the ruleset.
type ruleIndex struct {
	always  []int32
	byGuard map[guardKey][]int32
	fields  []guardField // fields used as keys
}

type guardField struct {
	customer bool
	field    int
}

type guardKey struct {
	guardField
	value string
}

func (x *ruleIndex) add(rule int32, g *Guard) {
	if g == nil {
		x.always = append(x.always, rule)
		return
	}
	if x.byGuard == nil {
		x.byGuard = map[guardKey][]int32{}
	}
	gf := guardField{customer: g.Customer, field: g.Field}
	if !slices.Contains(x.fields, gf) {
		x.fields = append(x.fields, gf)
	}
	for _, v := range g.Values {
		k := guardKey{guardField: gf, value: v}
		if l := x.byGuard[k]; len(l) == 0 || l[len(l)-1] != rule {
			x.byGuard[k] = append(l, rule)
		}
	}
}

// collect appends to out the rules that env's context may satisfy, once
// each, using seen (stamped with epoch) to skip duplicates.
func (x *ruleIndex) collect(env *Env, seen []uint32, epoch uint32, out []int32) []int32 {
	out = stamp(x.always, seen, epoch, out)
	for _, f := range x.fields {
		g := Guard{Customer: f.customer, Field: f.field}
		out = stamp(x.byGuard[guardKey{guardField: f, value: g.value(env)}], seen, epoch, out)
	}
	return out
}

func stamp(rules []int32, seen []uint32, epoch uint32, out []int32) []int32 {
	for _, r := range rules {
		if seen[r] != epoch {
			seen[r] = epoch
			out = append(out, r)
		}
	}
	return out
}

// indexKey picks the guard a rule is filed under: a condition on the
// context if it has one (pages and channels split traffic evenly), else one
// on the customer, else the channels its touchpoints can appear on.
func indexKey(rs *Ruleset, r *Rule) *Guard {
	for i := range r.Guards {
		if !r.Guards[i].Customer {
			return &r.Guards[i]
		}
	}
	if len(r.Guards) > 0 {
		return &r.Guards[0]
	}
	if r.Channels != nil {
		if f := rs.Schema.ContextField("channel"); f >= 0 && rs.Schema.Context[f].Type == TypeString {
			return &Guard{Field: f, Values: r.Channels}
		}
	}
	return nil
}

func buildIndex(rs *Ruleset) {
	rs.placementRules = make([]ruleIndex, len(rs.Placements))
	for ri := range rs.Rules {
		r := &rs.Rules[ri]
		key := indexKey(rs, r)
		if r.IsSuppress() {
			rs.suppressRules.add(int32(ri), key)
			continue
		}
		for pi, p := range rs.Placements {
			for _, ti := range r.Offer {
				if rs.Touchpoints[ti].Fits(pi, p.ID) {
					rs.placementRules[pi].add(int32(ri), key)
					break
				}
			}
		}
	}
}

// CandidateRules appends to out every rule that could affect a decision
// for these placements (Ruleset.Placement indexes) given the context bound
// in env: suppress rules whose guard the context meets, then offer rules
// that can fill one of the placements and whose guard the context meets,
// each group in rule order. suppress is how many of the appended rules
// are suppress rules. Every other rule is certain to be false or
// irrelevant. seen must have one entry per rule; pass a fresh epoch per
// call (never 0).
//
// Suppress rules come first so that a decision cut short (the engine's
// deadline) can tell whether every suppress rule ran.
func (rs *Ruleset) CandidateRules(placements []int, env *Env, seen []uint32, epoch uint32, out []int32) (rules []int32, suppress int) {
	start := len(out)
	out = rs.suppressRules.collect(env, seen, epoch, out)
	slices.Sort(out[start:])
	suppress = len(out) - start
	offers := len(out)
	for _, p := range placements {
		out = rs.placementRules[p].collect(env, seen, epoch, out)
	}
	slices.Sort(out[offers:])
	return out, suppress
}
