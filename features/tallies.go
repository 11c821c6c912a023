package features

import "context"

// Tally is one increment of a counter every node shares: the outcomes of
// an experiment's arms and of a bandit placement's touchpoints are counted
// this way, so that reports and posteriors see the traffic of all nodes.
type Tally struct {
	// Scope groups the counters one reader reads together:
	// "exp:<experiment>" or "bandit:<placement>".
	Scope string
	// Field names one counter of the scope, such as "control|click".
	Field string
	Delta float64
}

// Tallies keeps counters shared by every node. Adding is not idempotent:
// callers add what they counted once (exposures counted by one node), and
// events carry their tallies in Event.Tallies, which ApplyEvents adds only
// for an event id it has not seen.
type Tallies interface {
	AddTallies(ctx context.Context, tallies []Tally) error
	// ReadTallies returns every counter of a scope (empty when none).
	ReadTallies(ctx context.Context, scope string) (map[string]float64, error)
}
