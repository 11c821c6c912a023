package loadtest

import (
	"fmt"
	"html"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// WriteHTML writes a self-contained report page: the mode, a summary, the
// latency percentiles over time, the percentile spectrum, throughput over
// time, latency by rate for multi-step runs, errors and the settings. It
// loads nothing from anywhere: styles are inline and charts are SVG.
func WriteHTML(w io.Writer, rep *Report) error {
	var b strings.Builder
	s := rep.Settings
	esc := html.EscapeString
	title := "Touchpoint load test · " + string(s.Mode) + " loop · " + rep.StartedAt.Format("2006-01-02 15:04 MST")
	b.WriteString(`<!doctype html><html lang="en"><head><meta charset="utf-8">`)
	b.WriteString(`<meta name="viewport" content="width=device-width, initial-scale=1">`)
	fmt.Fprintf(&b, "<title>%s</title><style>%s</style></head><body>", esc(title), pageCSS)

	// Header and the mode banner: the first thing anyone reads.
	b.WriteString(`<header><h1>Touchpoint load test</h1>`)
	fmt.Fprintf(&b, `<p class="sub">%s · started %s · %s</p>`, esc(s.URL), esc(rep.StartedAt.Format(time.RFC3339)), esc(runShape(rep)))
	if s.Mode == Closed {
		fmt.Fprintf(&b, `<div id="mode" class="mode closed"><b>CLOSED LOOP</b> · %d workers sending as fast as answers return. This measures maximum throughput; latencies are service times — a stalling server receives fewer requests instead of showing its stalls. Not what users at a fixed arrival rate see.</div>`, s.Concurrency)
	} else {
		b.WriteString(`<div id="mode" class="mode open"><b>OPEN LOOP</b> · requests leave at a constant rate whatever the server does; every latency is measured from the request's scheduled send time, so queueing and stalls are counted (no coordinated omission).</div>`)
	}
	if rep.Interrupted {
		b.WriteString(`<div class="mode warn"><b>INTERRUPTED</b> · the run was stopped early; the results cover what was measured before the interrupt.</div>`)
	}
	b.WriteString(`</header>`)

	// Summary.
	b.WriteString(`<section id="summary"><h2>Summary</h2>`)
	writeTiles(&b, rep)
	writeStepTable(&b, rep)
	writeKindTable(&b, rep)
	if ns := notes(rep); len(ns) > 0 {
		b.WriteString(`<ul class="notes">`)
		for _, n := range ns {
			fmt.Fprintf(&b, "<li>%s</li>", esc(n))
		}
		b.WriteString(`</ul>`)
	}
	b.WriteString(`</section>`)

	if len(rep.Steps) == 0 {
		b.WriteString(`<section><p>No step was measured.</p></section>`)
	} else {
		b.WriteString(`<section id="latency-over-time"><h2>Latency over time</h2><p class="hint">Per second, by completion time; log scale. Gaps are seconds in which nothing completed.</p>`)
		latencyOverTime(rep).render(&b)
		b.WriteString(`</section>`)

		b.WriteString(`<section id="percentile-spectrum"><h2>Percentile spectrum</h2><p class="hint">Latency at each percentile of the whole step; the x axis counts nines, so the tail gets the room it deserves.</p>`)
		spectrumChart(rep).render(&b)
		b.WriteString(`</section>`)

		b.WriteString(`<section id="throughput"><h2>Throughput over time</h2><p class="hint">Requests per second: answers by completion time, sent by send time.</p>`)
		throughputChart(rep).render(&b)
		b.WriteString(`</section>`)

		if c := byRateChart(rep); c != nil {
			b.WriteString(`<section id="latency-by-rate"><h2>Latency by rate</h2><p class="hint">Each step's percentiles against its target rate; log scale.</p>`)
			c.render(&b)
			b.WriteString(`</section>`)
		}
	}

	writeErrors(&b, rep)
	writeSettings(&b, rep)
	fmt.Fprintf(&b, `<footer>touchpoint loadtest · report format %s · latencies in microseconds in the JSON report</footer>`, esc(rep.Format))
	b.WriteString("</body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

const pageCSS = `
:root{color-scheme:light}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;margin:0 auto;padding:24px 28px 40px;max-width:1240px;color:#16181d;background:#f6f7f9;line-height:1.4}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:0 0 8px}h3{font-size:16px;margin:16px 0 4px}
section{background:#fff;border:1px solid #e1e4e8;border-radius:8px;padding:16px 18px;margin:16px 0}
.sub{color:#555c66;margin:0 0 10px;font-size:14px}
.hint{color:#6b7280;margin:0 0 8px;font-size:13px}
.mode{border-radius:6px;padding:10px 14px;margin:8px 0;font-size:15px}
.mode.open{background:#e8f0fe;border:1px solid #9db9f5}
.mode.closed{background:#fff3cd;border:2px solid #e0a800}
.mode.warn{background:#fde8e8;border:1px solid #f5a3a3}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:4px 0 14px}
.tile{flex:1 1 130px;border:1px solid #e1e4e8;border-radius:6px;padding:8px 12px;background:#fafbfc}
.tile .k{font-size:12px;color:#6b7280;text-transform:uppercase;letter-spacing:.04em}
.tile .v{font-size:24px;font-weight:650;font-variant-numeric:tabular-nums}
.tile.bad .v{color:#b91c1c}.tile.good .v{color:#15803d}
table{border-collapse:collapse;font-size:14px;font-variant-numeric:tabular-nums}
th,td{padding:5px 10px;border-bottom:1px solid #eceef1;text-align:right;white-space:nowrap}
th{background:#f3f4f6;font-weight:600}
td.l,th.l{text-align:left;white-space:normal}
.pass{color:#15803d;font-weight:600}.fail{color:#b91c1c;font-weight:600}
.notes{font-size:14px;margin:12px 0 0;padding-left:20px}
.chart{width:100%;height:auto;display:block}
.chart text{font-family:inherit}
.chart .tick{font-size:12px;fill:#4b5563}
.chart .axis{font-size:13px;fill:#374151}
.chart .legend{font-size:13px;fill:#1f2937}
.chart .mark{font-size:12px;fill:#374151}
footer{color:#6b7280;font-size:12px;margin-top:18px}
`

// runShape is the one-line description of what ran.
func runShape(rep *Report) string {
	s := rep.Settings
	n := len(rep.Steps)
	switch {
	case s.FindMax:
		return fmt.Sprintf("find-max for %s, %d probes", s.SLO, n)
	case s.Mode == Closed:
		return fmt.Sprintf("%d workers", s.Concurrency)
	case n == 1:
		return fmtRate(rep.Steps[0].TargetRate) + " req/s"
	default:
		return fmt.Sprintf("%d steps, %s to %s req/s", n, fmtRate(rep.Steps[0].TargetRate), fmtRate(rep.Steps[n-1].TargetRate))
	}
}

// writeTiles shows the headline numbers: the found rate for find-max,
// otherwise the single step's percentiles (multi-step runs rely on the table).
func writeTiles(b *strings.Builder, rep *Report) {
	tile := func(k, v, class string) {
		fmt.Fprintf(b, `<div class="tile %s"><div class="k">%s</div><div class="v">%s</div></div>`, class, html.EscapeString(k), html.EscapeString(v))
	}
	var st *Step
	b.WriteString(`<div class="tiles">`)
	if fm := rep.FindMax; fm != nil {
		if fm.Found {
			tile("max rate meeting SLO", fmtRate(fm.MaxRate)+" req/s", "good")
			for i := range rep.Steps {
				if rep.Steps[i].TargetRate == fm.MaxRate && rep.Steps[i].SLO != nil && rep.Steps[i].SLO.Pass {
					st = &rep.Steps[i]
				}
			}
		} else {
			tile("max rate meeting SLO", "none", "bad")
		}
		tile("SLO", fm.SLO, "")
	} else if len(rep.Steps) == 1 {
		st = &rep.Steps[0]
	}
	if st != nil {
		l := st.Latency
		tile("p50", fmtUS(l.P50), "")
		tile("p99", fmtUS(l.P99), "")
		tile("p99.9", fmtUS(l.P999), "")
		tile("max", fmtUS(l.Max), "")
		if st.Mode == Open {
			class := "good"
			if st.AchievedRate < 0.97*st.TargetRate {
				class = "bad"
			}
			tile("achieved / target", fmtRate(st.AchievedRate)+" / "+fmtRate(st.TargetRate)+"/s", class)
		} else {
			tile("throughput", fmtRate(st.AchievedRate)+"/s", "")
		}
		class := "good"
		if st.Errors.Total > 0 {
			class = "bad"
		}
		tile("errors", fmtInt(st.Errors.Total)+" ("+fmtPercent(errorRatio(st))+")", class)
	} else if len(rep.Steps) > 1 {
		multiStepTiles(rep, tile)
	}
	b.WriteString(`</div>`)
}

// multiStepTiles sums up a stepped run: the rates, the spread of p99, the
// errors and, with an SLO, how many steps met it.
func multiStepTiles(rep *Report, tile func(k, v, class string)) {
	lo, hi := rep.Steps[0].TargetRate, rep.Steps[0].TargetRate
	p99lo, p99hi := rep.Steps[0].Latency.P99, rep.Steps[0].Latency.P99
	var errs int64
	met := 0
	for i := range rep.Steps {
		st := &rep.Steps[i]
		lo, hi = math.Min(lo, st.TargetRate), math.Max(hi, st.TargetRate)
		p99lo, p99hi = min(p99lo, st.Latency.P99), max(p99hi, st.Latency.P99)
		errs += st.Errors.Total
		if st.SLO != nil && st.SLO.Pass {
			met++
		}
	}
	tile(fmt.Sprintf("%d steps", len(rep.Steps)), fmtRate(lo)+" → "+fmtRate(hi)+"/s", "")
	tile("p99 across steps", fmtUS(p99lo)+" – "+fmtUS(p99hi), "")
	class := "good"
	if errs > 0 {
		class = "bad"
	}
	tile("errors", fmtInt(errs), class)
	if rep.Settings.SLO != "" {
		class := "good"
		if met < len(rep.Steps) {
			class = "bad"
		}
		tile("steps meeting SLO", fmt.Sprintf("%d of %d", met, len(rep.Steps)), class)
	}
}

func errorRatio(st *Step) float64 {
	total := max(st.Planned, st.Sent)
	if total == 0 {
		return 0
	}
	return float64(st.Errors.Total) / float64(total)
}

func stepName(rep *Report, st *Step) string {
	switch {
	case st.Mode == Closed:
		return fmt.Sprintf("closed loop ×%d", st.Concurrency)
	case st.Kind == kindProbe:
		return fmt.Sprintf("probe %d · %s/s", st.Index, fmtRate(st.TargetRate))
	case len(rep.Steps) == 1:
		return fmtRate(st.TargetRate) + "/s"
	}
	return fmt.Sprintf("step %d · %s/s", st.Index, fmtRate(st.TargetRate))
}

// shortStepName is a legend label: the rate, and the SLO verdict if any.
func shortStepName(st *Step) string {
	name := fmtRate(st.TargetRate) + "/s"
	if st.Mode == Closed {
		name = fmt.Sprintf("×%d", st.Concurrency)
	}
	if st.SLO != nil {
		if st.SLO.Pass {
			return name + " ✓"
		}
		return name + " ✗"
	}
	return name
}

func writeStepTable(b *strings.Builder, rep *Report) {
	s := rep.Settings
	hasSLO := s.SLO != ""
	per := "step"
	if s.FindMax {
		per = "probe"
	}
	first := "target/s"
	if s.Mode == Closed {
		first = "workers"
	}
	b.WriteString(`<table id="steps"><thead><tr>`)
	for _, h := range []string{per, first, "achieved/s", "requests", "errors", "p50", "p90", "p99", "p99.9", "p99.99", "max", "generator CPU"} {
		fmt.Fprintf(b, "<th>%s</th>", html.EscapeString(h))
	}
	if hasSLO {
		b.WriteString(`<th class="l">SLO</th>`)
	}
	b.WriteString(`</tr></thead><tbody>`)
	for i := range rep.Steps {
		st := &rep.Steps[i]
		l := st.Latency
		target := fmtRate(st.TargetRate)
		if st.Mode == Closed {
			target = strconv.Itoa(st.Concurrency)
		}
		cpu := "n/a"
		if st.GeneratorCPU > 0 {
			cpu = strconv.FormatFloat(st.GeneratorCPU, 'f', 2, 64)
		}
		idx := strconv.Itoa(st.Index)
		if st.Interrupted {
			idx += " (interrupted)"
		}
		b.WriteString("<tr>")
		for _, v := range []string{idx, target, fmtRate(st.AchievedRate), fmtInt(st.Planned), fmtInt(st.Errors.Total),
			fmtUS(l.P50), fmtUS(l.P90), fmtUS(l.P99), fmtUS(l.P999), fmtUS(l.P9999), fmtUS(l.Max), cpu} {
			fmt.Fprintf(b, "<td>%s</td>", html.EscapeString(v))
		}
		if hasSLO {
			switch {
			case st.SLO == nil:
				b.WriteString(`<td class="l">–</td>`)
			case st.SLO.Pass:
				b.WriteString(`<td class="l pass">pass</td>`)
			default:
				// The reasons are listed under the table; a hover shows them here.
				fmt.Fprintf(b, `<td class="l fail" title="%s">FAIL</td>`, html.EscapeString(strings.Join(st.SLO.Failures, "; ")))
			}
		}
		b.WriteString("</tr>")
	}
	b.WriteString(`</tbody></table>`)
}

// writeKindTable splits each step into decides and event batches, when
// the traffic has events.
func writeKindTable(b *strings.Builder, rep *Report) {
	if rep.Settings.Events == nil {
		return
	}
	per := "step"
	if rep.Settings.FindMax {
		per = "probe"
	}
	b.WriteString(`<h3>By request kind</h3><p class="hint">Decides and event batches share the schedule and the connections; each row is measured like the step it belongs to, and the rows add up to it.</p>`)
	b.WriteString(`<table id="by-kind"><thead><tr>`)
	for _, h := range []string{per, "kind", "share", "requests", "achieved/s", "errors", "p50", "p90", "p99", "p99.9", "max"} {
		fmt.Fprintf(b, "<th>%s</th>", html.EscapeString(h))
	}
	b.WriteString(`<th class="l">events sent · accepted · duplicates</th></tr></thead><tbody>`)
	for i := range rep.Steps {
		st := &rep.Steps[i]
		if st.ByKind == nil {
			continue
		}
		for _, k := range st.ByKind.kinds() {
			ks, l := k.stats, k.stats.Latency
			share := 0.0
			if st.Planned > 0 {
				share = float64(ks.Planned) / float64(st.Planned)
			}
			b.WriteString("<tr>")
			for _, v := range []string{strconv.Itoa(st.Index), k.name, fmtPercent(share), fmtInt(ks.Planned), fmtRate(ks.AchievedRate),
				fmtInt(ks.Errors.Total), fmtUS(l.P50), fmtUS(l.P90), fmtUS(l.P99), fmtUS(l.P999), fmtUS(l.Max)} {
				fmt.Fprintf(b, "<td>%s</td>", html.EscapeString(v))
			}
			fb := "–"
			if f := ks.Feedback; f != nil {
				fb = fmtInt(f.Events) + " · " + fmtInt(f.Accepted) + " · " + fmtInt(f.Duplicates)
			}
			fmt.Fprintf(b, `<td class="l">%s</td></tr>`, html.EscapeString(fb))
		}
	}
	b.WriteString(`</tbody></table>`)
}

// timeline lays the steps' seconds end to end and returns each step's
// offset on the shared x axis.
func timeline(rep *Report) (offsets []float64, total float64) {
	for i := range rep.Steps {
		offsets = append(offsets, total)
		total += math.Max(float64(len(rep.Steps[i].Seconds)), 1)
	}
	return offsets, total
}

func stepMarks(rep *Report, offsets []float64) []chartMark {
	if len(rep.Steps) < 2 {
		return nil
	}
	var marks []chartMark
	for i := range rep.Steps {
		st := &rep.Steps[i]
		label := strconv.Itoa(st.Index)
		if st.Mode == Open {
			label = fmtRate(st.TargetRate) + "/s"
		}
		if len(rep.Steps) > 12 && i%2 == 1 {
			label = "" // keep labels from overlapping
		}
		marks = append(marks, chartMark{at: offsets[i], label: label, color: "#9ca3af"})
	}
	return marks
}

func latencyOverTime(rep *Report) *chart {
	offsets, total := timeline(rep)
	series := []chartSeries{
		{name: "max", color: "#9ca3af", width: 1.5},
		{name: "p99", color: "#dc2626", width: 2},
		{name: "p90", color: "#f59e0b", width: 2},
		{name: "p50", color: "#2563eb", width: 2},
	}
	lo, hi := math.Inf(1), 0.0
	for i := range rep.Steps {
		for _, sec := range rep.Steps[i].Seconds {
			x := offsets[i] + float64(sec.T) + 0.5
			vals := []int64{sec.Max, sec.P99, sec.P90, sec.P50}
			for k, v := range vals {
				y := math.NaN()
				if sec.Max > 0 { // something completed in this second
					y = math.Max(float64(v), 1)
					lo, hi = math.Min(lo, y), math.Max(hi, y)
				}
				series[k].pts = append(series[k].pts, chartPoint{x, y})
			}
		}
		// Break lines between steps.
		for k := range series {
			series[k].pts = append(series[k].pts, chartPoint{math.NaN(), math.NaN()})
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = 10, 1000
	}
	lo, hi = withSLO(rep, lo, hi)
	c := &chart{id: "chart-latency", w: 1180, h: 380,
		x: secondsAxis(total), y: logAxis(lo, hi, "latency", fmtCompactUS),
		series: series, vmarks: stepMarks(rep, offsets)}
	c.hmarks = sloMarks(rep)
	return c
}

func secondsAxis(total float64) chartAxis {
	a := chartAxis{min: 0, max: math.Max(total, 1), title: "seconds (measured steps end to end)"}
	step := niceStep(a.max / 10)
	for v := 0.0; v <= a.max+1e-9; v += step {
		a.ticks = append(a.ticks, chartTick{v: v, label: strconv.FormatFloat(v, 'f', -1, 64) + "s", major: true})
	}
	return a
}

// withSLO widens a latency range (µs) so every SLO limit is on the chart.
func withSLO(rep *Report, lo, hi float64) (float64, float64) {
	for _, m := range sloMarks(rep) {
		lo, hi = math.Min(lo, m.at), math.Max(hi, m.at)
	}
	return lo, hi
}

// sloMarks draws each SLO limit as a dashed horizontal line.
func sloMarks(rep *Report) []chartMark {
	slo, err := ParseSLO(rep.Settings.SLO)
	if err != nil {
		return nil
	}
	var marks []chartMark
	for _, t := range slo.Terms {
		us := float64(t.Limit / time.Microsecond)
		marks = append(marks, chartMark{at: us, label: "SLO " + percentileName(t.Percentile) + " ≤ " + fmtDuration(t.Limit), color: "#7c3aed"})
	}
	return marks
}

func spectrumChart(rep *Report) *chart {
	maxN := 2.0
	lo, hi := math.Inf(1), 0.0
	for i := range rep.Steps {
		if c := rep.Steps[i].Latency.Count; c > 0 {
			maxN = math.Max(maxN, math.Ceil(math.Log10(float64(c))))
		}
	}
	order := stepsByRate(rep)
	var series []chartSeries
	for n, i := range order {
		st := &rep.Steps[i]
		s := chartSeries{name: stepName(rep, st), color: palette(n), width: 2}
		if len(rep.Steps) > 4 {
			// Many lines: short names keep the legend to a row or two.
			s.width, s.name = 1.6, shortStepName(st)
		}
		for _, p := range st.Spectrum {
			y := math.Max(float64(p.US), 1)
			s.pts = append(s.pts, chartPoint{nines(p.Percentile, maxN), y})
			lo, hi = math.Min(lo, y), math.Max(hi, y)
		}
		series = append(series, s)
	}
	if math.IsInf(lo, 1) {
		lo, hi = 10, 1000
	}
	lo, hi = withSLO(rep, lo, hi)
	c := &chart{id: "chart-spectrum", w: 1180, h: 400, x: ninesAxis(maxN),
		y: logAxis(lo, hi, "latency", fmtCompactUS), series: series}
	c.hmarks = sloMarks(rep)
	return c
}

// stepsByRate orders steps by target rate (probes come in search order).
func stepsByRate(rep *Report) []int {
	idx := make([]int, len(rep.Steps))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return rep.Steps[idx[a]].TargetRate < rep.Steps[idx[b]].TargetRate })
	return idx
}

func throughputChart(rep *Report) *chart {
	offsets, total := timeline(rep)
	ok := chartSeries{name: "2xx answers/s", color: "#16a34a", width: 2}
	errs := chartSeries{name: "errors/s", color: "#dc2626", width: 2}
	sent := chartSeries{name: "sent/s", color: "#6b7280", width: 1.2}
	target := chartSeries{name: "target", color: "#111827", width: 1.5, dash: true}
	hi := 0.0
	for i := range rep.Steps {
		st := &rep.Steps[i]
		for _, sec := range st.Seconds {
			x := offsets[i] + float64(sec.T) + 0.5
			ok.pts = append(ok.pts, chartPoint{x, float64(sec.OK)})
			errs.pts = append(errs.pts, chartPoint{x, float64(sec.Errors)})
			sent.pts = append(sent.pts, chartPoint{x, float64(sec.Sent)})
			hi = math.Max(hi, math.Max(float64(sec.OK+sec.Errors), float64(sec.Sent)))
		}
		for _, s := range []*chartSeries{&ok, &errs, &sent} {
			s.pts = append(s.pts, chartPoint{math.NaN(), math.NaN()})
		}
		if st.Mode == Open {
			end := offsets[i] + math.Max(float64(len(st.Seconds)), 1)
			target.pts = append(target.pts, chartPoint{offsets[i], st.TargetRate}, chartPoint{end, st.TargetRate}, chartPoint{math.NaN(), math.NaN()})
			hi = math.Max(hi, st.TargetRate)
		}
	}
	series := []chartSeries{sent, ok, errs}
	if len(target.pts) > 0 {
		series = append(series, target)
	}
	return &chart{id: "chart-throughput", w: 1180, h: 320, x: secondsAxis(total),
		y:      linearAxis(hi*1.08, "requests per second", func(v float64) string { return fmtRate(v) }),
		series: series, vmarks: stepMarks(rep, offsets)}
}

// byRateChart plots percentiles against target rate for multi-step
// open-loop runs; nil otherwise.
func byRateChart(rep *Report) *chart {
	if len(rep.Steps) < 2 || rep.Settings.Mode != Open {
		return nil
	}
	order := stepsByRate(rep)
	series := []chartSeries{
		{name: "max", color: "#9ca3af", width: 1.5, markers: true},
		{name: "p99.9", color: "#7f1d1d", width: 2, markers: true},
		{name: "p99", color: "#dc2626", width: 2, markers: true},
		{name: "p90", color: "#f59e0b", width: 2, markers: true},
		{name: "p50", color: "#2563eb", width: 2, markers: true},
	}
	lo, hi, maxRate := math.Inf(1), 0.0, 0.0
	for _, i := range order {
		st := &rep.Steps[i]
		if st.Latency.Count == 0 {
			continue
		}
		l := st.Latency
		for k, v := range []int64{l.Max, l.P999, l.P99, l.P90, l.P50} {
			y := math.Max(float64(v), 1)
			series[k].pts = append(series[k].pts, chartPoint{st.TargetRate, y})
			lo, hi = math.Min(lo, y), math.Max(hi, y)
		}
		maxRate = math.Max(maxRate, st.TargetRate)
	}
	if math.IsInf(lo, 1) {
		return nil
	}
	lo, hi = withSLO(rep, lo, hi)
	c := &chart{id: "chart-by-rate", w: 1180, h: 360,
		x:      linearAxis(maxRate*1.05, "target rate (requests per second)", func(v float64) string { return fmtRate(v) }),
		y:      logAxis(lo, hi, "latency", fmtCompactUS),
		series: series, hmarks: sloMarks(rep)}
	if fm := rep.FindMax; fm != nil && fm.Found {
		c.vmarks = []chartMark{{at: fm.MaxRate, label: "max rate meeting SLO: " + fmtRate(fm.MaxRate) + "/s", color: "#15803d"}}
	}
	return c
}

func writeErrors(b *strings.Builder, rep *Report) {
	b.WriteString(`<section id="errors"><h2>Errors</h2>`)
	any := false
	for i := range rep.Steps {
		if rep.Steps[i].Errors.Total > 0 {
			any = true
		}
	}
	if !any {
		b.WriteString(`<p>No errors: every request was answered with a 2xx status.</p></section>`)
		return
	}
	b.WriteString(`<table><thead><tr><th>step</th><th>total</th><th class="l">non-2xx by status</th><th>timeouts</th><th>connection</th><th>never sent</th><th>other</th><th class="l">first messages</th></tr></thead><tbody>`)
	for i := range rep.Steps {
		e := rep.Steps[i].Errors
		if e.Total == 0 {
			continue
		}
		codes := make([]string, 0, len(e.Status))
		for c, n := range e.Status {
			codes = append(codes, c+": "+fmtInt(n))
		}
		sort.Strings(codes)
		kinds := make([]string, 0, len(e.Samples))
		for k := range e.Samples {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		var msgs []string
		for _, k := range kinds {
			msgs = append(msgs, k+": "+e.Samples[k])
		}
		fmt.Fprintf(b, `<tr><td>%d</td><td>%s</td><td class="l">%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class="l">%s</td></tr>`,
			rep.Steps[i].Index, fmtInt(e.Total), html.EscapeString(strings.Join(codes, ", ")), fmtInt(e.Timeout), fmtInt(e.Connection),
			fmtInt(e.Unsent), fmtInt(e.Other), html.EscapeString(strings.Join(msgs, " · ")))
	}
	b.WriteString(`</tbody></table></section>`)
}

func eventsSetting(e *EventSettings) string {
	if e == nil {
		return "none: every request is a decide"
	}
	what := "batches of " + plural(e.Batch, "event")
	if e.Touchpoints > 0 {
		what += " naming " + plural(e.Touchpoints, "touchpoint")
	}
	return fmt.Sprintf("%s of requests, %s%s, to %s; ids %s…",
		fmtPercent(e.Share), what, trackSetting(e), e.URL, e.IDPrefix)
}

// trackSetting says which share of the events are behavioural, and which.
func trackSetting(e *EventSettings) string {
	if len(e.Track) == 0 {
		return ""
	}
	return fmt.Sprintf("; %s of events behavioural (%s)", fmtPercent(e.TrackShare), strings.Join(e.Track, ", "))
}

func writeSettings(b *strings.Builder, rep *Report) {
	s := rep.Settings
	rows := [][2]string{
		{"target", s.URL},
		{"mode", s.ModeLabel},
	}
	if s.Mode == Open {
		rates := make([]string, len(s.Rates))
		for i, r := range s.Rates {
			rates[i] = fmtRate(r)
		}
		label := "rates (req/s)"
		if s.FindMax {
			label = "start rate (req/s)"
		}
		rows = append(rows, [2]string{label, strings.Join(rates, ", ")}, [2]string{"connections (max in flight)", strconv.Itoa(s.Connections)})
	} else {
		rows = append(rows, [2]string{"workers", strconv.Itoa(s.Concurrency)})
	}
	if s.FindMax {
		rows = append(rows, [2]string{"find-max", "SLO " + s.SLO + ", up to " + fmtRate(s.MaxRate) + " req/s"})
	} else if s.SLO != "" {
		rows = append(rows, [2]string{"SLO", s.SLO})
	}
	dur := "–"
	if s.DurationMS > 0 {
		dur = fmtMS(s.DurationMS)
	}
	req := "–"
	if s.Requests > 0 {
		req = fmtInt(s.Requests)
	}
	warmup := "none"
	if s.WarmupMS > 0 {
		warmup = fmtMS(s.WarmupMS)
	}
	rows = append(rows,
		[2]string{"duration per step", dur},
		[2]string{"requests per step", req},
		[2]string{"warm-up", warmup},
		[2]string{"keep-alive", strconv.FormatBool(s.KeepAlive)},
		[2]string{"timeout", fmtMS(s.TimeoutMS)},
		[2]string{"traffic", fmt.Sprintf("%s (%d views, digest %s)", s.Traffic, s.Views, s.TrafficDigest)},
		[2]string{"events", eventsSetting(s.Events)},
		[2]string{"customers", fmtInt(int64(s.Customers))},
		[2]string{"seed", strconv.FormatUint(s.Seed, 10)},
		[2]string{"generator CPUs (GOMAXPROCS)", strconv.Itoa(s.CPUs)},
		[2]string{"Go", s.GoVersion},
		[2]string{"started / finished", rep.StartedAt.Format(time.RFC3339) + " / " + rep.FinishedAt.Format(time.RFC3339)},
	)
	b.WriteString(`<section id="settings"><h2>Settings</h2><table>`)
	for _, r := range rows {
		fmt.Fprintf(b, `<tr><th class="l">%s</th><td class="l">%s</td></tr>`, html.EscapeString(r[0]), html.EscapeString(r[1]))
	}
	b.WriteString(`</table></section>`)
}
