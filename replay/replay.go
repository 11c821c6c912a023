// Package replay re-decides past requests (a decision log, or JSON Lines
// of decide requests) with the ruleset being served and with a draft, on
// the same features, and reports what the draft would change: per
// placement and per rule, the decisions that gain, lose or swap a
// touchpoint, with examples. `touchpoint rules replay` prints it; the
// playground's draft replay uses it too.
package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"

	"github.com/touchpoint-dev/touchpoint/decisionlog/logread"
	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/rules"
)

// Decider decides with one ruleset: an engine made WithoutLearning, so
// that bandit placements rank by score and nothing is counted.
type Decider interface {
	Decide(ctx context.Context, req *engine.Request, d *engine.Decision) error
	Ruleset() *rules.Ruleset
}

// Kinds of change of one placement in one request. Fallbacks count as
// showing nothing: a placement whose coupon gives way to its fallback
// lost the coupon.
const (
	Unchanged = "unchanged"
	Gained    = "gained"  // the draft shows everything the base did, and more
	Lost      = "lost"    // the draft shows part of what the base did, and nothing else
	Swapped   = "swapped" // the draft shows something else
)

// Options bound a replay's report.
type Options struct {
	// Examples is how many changed decisions to keep per placement and
	// kind of change.
	Examples int
}

// Report is what a draft would change over a set of requests.
type Report struct {
	// BaseVersion and DraftVersion are the rulesets compared.
	BaseVersion, DraftVersion string
	// Requests were read; Replayed were decided by both rulesets;
	// NoCustomerID could not be (the log hashed customer ids); Failed were
	// refused by one of them (FailedExample says why, for the first).
	Requests, Replayed, NoCustomerID, Failed int
	FailedExample                            string
	// DroppedContext counts context fields a schema does not declare,
	// left out of the replayed requests.
	DroppedContext int
	Placements     []PlacementChanges
	// Rules lists, per rule that offered something either ruleset showed
	// and the other did not ("" for fallbacks), the touchpoints the draft
	// shows more and shows no more.
	Rules []RuleChanges
}

// PlacementChanges counts one placement's decisions by kind of change.
type PlacementChanges struct {
	ID                               string
	Decisions                        int
	Unchanged, Gained, Lost, Swapped int
	Examples                         []Example
}

// Changed is the decisions of the placement that would change.
func (p *PlacementChanges) Changed() int { return p.Gained + p.Lost + p.Swapped }

// RuleChanges is one rule's share of the changes.
type RuleChanges struct {
	Rule string
	// Gains are touchpoints the rule offers that the draft shows where the
	// base did not; Losses those it offered in the base and the draft
	// no longer shows.
	Gains, Losses int
}

// Example is one changed decision of a placement.
type Example struct {
	Line        int // in the input
	DecisionID  string
	CustomerID  string
	Kind        string
	Base, Draft []Shown
}

// Shown is one item a ruleset showed.
type Shown struct {
	Touchpoint, Rule string
	Fallback         bool
}

// Changed is the share of replayed placement decisions that would change.
func (r *Report) Changed() float64 {
	total, changed := 0, 0
	for i := range r.Placements {
		total += r.Placements[i].Decisions
		changed += r.Placements[i].Changed()
	}
	if total == 0 {
		return 0
	}
	return float64(changed) / float64(total)
}

// Run reads the requests and decides each with base and draft.
func Run(ctx context.Context, base, draft Decider, requests io.Reader, opts Options) (*Report, error) {
	rep := &Report{BaseVersion: base.Ruleset().Version, DraftVersion: draft.Ruleset().Version}
	placements := map[string]*PlacementChanges{}
	ruleStats := map[string]*RuleChanges{}
	rule := func(id string) *RuleChanges {
		r := ruleStats[id]
		if r == nil {
			r = &RuleChanges{Rule: id}
			ruleStats[id] = r
		}
		return r
	}
	var bd, dd engine.Decision
	err := logread.ReadRequests(requests, func(line int, ld *logread.Decision) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		rep.Requests++
		if ld.CustomerID == "" {
			rep.NoCustomerID++
			return nil
		}
		breq, dropped, err := Request(base.Ruleset().Schema, ld)
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		dreq, dropped2, err := Request(draft.Ruleset().Schema, ld)
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		rep.DroppedContext += max(dropped, dropped2)
		errB := base.Decide(ctx, &breq, &bd)
		errD := draft.Decide(ctx, &dreq, &dd)
		if errB != nil || errD != nil {
			rep.Failed++
			if rep.FailedExample == "" {
				which, e := "the base", errB
				if e == nil {
					which, e = "the draft", errD
				}
				rep.FailedExample = fmt.Sprintf("line %d: %s refused it: %v", line, which, e)
			}
			return nil
		}
		rep.Replayed++
		for pi, p := range ld.Placements {
			pc := placements[p.ID]
			if pc == nil {
				pc = &PlacementChanges{ID: p.ID}
				placements[p.ID] = pc
			}
			pc.Decisions++
			b, d := shown(&bd, pi), shown(&dd, pi)
			kind := compare(b, d)
			switch kind {
			case Unchanged:
				pc.Unchanged++
				continue
			case Gained:
				pc.Gained++
			case Lost:
				pc.Lost++
			case Swapped:
				pc.Swapped++
			}
			for _, s := range d {
				if !s.Fallback && !offered(b, s.Touchpoint) {
					rule(s.Rule).Gains++
				}
			}
			for _, s := range b {
				if !s.Fallback && !offered(d, s.Touchpoint) {
					rule(s.Rule).Losses++
				}
			}
			if countKind(pc.Examples, kind) < opts.Examples {
				pc.Examples = append(pc.Examples, Example{Line: line, DecisionID: ld.DecisionID, CustomerID: ld.CustomerID, Kind: kind, Base: b, Draft: d})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, pc := range placements {
		rep.Placements = append(rep.Placements, *pc)
	}
	sort.Slice(rep.Placements, func(i, j int) bool { return rep.Placements[i].ID < rep.Placements[j].ID })
	for _, rc := range ruleStats {
		rep.Rules = append(rep.Rules, *rc)
	}
	sort.Slice(rep.Rules, func(i, j int) bool {
		a, b := rep.Rules[i], rep.Rules[j]
		if a.Gains+a.Losses != b.Gains+b.Losses {
			return a.Gains+a.Losses > b.Gains+b.Losses
		}
		return a.Rule < b.Rule
	})
	return rep, nil
}

// shown is what placement pi of d showed.
func shown(d *engine.Decision, pi int) []Shown {
	if pi >= len(d.Placements) {
		return nil
	}
	items := d.Placements[pi].Items
	out := make([]Shown, len(items))
	for i, it := range items {
		out[i] = Shown{Touchpoint: it.Touchpoint, Rule: it.Rule, Fallback: it.Fallback}
	}
	return out
}

// compare classifies the change from base to draft, fallbacks counting as
// nothing shown.
func compare(base, draft []Shown) string {
	if slices.Equal(base, draft) {
		return Unchanged
	}
	b, d := offers(base), offers(draft)
	missing, extra := 0, 0
	for _, tp := range b {
		if !slices.Contains(d, tp) {
			missing++
		}
	}
	for _, tp := range d {
		if !slices.Contains(b, tp) {
			extra++
		}
	}
	switch {
	case missing == 0 && extra == 0:
		// The same offers in another order, or another fallback.
		return Swapped
	case missing == 0:
		return Gained
	case extra == 0:
		return Lost
	}
	return Swapped
}

// offers are the touchpoints shown, fallbacks left out.
func offers(list []Shown) []string {
	var out []string
	for _, s := range list {
		if !s.Fallback {
			out = append(out, s.Touchpoint)
		}
	}
	return out
}

func offered(list []Shown, tp string) bool {
	return slices.ContainsFunc(list, func(s Shown) bool { return !s.Fallback && s.Touchpoint == tp })
}

func countKind(list []Example, kind string) int {
	n := 0
	for _, e := range list {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// Request builds the decide request of a logged one against schema.
// Context fields the schema does not declare are left out and counted in
// dropped; a value of the wrong type is an error.
func Request(schema *rules.Schema, ld *logread.Decision) (req engine.Request, dropped int, err error) {
	req.CustomerID = ld.CustomerID
	for _, p := range ld.Placements {
		req.Placements = append(req.Placements, engine.PlacementRequest{ID: p.ID, Count: p.Count})
	}
	for name, raw := range ld.Context {
		fi := schema.ContextField(name)
		if fi < 0 {
			dropped++
			continue
		}
		v, ok := contextValue(raw, schema.Context[fi].Type)
		if !ok {
			return req, dropped, fmt.Errorf("context.%s is not a %s", name, schema.Context[fi].Type)
		}
		req.Context = append(req.Context, engine.ContextField{Name: name, Value: v})
	}
	sort.Slice(req.Context, func(i, j int) bool { return req.Context[i].Name < req.Context[j].Name })
	return req, dropped, nil
}

// contextValue types a logged context value against the schema.
func contextValue(raw json.RawMessage, t rules.FieldType) (features.Value, bool) {
	switch t {
	case rules.TypeNumber:
		var f float64
		if json.Unmarshal(raw, &f) != nil {
			return features.Value{}, false
		}
		return features.Number(f), true
	case rules.TypeBool:
		var b bool
		if json.Unmarshal(raw, &b) != nil {
			return features.Value{}, false
		}
		return features.Bool(b), true
	case rules.TypeList:
		var l []string
		if json.Unmarshal(raw, &l) != nil {
			return features.Value{}, false
		}
		return features.List(l...), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return features.Value{}, false
	}
	return features.String(s), true
}
