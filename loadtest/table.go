package loadtest

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteTable prints the human summary: what ran, one row per step, then
// errors, SLO results, the find-max answer and anything that makes the
// numbers less trustworthy.
func WriteTable(w io.Writer, rep *Report) error {
	var b strings.Builder
	s := rep.Settings
	fmt.Fprintf(&b, "touchpoint loadtest · %s\n", strings.ToUpper(string(s.Mode))+" LOOP: "+modeDetail(s.Mode))
	fmt.Fprintf(&b, "  target   %s\n", s.URL)
	fmt.Fprintf(&b, "  traffic  %s (%d views, digest %s), %s customers, seed %d\n",
		s.Traffic, s.Views, s.TrafficDigest, fmtInt(int64(s.Customers)), s.Seed)
	if e := s.Events; e != nil {
		fmt.Fprintf(&b, "  events   %s of requests are batches of %s to %s (ids %s…)%s\n",
			fmtPercent(e.Share), plural(e.Batch, "event"), e.URL, e.IDPrefix, trackSetting(e))
	}
	keep := "keep-alive"
	if !s.KeepAlive {
		keep = "a new connection per request"
	}
	if s.Mode == Closed {
		fmt.Fprintf(&b, "  client   %d workers, one connection each, %s, timeout %s, %d CPU\n", s.Concurrency, keep, fmtMS(s.TimeoutMS), s.CPUs)
	} else {
		fmt.Fprintf(&b, "  client   up to %d connections, %s, timeout %s, %d CPU\n", s.Connections, keep, fmtMS(s.TimeoutMS), s.CPUs)
	}
	per := "step"
	if s.FindMax {
		per = "probe"
	}
	switch {
	case s.DurationMS > 0 && s.Requests > 0:
		fmt.Fprintf(&b, "  each %s  %s or %s requests, whichever comes first", per, fmtMS(s.DurationMS), fmtInt(s.Requests))
	case s.DurationMS > 0:
		fmt.Fprintf(&b, "  each %s  %s", per, fmtMS(s.DurationMS))
	default:
		fmt.Fprintf(&b, "  each %s  %s requests", per, fmtInt(s.Requests))
	}
	if s.WarmupMS > 0 {
		fmt.Fprintf(&b, ", after a %s warm-up", fmtMS(s.WarmupMS))
	}
	b.WriteString("\n\n")

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	first := "target/s"
	if s.Mode == Closed {
		first = "workers"
	}
	hasSLO := s.SLO != ""
	hdr := []string{per, first, "achieved/s", "requests", "errors", "p50", "p90", "p99", "p99.9", "p99.99", "max", "gen CPU"}
	if hasSLO {
		hdr = append(hdr, "SLO")
	}
	fmt.Fprintln(tw, strings.Join(hdr, "\t")+"\t")
	for i := range rep.Steps {
		st := &rep.Steps[i]
		target := fmtRate(st.TargetRate)
		if st.Mode == Closed {
			target = strconv.Itoa(st.Concurrency)
		}
		l := st.Latency
		cpu := "n/a"
		if st.GeneratorCPU > 0 {
			cpu = strconv.FormatFloat(st.GeneratorCPU, 'f', 2, 64)
		}
		row := []string{strconv.Itoa(st.Index), target, fmtRate(st.AchievedRate), fmtInt(st.Planned), fmtInt(st.Errors.Total),
			fmtUS(l.P50), fmtUS(l.P90), fmtUS(l.P99), fmtUS(l.P999), fmtUS(l.P9999), fmtUS(l.Max), cpu}
		if hasSLO {
			verdict := "-"
			if st.SLO != nil {
				verdict = "pass"
				if !st.SLO.Pass {
					verdict = "FAIL"
				}
			}
			row = append(row, verdict)
		}
		if st.Interrupted {
			row[0] += "*"
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		if s.Events == nil || st.ByKind == nil {
			continue
		}
		// One row per kind under the step: the same columns, measured the
		// same way, so they add up to the step's row.
		for _, k := range st.ByKind.kinds() {
			l := k.stats.Latency
			row := []string{k.name, "", fmtRate(k.stats.AchievedRate), fmtInt(k.stats.Planned), fmtInt(k.stats.Errors.Total),
				fmtUS(l.P50), fmtUS(l.P90), fmtUS(l.P99), fmtUS(l.P999), fmtUS(l.P9999), fmtUS(l.Max), ""}
			if hasSLO {
				row = append(row, "")
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
	}
	tw.Flush()
	b.WriteString("\n")

	for _, line := range notes(rep) {
		b.WriteString(line)
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func modeDetail(m Mode) string {
	if m == Closed {
		return "max throughput; latencies are service times, not user-perceived"
	}
	return "constant arrival rate; latency from each request's scheduled send time"
}

// fmtMS renders a setting given in milliseconds: 2s, 500ms, 1.5s.
func fmtMS(ms int64) string { return fmtCompactUS(float64(ms) * 1000) }

// notes explains what the table cannot: errors by kind, SLO misses, the
// search result, and warnings about the run itself.
func notes(rep *Report) []string {
	var out []string
	for _, w := range rep.Warnings {
		out = append(out, "warning  "+w)
	}
	per := "step"
	if rep.Settings.FindMax {
		per = "probe"
	}
	for i := range rep.Steps {
		st := &rep.Steps[i]
		if rep.Settings.Events != nil && st.ByKind != nil {
			// Which kind failed matters more than the sum when both are sent.
			for _, k := range st.ByKind.kinds() {
				if e := errorSummary(k.stats.Errors); e != "" {
					out = append(out, fmt.Sprintf("errors   %s %d, %s: %s", per, st.Index, k.name, e))
				}
			}
			continue
		}
		if e := errorSummary(st.Errors); e != "" {
			out = append(out, fmt.Sprintf("errors   %s %d: %s", per, st.Index, e))
		}
	}
	for i := range rep.Steps {
		st := &rep.Steps[i]
		if st.Errors.Total > 0 && st.OK > 0 {
			l := st.LatencyOK
			out = append(out, fmt.Sprintf("2xx only %s %d: %s answers, p50 %s, p90 %s, p99 %s, p99.9 %s, max %s",
				per, st.Index, fmtInt(st.OK), fmtUS(l.P50), fmtUS(l.P90), fmtUS(l.P99), fmtUS(l.P999), fmtUS(l.Max)))
		}
	}
	for i := range rep.Steps {
		if line := feedbackNote(rep, &rep.Steps[i], per); line != "" {
			out = append(out, line)
		}
	}
	var decided, unknown int64
	for i := range rep.Steps {
		if d := rep.Steps[i].ByKind; d != nil && d.Decide != nil {
			decided += d.Decide.OK
			unknown += d.Decide.UnknownCustomers
		}
	}
	if unknown > 0 {
		out = append(out, fmt.Sprintf("unknown  %s of %s successful decides were for customers the target does not know (known_customer false): anonymous visitors and ids it does not hold",
			fmtPercent(float64(unknown)/float64(decided)), fmtInt(decided)))
	}
	for i := range rep.Steps {
		st := &rep.Steps[i]
		if st.SLO != nil && !st.SLO.Pass {
			out = append(out, fmt.Sprintf("SLO      %s %d misses %s: %s", per, st.Index, rep.Settings.SLO, strings.Join(st.SLO.Failures, "; ")))
		}
	}
	if fm := rep.FindMax; fm != nil {
		switch {
		case fm.Found && fm.Capped:
			out = append(out, fmt.Sprintf("max rate %s req/s meets %s; the search stopped at --max-rate (%d probes)", fmtRate(fm.MaxRate), fm.SLO, fm.Probes))
		case fm.Found:
			out = append(out, fmt.Sprintf("max rate %s req/s is the highest probed rate that meets %s (%d probes)", fmtRate(fm.MaxRate), fm.SLO, fm.Probes))
		default:
			out = append(out, fmt.Sprintf("max rate none: no probed rate met %s (%d probes)", fm.SLO, fm.Probes))
		}
	}
	var worstLag *Latency
	for i := range rep.Steps {
		if l := rep.Steps[i].SchedulerLag; l != nil && (worstLag == nil || l.P99 > worstLag.P99) {
			worstLag = l
		}
	}
	if worstLag != nil {
		out = append(out, fmt.Sprintf("timing   the generator's own timer woke late by p50 %s, p99 %s, max %s (worst step); that lateness is part of the latencies",
			fmtUS(worstLag.P50), fmtUS(worstLag.P99), fmtUS(worstLag.Max)))
	}
	for i := range rep.Steps {
		st := &rep.Steps[i]
		if st.Mode == Open && st.TargetRate > 0 && st.AchievedRate < 0.97*st.TargetRate && !st.Interrupted {
			out = append(out, fmt.Sprintf("behind   %s %d achieved %s of %s req/s: the target (or the generator) could not keep up",
				per, st.Index, fmtRate(st.AchievedRate), fmtRate(st.TargetRate)))
		}
		if cpus := float64(rep.Settings.CPUs); cpus > 0 && st.GeneratorCPU >= 0.9*cpus {
			out = append(out, fmt.Sprintf("busy     %s %d: the generator used %.2f of its %d CPUs and may itself be the bottleneck",
				per, st.Index, st.GeneratorCPU, rep.Settings.CPUs))
		}
	}
	if rep.Settings.Mode == Closed {
		out = append(out, "closed loop: each worker waits for its answer before sending again, so a stalling target simply receives fewer requests and its stalls barely reach the percentiles. Use --rate for latency users would see.")
	}
	if rep.Interrupted {
		out = append(out, "interrupted: the results cover what was measured before the interrupt (* marks the step cut short)")
	}
	return out
}

// feedbackNote says what the server made of a step's events: the figures
// to hold against its own events-applied counter.
func feedbackNote(rep *Report, st *Step, per string) string {
	if rep.Settings.Events == nil || st.ByKind == nil || st.ByKind.Events == nil || st.ByKind.Events.Feedback == nil {
		return ""
	}
	ev := st.ByKind.Events
	f := ev.Feedback
	share := 0.0
	if st.Planned > 0 {
		share = float64(ev.Planned) / float64(st.Planned)
	}
	line := fmt.Sprintf("events   %s %d: %s of requests were event batches; %s sent, %s accepted, %s duplicates",
		per, st.Index, fmtPercent(share), plural64(f.Events, "event"), fmtInt(f.Accepted), fmtInt(f.Duplicates))
	if f.Duplicates > 0 {
		line += " (ids the server had counted before, so it skipped them)"
	}
	return line
}

// kindRow is one kind's figures with its report name.
type kindRow struct {
	name  string
	stats *KindStats
}

// kinds lists the kinds present, decide first.
func (b *ByKind) kinds() []kindRow {
	var out []kindRow
	if b.Decide != nil {
		out = append(out, kindRow{DecideRequest.String(), b.Decide})
	}
	if b.Events != nil {
		out = append(out, kindRow{EventsRequest.String(), b.Events})
	}
	return out
}

func plural(n int, what string) string { return plural64(int64(n), what) }

func plural64(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmtInt(n) + " " + what + "s"
}

// errorSummary renders "12 × HTTP 503, 4 timeouts (first: …)".
func errorSummary(e Errors) string {
	if e.Total == 0 {
		return ""
	}
	var parts []string
	codes := make([]string, 0, len(e.Status))
	for c := range e.Status {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%s × HTTP %s", fmtInt(e.Status[c]), c))
	}
	add := func(n int64, what string) {
		if n > 0 {
			parts = append(parts, fmtInt(n)+" "+what)
		}
	}
	add(e.Timeout, "timeouts")
	add(e.Connection, "connection errors")
	add(e.Unsent, "never sent (the schedule fell too far behind)")
	add(e.Other, "other errors")
	s := strings.Join(parts, ", ")
	for _, k := range []string{"connection", "timeout", "other"} {
		if msg, ok := e.Samples[k]; ok {
			s += fmt.Sprintf("; first %s error: %s", k, msg)
		}
	}
	for _, c := range codes {
		if msg, ok := e.Samples[c]; ok {
			s += fmt.Sprintf("; first %s answer: %s", c, msg)
			break
		}
	}
	return s
}
