package engine

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/rules"
)

// runTriggerFixture plays a trigger's test on a simulated clock: each
// event changes the customer as the schema's on section says and counts
// under its name; the trigger starts, restarts and is cancelled as it
// would be live; when it falls due it is decided as Fire decides it, with
// quiet hours moving it to their end. What it sends (and when) is checked
// against the test.
func runTriggerFixture(rs *rules.Ruleset, f rules.Fixture, d *Decision) FixtureResult {
	res := FixtureResult{Fixture: f}
	ti := rs.Trigger(f.Trigger)
	if ti < 0 {
		res.Problem = "no trigger " + f.Trigger
		return res
	}
	t := &rs.Triggers[ti]
	start := f.Now
	if start.IsZero() {
		start = time.Now()
	}
	rec := &features.Record{ID: "fixture", Values: features.NewValues(map[string]features.Value{})}
	if f.Customer != nil {
		rec.Values = f.Customer.Values
	}
	events := slices.Clone(f.Events)
	sort.SliceStable(events, func(i, j int) bool { return events[i].At < events[j].At })

	var due time.Time
	sent, sentAt, fired := []string(nil), time.Duration(-1), false
	fire := func(at time.Time) {
		fired = true
		for try := 0; try < 2; try++ {
			items, quietUntil := decideTrigger(rs, t, rec, at, d)
			if quietUntil.IsZero() || try == 1 {
				sent, sentAt = items, at.Sub(start)
				return
			}
			at = quietUntil
		}
	}
	for _, ev := range events {
		at := start.Add(ev.At)
		if !due.IsZero() && !due.After(at) {
			fire(due)
			due = time.Time{}
		}
		applyFixtureEvent(rs.Schema, rec, ev, at)
		if slices.Contains(t.Unless, ev.Name) {
			due = time.Time{}
		}
		if ev.Name == t.On {
			due = at.Add(t.Delay)
		}
	}
	if !due.IsZero() {
		fire(due)
	}
	var diffs []string
	if !slices.Equal(sent, f.ExpectSent) && !(len(sent) == 0 && len(f.ExpectSent) == 0) {
		what := "nothing"
		if !fired {
			what = "nothing (it never fell due)"
		}
		if len(sent) > 0 {
			what = "[" + strings.Join(sent, ", ") + "]"
		}
		diffs = append(diffs, fmt.Sprintf("expected it to send [%s], it sent %s", strings.Join(f.ExpectSent, ", "), what))
	}
	if f.ExpectAt >= 0 && len(sent) > 0 && sentAt != f.ExpectAt {
		diffs = append(diffs, fmt.Sprintf("expected it to send %s after now, it sent %s after", f.ExpectAt, sentAt))
	}
	if len(diffs) == 0 {
		res.Passed = true
		return res
	}
	res.Problem = strings.Join(diffs, "; ")
	return res
}

// decideTrigger decides a trigger's placement for rec at at, as Fire
// does: the touchpoints it would send (fallbacks left out), or, when
// quiet hours held the send back, when they end.
func decideTrigger(rs *rules.Ruleset, t *rules.Trigger, rec *features.Record, at time.Time, d *Decision) ([]string, time.Time) {
	placement := rs.Placements[t.Placement].ID
	req := Request{CustomerID: "fixture", Now: at, when: t.When,
		Placements: []PlacementRequest{{ID: placement}},
		Context:    []ContextField{{Name: "channel", Value: features.String(t.Channel)}}}
	if rs.Schema.ContextField("trigger") >= 0 {
		req.Context = append(req.Context, ContextField{Name: "trigger", Value: features.String(t.ID)})
	}
	s := d.prepare(rs)
	s.forced = make([]int, len(rs.Experiments))
	for i := range s.forced {
		s.forced[i] = notInExperiment
	}
	run(rs, nil, rec, &req, d, nil)
	var items []string
	for _, it := range SendItems(d) {
		items = append(items, it.Touchpoint)
	}
	if len(items) > 0 || d.held {
		return items, time.Time{}
	}
	return nil, quietEnd(rs, d, t.Channel, at)
}

// applyFixtureEvent changes rec as the event would in a store: the on
// section's updates, and a count under the event's name.
func applyFixtureEvent(schema *rules.Schema, rec *features.Record, ev rules.FixtureEvent, at time.Time) {
	rec.Counters = append(rec.Counters, features.Counter{Event: ev.Name, Subject: "all", Day: features.Day(at), Count: 1})
	ei := schema.Event(ev.Name)
	if ei < 0 {
		return
	}
	def := &schema.Events[ei]
	values := rec.Values.Map()
	defer func() { rec.Values = features.NewValues(values) }()
	for _, u := range def.Updates {
		f := &schema.Customer[u.Feature]
		v := u.Const
		if u.Property >= 0 {
			pv, ok := ev.Properties[def.Properties[u.Property].Name]
			if !ok {
				continue
			}
			v = pv
		}
		switch u.Op {
		case features.UpdateSet:
			values[f.Name] = v
		case features.UpdateAdd:
			cur := f.Default.Num
			if old, ok := values[f.Name]; ok && old.Kind == features.KindNumber {
				cur = old.Num
			}
			if sum := cur + v.Num; !math.IsInf(sum, 0) && !math.IsNaN(sum) {
				values[f.Name] = features.Number(sum)
			}
		}
	}
}
