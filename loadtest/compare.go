package loadtest

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Verdicts of a comparison.
const (
	Better = "better"
	Worse  = "worse"
	Same   = "same"
	Mixed  = "mixed"
)

// minLatencyDeltaUS is the smallest latency difference that can count as
// a change: one microsecond is the histograms' resolution.
const minLatencyDeltaUS = 1

// minErrorRatioDelta is the smallest change in error ratio (0.01 points)
// that counts, so 0 → 1 error in a million is not called a regression.
const minErrorRatioDelta = 0.0001

// MetricChange is one row of a comparison.
type MetricChange struct {
	Metric  string
	A, B    string
	Change  string
	Verdict string
	// Counted is false for rows shown for information only (the extreme
	// tail, too few samples to judge at a noise threshold).
	Counted bool
}

// StepComparison compares one step of A with its counterpart in B.
type StepComparison struct {
	Label   string
	Rows    []MetricChange
	Verdict string
	// Reason names the counted metrics behind the verdict.
	Reason string
}

// CompareSteps pairs the steps of two reports (by position when both have
// the same steps, otherwise by target rate) and compares each pair.
// threshold is the relative change treated as noise (0.05 = ±5%).
func CompareSteps(a, b *Report, threshold float64) (pairs []StepComparison, unmatched []string) {
	type pair struct{ a, b *Step }
	var ps []pair
	if len(a.Steps) == len(b.Steps) && !a.Settings.FindMax && !b.Settings.FindMax {
		for i := range a.Steps {
			ps = append(ps, pair{&a.Steps[i], &b.Steps[i]})
		}
	} else {
		used := map[int]bool{}
		for i := range a.Steps {
			found := false
			for j := range b.Steps {
				if !used[j] && b.Steps[j].TargetRate == a.Steps[i].TargetRate && b.Steps[j].Mode == a.Steps[i].Mode {
					ps = append(ps, pair{&a.Steps[i], &b.Steps[j]})
					used[j], found = true, true
					break
				}
			}
			if !found {
				unmatched = append(unmatched, "only in A: "+stepName(a, &a.Steps[i]))
			}
		}
		for j := range b.Steps {
			if !used[j] {
				unmatched = append(unmatched, "only in B: "+stepName(b, &b.Steps[j]))
			}
		}
	}
	for _, p := range ps {
		pairs = append(pairs, compareStep(a, p.a, p.b, threshold))
	}
	return pairs, unmatched
}

func compareStep(ra *Report, a, b *Step, t float64) StepComparison {
	sc := StepComparison{Label: stepName(ra, a)}
	if b.TargetRate != a.TargetRate || b.Mode != a.Mode {
		sc.Label += " vs " + stepName(ra, b)
	}
	// Throughput: higher is better.
	v := relVerdict(a.AchievedRate, b.AchievedRate, t, 0, true)
	sc.Rows = append(sc.Rows, MetricChange{"throughput", fmtRate(a.AchievedRate) + "/s", fmtRate(b.AchievedRate) + "/s", change(a.AchievedRate, b.AchievedRate), v, true})
	// Errors: compare ratios, so runs of different lengths compare fairly.
	ea, eb := errorRatio(a), errorRatio(b)
	ev := Same
	if d := eb - ea; math.Abs(d) > math.Max(ea*t, minErrorRatioDelta) {
		ev = Worse
		if d < 0 {
			ev = Better
		}
	}
	sc.Rows = append(sc.Rows, MetricChange{"errors", fmtInt(a.Errors.Total) + " (" + fmtPercent(ea) + ")", fmtInt(b.Errors.Total) + " (" + fmtPercent(eb) + ")",
		fmt.Sprintf("%+.3f pts", (eb-ea)*100), ev, true})
	la, lb := a.Latency, b.Latency
	for _, m := range []struct {
		name    string
		a, b    int64
		counted bool
	}{
		{"p50", la.P50, lb.P50, true}, {"p90", la.P90, lb.P90, true}, {"p99", la.P99, lb.P99, true},
		{"p99.9", la.P999, lb.P999, true}, {"p99.99", la.P9999, lb.P9999, false}, {"max", la.Max, lb.Max, false},
	} {
		v := relVerdict(float64(m.a), float64(m.b), t, minLatencyDeltaUS, false)
		sc.Rows = append(sc.Rows, MetricChange{m.name, fmtUS(m.a), fmtUS(m.b), change(float64(m.a), float64(m.b)), v, m.counted})
	}
	sc.Verdict, sc.Reason = overall(sc.Rows)
	return sc
}

// relVerdict judges a change from a to b; higherBetter says which way is
// good; changes within ±t (relative) or minAbs (absolute) are the same.
func relVerdict(a, b, t, minAbs float64, higherBetter bool) string {
	d := b - a
	if math.Abs(d) <= minAbs {
		return Same
	}
	if a != 0 && math.Abs(d)/math.Abs(a) <= t {
		return Same
	}
	if (d > 0) == higherBetter {
		return Better
	}
	return Worse
}

func change(a, b float64) string {
	if a == 0 {
		if b == 0 {
			return "±0%"
		}
		return "new"
	}
	return fmtSigned((b - a) / a)
}

// overall combines counted rows: any worse and none better is worse, and
// so on; both is mixed.
func overall(rows []MetricChange) (string, string) {
	var better, worse []string
	for _, r := range rows {
		if !r.Counted {
			continue
		}
		switch r.Verdict {
		case Better:
			better = append(better, r.Metric+" "+r.Change)
		case Worse:
			worse = append(worse, r.Metric+" "+r.Change)
		}
	}
	switch {
	case len(worse) > 0 && len(better) > 0:
		return Mixed, "worse: " + strings.Join(worse, ", ") + "; better: " + strings.Join(better, ", ")
	case len(worse) > 0:
		return Worse, strings.Join(worse, ", ")
	case len(better) > 0:
		return Better, strings.Join(better, ", ")
	}
	return Same, ""
}

// Compare prints how run B changed from run A: per step, throughput,
// errors and each percentile with a verdict, then an overall verdict.
func Compare(w io.Writer, a, b *Report, nameA, nameB string, threshold float64) error {
	var out strings.Builder
	fmt.Fprintf(&out, "A  %s: %s, %s, started %s\n", nameA, a.Settings.Mode.Label(), runShape(a), a.StartedAt.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&out, "B  %s: %s, %s, started %s\n", nameB, b.Settings.Mode.Label(), runShape(b), b.StartedAt.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&out, "changes within ±%s%% are called the same (noise); p99.99 and max are shown in parentheses, not judged\n",
		strconv.FormatFloat(threshold*100, 'g', -1, 64))
	for _, d := range settingDiffs(a.Settings, b.Settings) {
		fmt.Fprintf(&out, "note: %s\n", d)
	}
	pairs, unmatched := CompareSteps(a, b, threshold)
	var verdicts []string
	for _, sc := range pairs {
		fmt.Fprintf(&out, "\n%s\n", sc.Label)
		writeChangeRows(&out, sc.Rows)
		line := "  verdict: " + sc.Verdict
		if sc.Reason != "" {
			line += " (" + sc.Reason + ")"
		}
		out.WriteString(line + "\n")
		verdicts = append(verdicts, sc.Verdict)
	}
	for _, u := range unmatched {
		fmt.Fprintf(&out, "\n%s (not compared)\n", u)
	}
	if fa, fb := a.FindMax, b.FindMax; fa != nil && fb != nil {
		v := relVerdict(fa.MaxRate, fb.MaxRate, threshold, 0, true)
		fmt.Fprintf(&out, "\nmax rate meeting SLO  A %s/s (%s)  B %s/s (%s)  %s  %s\n",
			fmtRate(fa.MaxRate), fa.SLO, fmtRate(fb.MaxRate), fb.SLO, change(fa.MaxRate, fb.MaxRate), v)
		verdicts = append(verdicts, v)
	}
	if len(verdicts) == 0 {
		out.WriteString("\noverall: nothing to compare: no step of A matches a step of B\n")
	} else {
		fmt.Fprintf(&out, "\noverall: B is %s\n", describe(combine(verdicts)))
	}
	_, err := io.WriteString(w, out.String())
	return err
}

func combine(vs []string) string {
	has := map[string]bool{}
	for _, v := range vs {
		has[v] = true
	}
	switch {
	case has[Mixed] || (has[Better] && has[Worse]):
		return Mixed
	case has[Worse]:
		return Worse
	case has[Better]:
		return Better
	}
	return Same
}

func describe(v string) string {
	switch v {
	case Better:
		return "better than A"
	case Worse:
		return "worse than A"
	case Mixed:
		return "mixed: better on some measures, worse on others"
	}
	return "the same as A within the noise threshold"
}

// settingDiffs lists settings that make two runs less comparable.
func settingDiffs(a, b Settings) []string {
	var d []string
	if a.Mode != b.Mode {
		d = append(d, fmt.Sprintf("A is %s loop and B is %s loop: their latencies mean different things", a.Mode, b.Mode))
	}
	if a.URL != b.URL {
		d = append(d, fmt.Sprintf("targets differ: %s vs %s", a.URL, b.URL))
	}
	if a.TrafficDigest != b.TrafficDigest {
		d = append(d, "the traffic files differ")
	}
	if sa, sb := eventShare(a), eventShare(b); sa != sb {
		d = append(d, fmt.Sprintf("event shares differ: %s vs %s of requests were event batches", fmtPercent(sa), fmtPercent(sb)))
	}
	if a.Customers != b.Customers {
		d = append(d, fmt.Sprintf("customers differ: %s vs %s", fmtInt(int64(a.Customers)), fmtInt(int64(b.Customers))))
	}
	if a.Connections != b.Connections {
		d = append(d, fmt.Sprintf("connections differ: %d vs %d", a.Connections, b.Connections))
	}
	if a.KeepAlive != b.KeepAlive {
		d = append(d, "keep-alive differs")
	}
	if a.DurationMS != b.DurationMS || a.Requests != b.Requests {
		d = append(d, "step lengths differ")
	}
	if a.CPUs != b.CPUs {
		d = append(d, fmt.Sprintf("generator CPUs differ: %d vs %d", a.CPUs, b.CPUs))
	}
	return d
}

func eventShare(s Settings) float64 {
	if s.Events == nil {
		return 0
	}
	return s.Events.Share
}

// writeChangeRows prints the metric column left-aligned and the figures
// right-aligned, so columns of numbers line up.
func writeChangeRows(out *strings.Builder, rows []MetricChange) {
	cells := [][]string{{"metric", "A", "B", "change", "verdict"}}
	for _, r := range rows {
		v := r.Verdict
		if !r.Counted {
			v = "(" + v + ")"
		}
		cells = append(cells, []string{r.Metric, r.A, r.B, r.Change, v})
	}
	widths := make([]int, 5)
	for _, row := range cells {
		for i, c := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	for _, row := range cells {
		out.WriteString("  ")
		for i, c := range row {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			switch i {
			case 0:
				out.WriteString(c + pad)
			case 4:
				out.WriteString("  " + c)
			default:
				out.WriteString("  " + pad + c)
			}
		}
		out.WriteString("\n")
	}
}
