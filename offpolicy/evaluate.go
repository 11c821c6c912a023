package offpolicy

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/touchpoint-dev/touchpoint/decisionlog/logread"
	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/replay"
	"github.com/touchpoint-dev/touchpoint/rules"
)

// Decider decides with the policy under evaluation: an engine serving the
// candidate ruleset.
type Decider interface {
	Decide(ctx context.Context, req *engine.Request, d *engine.Decision) error
	Ruleset() *rules.Ruleset
}

// Report is an evaluation of a candidate policy over a decision log.
type Report struct {
	// Decisions were read; Replayed were decided again; NoCustomerID
	// could not be (the log hashed customer ids, and features are looked
	// up by id); Failed were refused by the candidate ruleset (a placement
	// it does not have, say).
	Decisions, Replayed, NoCustomerID, Failed int
	// DroppedContext counts context fields the candidate schema does not
	// declare, left out of the replayed requests.
	DroppedContext int
	// Overall pools every placement; Placements is per placement id.
	Overall    Result
	Placements []PlacementReport
}

// PlacementReport is one placement's part of a Report.
type PlacementReport struct {
	ID string
	Result
	// Changed counts decisions whose first item differs from the logged
	// one; ByRule splits them by the rule that offered the new first item
	// ("" for a fallback or nothing).
	Changed int
	ByRule  map[string]int
}

// Evaluate replays every logged request through d and estimates, per
// placement and overall, the reward d's policy would earn, where a
// placement's reward is whether its first item got a reward event.
func Evaluate(ctx context.Context, d Decider, log io.Reader, rewards map[[2]string]bool) (*Report, error) {
	rep := &Report{}
	overall := &Estimator{}
	per := map[string]*Estimator{}
	reports := map[string]*PlacementReport{}
	rs := d.Ruleset()
	schema := rs.Schema
	var dec engine.Decision
	err := logread.ReadDecisions(log, func(line int, ld *logread.Decision) error {
		rep.Decisions++
		if ld.CustomerID == "" {
			rep.NoCustomerID++
			return nil
		}
		req, dropped, err := replay.Request(schema, ld)
		rep.DroppedContext += dropped
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if err := d.Decide(ctx, &req, &dec); err != nil {
			rep.Failed++
			return nil
		}
		rep.Replayed++
		for pi, p := range ld.Placements {
			logged, propensity := p.Shown()
			reward := 0.0
			if logged != "" && rewards[[2]string{ld.DecisionID, logged}] {
				reward = 1
			}
			newTP, newRule := "", ""
			target := 0.0
			if pi < len(dec.Placements) && len(dec.Placements[pi].Items) > 0 {
				it := &dec.Placements[pi].Items[0]
				newTP, newRule = it.Touchpoint, it.Rule
				if newTP == logged {
					target = assignmentShare(rs, it)
				}
			}
			same := newTP == logged
			overall.Add(propensity, reward, target)
			e := per[p.ID]
			if e == nil {
				e = &Estimator{}
				per[p.ID] = e
				reports[p.ID] = &PlacementReport{ID: p.ID, ByRule: map[string]int{}}
			}
			e.Add(propensity, reward, target)
			if !same {
				reports[p.ID].Changed++
				reports[p.ID].ByRule[newRule]++
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	rep.Overall = overall.Result()
	for id, pr := range reports {
		pr.Result = per[id].Result()
		rep.Placements = append(rep.Placements, *pr)
	}
	sort.Slice(rep.Placements, func(i, j int) bool { return rep.Placements[i].ID < rep.Placements[j].ID })
	return rep, nil
}

// assignmentShare is the probability of the experiment arm the new policy
// put item in (1 outside experiments). The logged propensity of an item
// includes its arm's share; the new policy's assignment is the same hash
// of the customer id, so it is weighed alike and the shares cancel when
// both policies run the experiment, while a policy without it gets the
// arm's customers reweighted to stand for everyone.
func assignmentShare(rs *rules.Ruleset, it *engine.Item) float64 {
	if it.Experiment == "" {
		return 1
	}
	xi := rs.Experiment(it.Experiment)
	if xi < 0 {
		return 1
	}
	x := rs.Experiments[xi].Experiment
	if it.Variant == engine.VariantHoldout {
		return x.Share(-1)
	}
	for v := range x.Variants {
		if x.Variants[v].Name == it.Variant {
			return x.Share(v)
		}
	}
	return 1
}
