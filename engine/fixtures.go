package engine

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/rules"
)

// FixtureResult is the outcome of one fixture test written in a rule file.
type FixtureResult struct {
	Fixture rules.Fixture
	Passed  bool
	// Problem says what differed, as one line.
	Problem string
	// Outcome is the fixture's own rule's outcome in its decision (empty
	// for a model's fixture); Matched lists every rule whose condition
	// held there. Together they say which rules the fixture covers.
	Outcome string
	Matched []string
}

// Error renders a failed fixture in the file:line:col: message form.
func (r FixtureResult) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s, test %q: %s", r.Fixture.File, r.Fixture.Line, r.Fixture.Col, fixtureOwnerName(r.Fixture), r.Fixture.Name, r.Problem)
}

// fixtureOwnerName names what a fixture is written under: a rule, a
// model or a trigger.
func fixtureOwnerName(f rules.Fixture) string {
	switch {
	case f.Trigger != "":
		return "trigger " + f.Trigger
	case f.Rule == "":
		return "model " + f.Model
	}
	return "rule " + f.Rule
}

// RunFixtures runs every fixture of rs through the same decision path that
// serves requests, with the fixture's customer and context.
func RunFixtures(rs *rules.Ruleset) []FixtureResult {
	var out []FixtureResult
	var d Decision
	for _, f := range rs.Fixtures() {
		out = append(out, runFixture(rs, f, &d))
	}
	return out
}

func runFixture(rs *rules.Ruleset, f rules.Fixture, d *Decision) FixtureResult {
	if f.Model != "" {
		return runModelFixture(rs, f, d)
	}
	if f.Trigger != "" {
		return runTriggerFixture(rs, f, d)
	}
	req := Request{CustomerID: "fixture", Now: f.Now, Explain: true}
	if req.Now.IsZero() {
		req.Now = time.Now()
	}
	for _, p := range f.Placements {
		req.Placements = append(req.Placements, PlacementRequest{ID: p.ID, Count: p.Count})
	}
	for _, c := range f.Context {
		req.Context = append(req.Context, ContextField{Name: c.Name, Value: c.Value})
	}
	res := FixtureResult{Fixture: f}
	if err := validate(rs, &req); err != nil {
		res.Problem = "the fixture's request is invalid: " + err.Message
		return res
	}
	s := d.prepare(rs)
	// A fixture is outside every experiment unless it names a variant:
	// where the hash of its made-up id falls means nothing.
	s.forced = make([]int, len(rs.Experiments))
	for i := range rs.Experiments {
		x := &rs.Experiments[i]
		s.forced[i] = notInExperiment
		switch name := f.Variants[x.ID]; name {
		case "", "none":
		case VariantHoldout:
			s.forced[i] = heldOut
		default:
			for v := range x.Variants {
				if x.Variants[v].Name == name {
					s.forced[i] = v
				}
			}
		}
	}
	run(rs, nil, fixtureRecord(rs, f), &req, d, nil)
	var diffs []string
	for _, p := range d.Placements {
		got := make([]string, len(p.Items))
		for i, it := range p.Items {
			got[i] = it.Touchpoint
		}
		want := f.Expect[p.ID]
		if !slices.Equal(got, want) {
			diffs = append(diffs, fmt.Sprintf("%s: expected [%s], got [%s]%s", p.ID, strings.Join(want, ", "), strings.Join(got, ", "), hint(rs, d.Explain, p.ID, got, want)))
		}
	}
	diffs = append(diffs, d.Explain.errorsOf(f.Rule)...)
	for _, r := range d.Explain.Rules {
		if r.Rule == f.Rule {
			res.Outcome = r.Outcome
		}
		if r.Outcome == OutcomeMatched {
			res.Matched = append(res.Matched, r.Rule)
		}
	}
	if len(diffs) == 0 {
		res.Passed = true
		return res
	}
	res.Problem = strings.Join(diffs, "; ")
	return res
}

// hint explains, for the first expected touchpoint that is missing, why the
// engine did not choose it; fixture failures are where marketers most need
// the explanation.
func hint(rs *rules.Ruleset, ex *Explanation, placement string, got, want []string) string {
	for _, tp := range want {
		if slices.Contains(got, tp) {
			continue
		}
		for _, c := range ex.Candidates {
			if c.Placement == placement && c.Touchpoint == tp && !c.Chosen {
				msg := fmt.Sprintf(" (%s from rule %s: %s", tp, c.Rule, strings.ReplaceAll(c.Reason, "_", " "))
				if c.By != "" {
					msg += " by " + c.By
				}
				return msg + ")"
			}
		}
		var outcomes []string
		ti := rs.Touchpoint(tp)
		for _, r := range ex.Rules {
			rule := &rs.Rules[ruleIndex(rs, r.Rule)]
			if slices.Contains(rule.Offer, ti) {
				outcomes = append(outcomes, "rule "+r.Rule+": "+strings.ReplaceAll(r.Outcome, "_", " "))
			}
		}
		if len(outcomes) == 0 {
			if pi := rs.Placement(placement); pi >= 0 && rs.Placements[pi].Fallback == ti {
				return fmt.Sprintf(" (%s is the fallback: shown only when nothing else is eligible, if the contact policy allows it)", tp)
			}
			return fmt.Sprintf(" (no rule offers %s)", tp)
		}
		return fmt.Sprintf(" (%s: %s)", tp, strings.Join(outcomes, ", "))
	}
	return ""
}

func ruleIndex(rs *rules.Ruleset, id string) int {
	for i := range rs.Rules {
		if rs.Rules[i].ID == id {
			return i
		}
	}
	return -1
}

func (ex *Explanation) errorsOf(rule string) []string {
	if ex == nil {
		return nil
	}
	var out []string
	for _, r := range ex.Rules {
		if r.Rule == rule && r.Outcome == OutcomeExpressionError {
			out = append(out, "rule "+r.Rule+" failed: "+r.Error)
		}
	}
	return out
}

// fixtureRecord adds the fixture's history and consent to its customer.
func fixtureRecord(rs *rules.Ruleset, f rules.Fixture) *features.Record {
	if len(f.History) == 0 && f.Consent == nil {
		return f.Customer
	}
	rec := &features.Record{ID: "fixture", Values: features.NewValues(map[string]features.Value{})}
	if f.Customer != nil {
		rec.Values = f.Customer.Values
	}
	today := features.Day(f.Now)
	if f.Now.IsZero() {
		today = features.Day(time.Now())
	}
	for _, h := range f.History {
		kind := ""
		if ti := rs.Touchpoint(h.Touchpoint); ti >= 0 {
			kind = rs.Touchpoints[ti].Kind
		}
		for _, subject := range features.Subjects(h.Touchpoint, kind, h.Rule, h.Channel) {
			rec.Counters = append(rec.Counters, features.Counter{Event: h.Event, Subject: subject, Day: today - int32(h.DaysAgo), Count: h.Count})
		}
	}
	if f.Consent != nil {
		rec.Consent = map[string]features.Consent{}
		for ch, granted := range f.Consent {
			rec.Consent[ch] = features.Consent{Granted: granted}
		}
	}
	return rec
}

// runModelFixture checks one model's output for the fixture's customer,
// context and touchpoint, bound as a decision binds them.
func runModelFixture(rs *rules.Ruleset, f rules.Fixture, d *Decision) FixtureResult {
	res := FixtureResult{Fixture: f}
	mi := rs.Model(f.Model)
	m := &rs.Models[mi]
	s := d.prepare(rs)
	env, schema := s.env, rs.Schema
	rec := fixtureRecord(rs, f)
	env.SetKnown(rec.Known())
	if rec != nil {
		s.setCustomer(schema, rec.Values)
		now := f.Now
		if now.IsZero() {
			now = time.Now()
		}
		for _, fi := range schema.Counters {
			env.SetCustomer(fi, features.Number(schema.Customer[fi].Counter.Value(rec.Counters, features.Day(now))))
		}
	}
	for _, c := range f.Context {
		env.SetContext(schema.ContextField(c.Name), c.Value)
	}
	switch ti := rs.Touchpoint(f.Touchpoint); {
	case ti >= 0:
		env.SetTouchpoint(ti, &rs.Touchpoints[ti])
	case m.PerCandidate:
		res.Problem = "model " + m.ID + " reads touchpoint attributes; name the touchpoint the test ranks (touchpoint: <id>)"
		return res
	}
	ex := env.ExplainModel(mi)
	if math.Abs(ex.Output-f.ExpectScore) <= f.Tolerance {
		res.Passed = true
		return res
	}
	res.Problem = fmt.Sprintf("model %s: expected %s ± %s, got %s", m.ID, fmtScore(f.ExpectScore), fmtScore(f.Tolerance), fmtScore(ex.Output))
	if len(ex.Top) > 0 {
		parts := make([]string, len(ex.Top))
		for i, c := range ex.Top {
			parts[i] = fmt.Sprintf("%s %+.4g", c.Input, c.Value)
		}
		res.Problem += " (largest contributions: " + strings.Join(parts, ", ") + ")"
	}
	return res
}

func fmtScore(v float64) string { return strconv.FormatFloat(v, 'g', 10, 64) }
