package experiments

import (
	"io"
	"math"

	"github.com/touchpoint-dev/touchpoint/decisionlog/logread"
)

// Holdout is the name reports and answers give an experiment's holdout.
const Holdout = "holdout"

// Arm is one variant's (or the holdout's) outcomes in a report.
type Arm struct {
	Name string
	// Exposures are decisions in which the customer, in this arm, asked
	// for a placement the experiment covers; Impressions, Clicks and
	// Conversions are the events reported for the items shown there,
	// Revenue the conversions' values.
	Exposures, Impressions, Clicks, Conversions int64
	Revenue                                     float64
	// Expected is the arm's configured share of the experiment, in
	// percent.
	Expected float64
}

// ClickRate is clicks per impression; ConversionRate conversions per
// exposure.
func (a *Arm) ClickRate() Proportion { return Proportion{a.Clicks, a.Impressions} }

// ConversionRate is conversions per exposure.
func (a *Arm) ConversionRate() Proportion { return Proportion{a.Conversions, a.Exposures} }

// Report is an experiment's outcomes per arm, read from a decision log and
// the events that followed its decisions.
type Report struct {
	Experiment string
	Arms       []Arm // the variants in order, then the holdout
	// SRMChi2 and SRMP test the exposures against the configured split.
	SRMChi2, SRMP float64
	// Unattributed counts events whose decision is not in the log.
	Unattributed int
}

// SampleRatioMismatch reports whether the exposures are too far from the
// configured split to trust the comparisons.
func (r *Report) SampleRatioMismatch() bool { return r.SRMP < SRMThreshold }

// Arm returns the arm named name, or nil.
func (r *Report) Arm(name string) *Arm {
	for i := range r.Arms {
		if r.Arms[i].Name == name {
			return &r.Arms[i]
		}
	}
	return nil
}

// BuildReport reads a decision log and its events for experiment x. An
// exposure is a logged decision in which a placement counted for one of
// the experiment's arms (the customer entered and asked for a placement
// it covers), as the live counters count them; logs written before
// placements recorded their arm count decisions with a chosen item of the
// experiment. Events count for the arm of the item (decision id and
// touchpoint) they report on.
func BuildReport(x *Experiment, log, events io.Reader) (*Report, error) {
	rep := newReport(x)
	index := map[string]int{}
	for i := range rep.Arms {
		index[rep.Arms[i].Name] = i
	}
	// Which arm each shown item of the experiment belongs to.
	shown := map[[2]string]int{}
	err := logread.ReadDecisions(log, func(_ int, d *logread.Decision) error {
		exposed := -1
		for _, p := range d.Placements {
			if p.Experiment == x.ID {
				if arm, ok := index[p.Variant]; ok {
					exposed = arm
				}
			}
			for _, c := range p.Candidates {
				if !c.Chosen || c.Experiment != x.ID {
					continue
				}
				arm, ok := index[c.Variant]
				if !ok {
					continue // a variant since removed from the experiment
				}
				shown[[2]string{d.DecisionID, c.Touchpoint}] = arm
				exposed = arm
			}
		}
		if exposed >= 0 {
			rep.Arms[exposed].Exposures++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = logread.ReadEvents(events, func(_ int, ev *logread.Event) error {
		arm, ok := shown[[2]string{ev.DecisionID, ev.Touchpoint}]
		if !ok {
			rep.Unattributed++
			return nil
		}
		a := &rep.Arms[arm]
		switch ev.Type {
		case "impression":
			a.Impressions++
		case "click":
			a.Clicks++
		case "conversion":
			a.Conversions++
			a.Revenue += ev.Value
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	rep.checkRatio()
	return rep, nil
}

// newReport is an empty report of x's arms: its variants, then its
// holdout if it has one.
func newReport(x *Experiment) *Report {
	rep := &Report{Experiment: x.ID}
	total := 0.0
	for _, v := range x.Variants {
		total += v.Weight
	}
	for _, v := range x.Variants {
		rep.Arms = append(rep.Arms, Arm{Name: v.Name, Expected: (100 - x.Holdout) * v.Weight / total})
	}
	if x.Holdout > 0 {
		rep.Arms = append(rep.Arms, Arm{Name: Holdout, Expected: x.Holdout})
	}
	return rep
}

// checkRatio tests the exposures against the configured split.
func (r *Report) checkRatio() {
	observed := make([]int64, len(r.Arms))
	shares := make([]float64, len(r.Arms))
	for i, a := range r.Arms {
		observed[i], shares[i] = a.Exposures, a.Expected
	}
	r.SRMChi2, r.SRMP = SampleRatio(observed, shares)
}

// Counter names of an arm's live counters: the field "<arm>|<name>" of
// the experiment's tallies (see CounterField).
const (
	CounterExposures = "exposures"
	CounterRevenue   = "revenue"
)

// CounterField is the tally field of one of an arm's counters: an event
// type (impression, click, conversion), CounterExposures or
// CounterRevenue.
func CounterField(arm, counter string) string { return arm + "|" + counter }

// ReportFromCounters builds x's report from its live counters, as the
// store keeps them (CounterField → count). Counters of arms no longer in
// the experiment are left out.
func ReportFromCounters(x *Experiment, counters map[string]float64) *Report {
	rep := newReport(x)
	for i := range rep.Arms {
		a := &rep.Arms[i]
		n := func(c string) int64 { return int64(math.Round(counters[CounterField(a.Name, c)])) }
		a.Exposures = n(CounterExposures)
		a.Impressions, a.Clicks, a.Conversions = n("impression"), n("click"), n("conversion")
		a.Revenue = counters[CounterField(a.Name, CounterRevenue)]
	}
	rep.checkRatio()
	return rep
}
