package engine

import (
	"context"
	"time"

	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/rules"
)

// Why a trigger that fell due sends nothing (Fired.Held).
const (
	HeldUnknownTrigger = "unknown_trigger" // a reload removed it
	HeldCondition      = "condition_false" // its when did not hold
	HeldQuietHours     = "quiet_hours"     // wait for QuietUntil and try again
	HeldNothingChosen  = "nothing_chosen"  // no rule offered anything eligible
)

// Fired is the outcome of a trigger that fell due.
type Fired struct {
	// Held says why nothing is to be sent; empty when the decision chose
	// something (its items, fallbacks left out, are what to send).
	Held string
	// QuietUntil, with Held quiet_hours, is when the quiet window that
	// held the send back ends.
	QuietUntil time.Time
	// Placement, Channel and Delivery are the trigger's, as the ruleset
	// that decided has them (a reload may change them meanwhile).
	Placement, Channel string
	Delivery           rules.Delivery
	// Request is what was decided, for the decision log.
	Request Request
}

// Fire decides trigger for customerID at now, as a decide call would:
// the full rules and contact policy on the trigger's placement and
// channel, with context.trigger set to the trigger's id when the schema
// has that field. Its side effects are a real decision's: caps count it,
// budgets are spent, experiments expose it. log asks for d.Logged.
func (e *Engine) Fire(ctx context.Context, trigger, customerID string, now time.Time, log bool, d *Decision) (Fired, error) {
	rs := e.current.Load().rs
	ti := rs.Trigger(trigger)
	if ti < 0 {
		return Fired{Held: HeldUnknownTrigger}, nil
	}
	t := &rs.Triggers[ti]
	placement := rs.Placements[t.Placement].ID
	out := Fired{Placement: placement, Channel: t.Channel, Delivery: rs.Deliveries[t.Deliver]}
	req := Request{CustomerID: customerID, Now: now, Log: log, when: t.When,
		Placements: []PlacementRequest{{ID: placement}},
		Context:    []ContextField{{Name: "channel", Value: features.String(t.Channel)}}}
	if rs.Schema.ContextField("trigger") >= 0 {
		req.Context = append(req.Context, ContextField{Name: "trigger", Value: features.String(t.ID)})
	}
	if err := e.Decide(ctx, &req, d); err != nil {
		return out, err
	}
	out.Request = req
	out.Request.when = nil
	if d.held {
		out.Held = HeldCondition
		return out, nil
	}
	for _, p := range d.Placements {
		for _, it := range p.Items {
			if !it.Fallback {
				return out, nil
			}
		}
	}
	out.Held = HeldNothingChosen
	// Quiet hours hold the whole channel: when nothing was chosen in them,
	// the send waits for their end rather than be dropped. Checking the
	// window, not an explanation, keeps firings as cheap as decides.
	if end := quietEnd(rs, d, t.Channel, now); !end.IsZero() {
		out.Held, out.QuietUntil = HeldQuietHours, end
	}
	return out, nil
}

// quietEnd is when the quiet hours that hold channel at now end for the
// customer d was decided for; zero outside them.
func quietEnd(rs *rules.Ruleset, d *Decision, channel string, now time.Time) time.Time {
	if rs.Policy.Quiet == nil || d.scratch == nil {
		return time.Time{}
	}
	return rs.Policy.Quiet.EndFor(d.scratch.env, channel, now)
}

// SendItems returns the items of a fired decision worth sending: a
// fallback is what a page shows when nothing fits, not a message.
func SendItems(d *Decision) []Item {
	var out []Item
	for _, p := range d.Placements {
		for _, it := range p.Items {
			if !it.Fallback {
				out = append(out, it)
			}
		}
	}
	return out
}
