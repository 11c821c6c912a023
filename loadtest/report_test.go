package loadtest

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// shortRun is a two-step open-loop run against a local server, with an SLO
// so every part of the reports has something to show.
func shortRun(t *testing.T) *Report {
	t.Helper()
	cfg := testConfig(t, startServer(t, okHandler))
	cfg.Rates = []float64{200, 400}
	cfg.Duration = 500 * time.Millisecond
	cfg.SLO, _ = ParseSLO("p99=250ms,p99.9=500ms")
	return run(t, cfg)
}

// TestReports renders one real run every way it can be reported.
func TestReports(t *testing.T) {
	rep := shortRun(t)
	t.Run("json", func(t *testing.T) { testJSONRoundTrip(t, rep) })
	t.Run("html", func(t *testing.T) { testHTMLReport(t, rep) })
	t.Run("table", func(t *testing.T) { testTable(t, rep) })
	t.Run("compare", func(t *testing.T) { testCompareRealRun(t, rep) })
}

func testJSONRoundTrip(t *testing.T, rep *Report) {
	var first bytes.Buffer
	if err := rep.WriteJSON(&first); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "run.json")
	if err := os.WriteFile(path, first.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	back, err := ReadReport(path)
	if err != nil {
		t.Fatal(err)
	}
	var second bytes.Buffer
	if err := back.WriteJSON(&second); err != nil {
		t.Fatal(err)
	}
	if first.String() != second.String() {
		t.Fatalf("JSON changes on a round trip:\n%s\n---\n%s", first.String(), second.String())
	}
	// The embedded histogram is the real distribution.
	for i, st := range back.Steps {
		if st.hist == nil || st.hist.TotalCount() != st.Latency.Count || st.hist.ValueAtPercentile(99) != st.Latency.P99 {
			t.Errorf("step %d: histogram does not match the summary", i+1)
		}
	}
	// The documented fields are there, latencies in microseconds.
	for _, field := range []string{`"format": "touchpoint-loadtest/1"`, `"settings"`, `"mode": "open"`, `"rates"`,
		`"steps"`, `"target_rate": 200`, `"achieved_rate"`, `"latency_us"`, `"p99_9"`, `"p99_99"`, `"spectrum"`,
		`"histogram": "HISTF`, `"seconds"`, `"p50_us"`, `"errors"`, `"scheduler_lag_us"`, `"generator_cpu"`, `"slo"`} {
		if !strings.Contains(first.String(), field) {
			t.Errorf("JSON lacks %s", field)
		}
	}

	os.WriteFile(path, []byte(`{"format":"something-else/9"}`), 0o644)
	if _, err := ReadReport(path); err == nil || !strings.Contains(err.Error(), "is not") {
		t.Errorf("a foreign file is accepted: %v", err)
	}
}

func testHTMLReport(t *testing.T, rep *Report) {
	var b bytes.Buffer
	if err := WriteHTML(&b, rep); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{
		"<!doctype html>", "<title>Touchpoint load test · open loop",
		`id="mode" class="mode open"`, "<b>OPEN LOOP</b>",
		`<section id="summary">`, `<table id="steps">`, "p99.99", "generator CPU",
		`<section id="latency-over-time">`, `<svg id="chart-latency"`,
		`<section id="percentile-spectrum">`, `<svg id="chart-spectrum"`, ">99.9%<",
		`<section id="throughput">`, `<svg id="chart-throughput"`,
		`<section id="latency-by-rate">`, `<svg id="chart-by-rate"`,
		`<section id="errors">`, "No errors",
		`<section id="settings">`, "configs/loadtest/traffic.yaml", "SLO p99 ≤ 250ms",
		"step 2 · 400/s", "</html>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// Self-contained: nothing is fetched from anywhere.
	for _, banned := range []string{"<script", "<link", " src=", "@import", "url(http", "<img"} {
		if strings.Contains(page, banned) {
			t.Errorf("report is not self-contained: it contains %q", banned)
		}
	}
	// Every chart line is drawn from real points.
	if n := len(regexp.MustCompile(`<path d="M`).FindAllString(page, -1)); n < 10 {
		t.Errorf("only %d chart lines drawn", n)
	}
	if strings.Contains(page, "NaN") || strings.Contains(page, "Inf") {
		t.Error("report contains NaN or Inf coordinates")
	}
}

func TestHTMLWithoutData(t *testing.T) {
	rep := &Report{Format: FormatVersion, Settings: Settings{Mode: Open, FindMax: true, SLO: "p99=1ms,errors=0.1%"},
		FindMax: &FindMax{SLO: "p99=1ms,errors=0.1%"}, Steps: []Step{{Index: 1, Kind: kindProbe, Mode: Open, TargetRate: 1000,
			Planned: 10, Errors: Errors{Total: 10, Connection: 10, Samples: map[string]string{"connection": "refused <b>"}}}}}
	var b bytes.Buffer
	if err := WriteHTML(&b, rep); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{"max rate meeting SLO", "none", "refused &lt;b&gt;", "never sent"} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(page, "NaN") || strings.Contains(page, "refused <b>") {
		t.Error("bad coordinates or unescaped text")
	}
}

func testTable(t *testing.T, rep *Report) {
	var b bytes.Buffer
	if err := WriteTable(&b, rep); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"OPEN LOOP: constant arrival rate", "target/s", "achieved/s", "p99.99", "gen CPU", "SLO", "pass", "timing"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// report builds a one-step report with the given figures.
func report(rate float64, p50, p90, p99, p999 int64, errs int64) *Report {
	return &Report{Format: FormatVersion, Settings: Settings{Mode: Open, URL: "http://127.0.0.1:8080/v1/decide", Connections: 64, CPUs: 1},
		Steps: []Step{{Index: 1, Kind: kindStep, Mode: Open, TargetRate: 20000, Planned: 200_000, Sent: 200_000, OK: 200_000 - errs,
			AchievedRate: rate, Errors: Errors{Total: errs, Status: map[string]int64{}},
			Latency: Latency{Count: 200_000, P50: p50, P90: p90, P99: p99, P999: p999, P9999: p999 * 2, Max: p999 * 3}}}}
}

func TestCompareVerdicts(t *testing.T) {
	base := report(19_990, 100, 200, 1000, 3000, 0)
	for name, c := range map[string]struct {
		b       *Report
		verdict string
		reason  string
	}{
		"identical":        {report(19_990, 100, 200, 1000, 3000, 0), Same, ""},
		"within noise":     {report(19_800, 104, 195, 1040, 2900, 0), Same, ""},
		"p99 regressed":    {report(19_990, 100, 200, 1200, 3000, 0), Worse, "p99 +20.0%"},
		"faster":           {report(19_990, 80, 150, 700, 2000, 0), Better, "p50 -20.0%"},
		"errors appeared":  {report(19_990, 100, 200, 1000, 3000, 200), Worse, "errors"},
		"mixed":            {report(19_990, 80, 200, 1200, 3000, 0), Mixed, "worse: p99 +20.0%; better: p50 -20.0%"},
		"throughput fell":  {report(15_000, 100, 200, 1000, 3000, 0), Worse, "throughput -25.0%"},
		"1µs is not 5%":    {report(19_990, 10, 200, 1000, 3000, 0), Better, "p50 -90.0%"},
		"sub-µs no change": {report(19_990, 101, 200, 1000, 3000, 0), Same, ""},
	} {
		pairs, unmatched := CompareSteps(base, c.b, 0.05)
		if len(pairs) != 1 || len(unmatched) != 0 {
			t.Fatalf("%s: %d pairs, unmatched %v", name, len(pairs), unmatched)
		}
		if pairs[0].Verdict != c.verdict || !strings.Contains(pairs[0].Reason, c.reason) {
			t.Errorf("%s: verdict %s (%s), want %s (%s)", name, pairs[0].Verdict, pairs[0].Reason, c.verdict, c.reason)
		}
	}

	var out bytes.Buffer
	if err := Compare(&out, base, report(19_990, 100, 200, 1200, 3000, 0), "a.json", "b.json", 0.05); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"A  a.json", "B  b.json", "±5%", "p99", "1.00ms", "1.20ms", "+20.0%", "worse", "overall: B is worse than A"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("compare output lacks %q:\n%s", want, out.String())
		}
	}

	// Steps pair by target rate when the runs have different steps.
	other := report(19_990, 100, 200, 1000, 3000, 0)
	other.Steps[0].TargetRate = 30_000
	pairs, unmatched := CompareSteps(base, other, 0.05)
	if len(pairs) != 0 || len(unmatched) != 2 {
		// Same count of steps pairs by position, so this compares 20k with 30k.
		if len(pairs) != 1 || !strings.Contains(pairs[0].Label, "vs") {
			t.Errorf("different rates: pairs %+v, unmatched %v", pairs, unmatched)
		}
	}
}

func testCompareRealRun(t *testing.T, rep *Report) {
	var out bytes.Buffer
	if err := Compare(&out, rep, rep, "a.json", "b.json", 0.05); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "step 1 · 200/s") || !strings.Contains(out.String(), "step 2 · 400/s") ||
		!strings.Contains(out.String(), "overall: B is the same as A") {
		t.Errorf("compare output:\n%s", out.String())
	}
}

func TestExchangeDoesNotAllocate(t *testing.T) {
	cfg := testConfig(t, startServer(t, okHandler))
	cfg.Duration = time.Second
	r := &runner{cfg: cfg, gen: NewGenerator(cfg.Traffic, cfg.Customers, 1), clk: newClock()}
	target, addr, _, _ := resolveTarget(cfg.URL, cfg.Traffic.Path)
	r.target = target
	// The demo traffic mixes in event batches, so both kinds are measured.
	r.eventsTarget, _ = eventsURL(cfg.URL, cfg.Traffic.Path, cfg.Traffic.Events.Path)
	r.client = newClient(addr, false, 1)
	rec := newRecorder(0)
	w := r.newWorker()
	seq := uint64(0)
	exchange := func() {
		w.exchange(seq, -1, rec)
		seq++
	}
	for range 50 {
		exchange() // connection, buffers and histograms settle
	}
	// The in-process server shares the count, so allow it a little.
	if allocs := testing.AllocsPerRun(500, exchange); allocs > 1 {
		t.Errorf("one exchange allocates %.1f times", allocs)
	}
	if rec.ok != 551 { // AllocsPerRun runs once more to warm up
		t.Errorf("ok = %d, want 551", rec.ok)
	}
	if ev := &rec.kinds[EventsRequest]; ev.ok == 0 || ev.accepted != ev.ok {
		t.Errorf("event batches: ok %d, accepted %d; want some, each accepted", ev.ok, ev.accepted)
	}
}
