package experiments

import "math"

// Summary is a report as the API answers it (GET /v1/experiments/{id}):
// the counts of each arm with their rates, intervals and comparisons
// worked out, so that a client need not know the statistics.
type Summary struct {
	Experiment  string             `json:"experiment"`
	Arms        []ArmSummary       `json:"arms"`
	SampleRatio SampleRatioSummary `json:"sample_ratio"`
}

// ArmSummary is one arm of a Summary.
type ArmSummary struct {
	Name            string  `json:"name"`
	ExpectedPercent float64 `json:"expected_percent"`
	Exposures       int64   `json:"exposures"`
	Impressions     int64   `json:"impressions"`
	Clicks          int64   `json:"clicks"`
	Conversions     int64   `json:"conversions"`
	Revenue         float64 `json:"revenue"`
	// ClickRate is clicks per impression, ConversionRate conversions per
	// exposure.
	ClickRate      RateSummary `json:"click_rate"`
	ConversionRate RateSummary `json:"conversion_rate"`
	// OverControl compares a variant with the first variant, OverHoldout
	// with the holdout; absent where they do not apply.
	OverControl *UpliftSummary `json:"over_control,omitempty"`
	OverHoldout *UpliftSummary `json:"over_holdout,omitempty"`
}

// RateSummary is a rate with its 95% Wilson interval.
type RateSummary struct {
	Rate float64 `json:"rate"`
	Low  float64 `json:"low"`
	High float64 `json:"high"`
}

// UpliftSummary compares both rates of an arm with a baseline.
type UpliftSummary struct {
	Baseline    string            `json:"baseline"`
	Clicks      ComparisonSummary `json:"click_rate"`
	Conversions ComparisonSummary `json:"conversion_rate"`
}

// ComparisonSummary is a Comparison without NaN: Uplift is null when the
// baseline's rate is 0.
type ComparisonSummary struct {
	Difference float64  `json:"difference"`
	Low        float64  `json:"difference_low"`
	High       float64  `json:"difference_high"`
	Uplift     *float64 `json:"uplift"`
	P          float64  `json:"p_value"`
}

// SampleRatioSummary is the sample ratio check; Warning is set when it
// fails.
type SampleRatioSummary struct {
	ChiSquare float64 `json:"chi_square"`
	P         float64 `json:"p_value"`
	Mismatch  bool    `json:"mismatch"`
	Warning   string  `json:"warning,omitempty"`
}

// Summarize works out the report's rates and comparisons.
func (r *Report) Summarize() Summary {
	s := Summary{Experiment: r.Experiment, SampleRatio: SampleRatioSummary{ChiSquare: r.SRMChi2, P: r.SRMP, Mismatch: r.SampleRatioMismatch()}}
	if s.SampleRatio.Mismatch {
		s.SampleRatio.Warning = "sample ratio mismatch: the exposures do not follow the configured split; do not trust the comparisons until the cause is found"
	}
	holdout := r.Arm(Holdout)
	for i := range r.Arms {
		a := &r.Arms[i]
		as := ArmSummary{Name: a.Name, ExpectedPercent: a.Expected, Exposures: a.Exposures, Impressions: a.Impressions,
			Clicks: a.Clicks, Conversions: a.Conversions, Revenue: a.Revenue,
			ClickRate: rateSummary(a.ClickRate()), ConversionRate: rateSummary(a.ConversionRate())}
		if a.Name != Holdout {
			if i > 0 {
				as.OverControl = uplift(a, &r.Arms[0])
			}
			if holdout != nil {
				as.OverHoldout = uplift(a, holdout)
			}
		}
		s.Arms = append(s.Arms, as)
	}
	return s
}

// Report rebuilds the report the summary was made from.
func (s *Summary) Report() *Report {
	r := &Report{Experiment: s.Experiment, SRMChi2: s.SampleRatio.ChiSquare, SRMP: s.SampleRatio.P}
	for _, a := range s.Arms {
		r.Arms = append(r.Arms, Arm{Name: a.Name, Expected: a.ExpectedPercent, Exposures: a.Exposures, Impressions: a.Impressions,
			Clicks: a.Clicks, Conversions: a.Conversions, Revenue: a.Revenue})
	}
	return r
}

func rateSummary(p Proportion) RateSummary {
	lo, hi := p.Wilson95()
	return RateSummary{Rate: p.Rate(), Low: lo, High: hi}
}

func uplift(a, baseline *Arm) *UpliftSummary {
	return &UpliftSummary{Baseline: baseline.Name,
		Clicks:      comparisonSummary(Compare(a.ClickRate(), baseline.ClickRate())),
		Conversions: comparisonSummary(Compare(a.ConversionRate(), baseline.ConversionRate()))}
}

func comparisonSummary(c Comparison) ComparisonSummary {
	out := ComparisonSummary{Difference: c.Difference, Low: c.DiffLo, High: c.DiffHi, P: c.P}
	if !math.IsNaN(c.Uplift) && !math.IsInf(c.Uplift, 0) {
		u := c.Uplift
		out.Uplift = &u
	}
	return out
}
