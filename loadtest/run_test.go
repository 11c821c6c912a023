package loadtest

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestOpenLoopCountsStalls is the proof of the latency accounting: a server
// that pauses every answer for 400 ms once a second must show that pause
// in an open-loop p99, while the same load on a server without pauses
// shows a small p99. The pause is long so that the two stay apart on a
// machine loaded enough (the race detector on two busy cores) to delay
// plain answers by 100 ms. The closed loop, which cannot see most of a stall,
// must say what it is wherever it reports.
func TestOpenLoopCountsStalls(t *testing.T) {
	var st staller
	stalling := startServer(t, st.handler)
	st.start(t, time.Second, 400*time.Millisecond)

	cfg := testConfig(t, stalling)
	cfg.Rates = []float64{400}
	cfg.Duration = 2500 * time.Millisecond
	open := run(t, cfg).Steps[0]
	// About 40% of requests are planned inside a stall and wait up to
	// 400 ms, so the 99th percentile lands deep inside the pause.
	if open.Latency.P99 < 200_000 {
		t.Errorf("open loop against a stalling server: p99 = %s, want ≥ 200ms (the stall); latency %+v", fmtUS(open.Latency.P99), open.Latency)
	}
	if open.Errors.Total != 0 || open.OK != open.Planned {
		t.Errorf("stalls are slow answers, not errors: %+v, ok %d of %d", open.Errors, open.OK, open.Planned)
	}

	calm := startServer(t, okHandler)
	cfg.URL = calm
	cfg.Duration = time.Second
	base := run(t, cfg).Steps[0]
	// Loopback answers take well under a millisecond; the bound is loose
	// only so a busy test machine cannot pass for a stall.
	if base.Latency.P99 >= 200_000 {
		t.Errorf("open loop against a server without stalls: p99 = %s, want far below the 400ms stall", fmtUS(base.Latency.P99))
	}

	closed := cfg
	closed.URL = stalling
	closed.Mode, closed.Concurrency, closed.Rates = Closed, 2, nil
	closed.Duration = 1500 * time.Millisecond
	rep := run(t, closed)
	if rep.Settings.Mode != Closed || rep.Steps[0].Mode != Closed || !strings.Contains(rep.Settings.ModeLabel, "closed loop") {
		t.Fatalf("closed-loop run not labelled: settings %q %q, step %q", rep.Settings.Mode, rep.Settings.ModeLabel, rep.Steps[0].Mode)
	}
	var table, page, js bytes.Buffer
	if err := WriteTable(&table, rep); err != nil {
		t.Fatal(err)
	}
	if err := WriteHTML(&page, rep); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for what, want := range map[string][2]string{
		"table": {table.String(), "CLOSED LOOP: max throughput"},
		"note":  {table.String(), "closed loop: each worker waits for its answer"},
		"html":  {page.String(), "<b>CLOSED LOOP</b>"},
		"json":  {js.String(), `"mode": "closed"`},
	} {
		if !strings.Contains(want[0], want[1]) {
			t.Errorf("%s does not say it is a closed loop (%q):\n%s", what, want[1], want[0])
		}
	}
	t.Logf("p99: open loop with stalls %s, without %s; closed loop with stalls %s",
		fmtUS(open.Latency.P99), fmtUS(base.Latency.P99), fmtUS(rep.Steps[0].Latency.P99))
}

func TestErrorsByKind(t *testing.T) {
	release := make(chan struct{})
	var n atomic.Int64
	url := startServer(t, func(ctx *fasthttp.RequestCtx) {
		switch n.Add(1) % 4 {
		case 0:
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			ctx.SetBodyString(`{"error":{"code":"unavailable"}}`)
		case 1:
			<-release // outlives the client's timeout
		default:
			okHandler(ctx)
		}
	})
	t.Cleanup(func() { close(release) })

	cfg := testConfig(t, url)
	cfg.Preflight = false
	cfg.Rates = []float64{100}
	cfg.Requests = 40
	cfg.Timeout = 150 * time.Millisecond
	st := run(t, cfg).Steps[0]
	e := st.Errors
	if e.Status["503"] == 0 || e.Timeout == 0 || st.OK == 0 {
		t.Fatalf("want 503s, timeouts and successes; got ok %d, errors %+v", st.OK, e)
	}
	if e.Total != e.Status["503"]+e.Timeout+e.Connection+e.Unsent+e.Other || st.OK+e.Total != st.Planned {
		t.Errorf("errors do not add up: ok %d, planned %d, %+v", st.OK, st.Planned, e)
	}
	if !strings.Contains(e.Samples["503"], "unavailable") {
		t.Errorf("no sample of the 503 answer: %v", e.Samples)
	}
	// Timed-out requests count with the time they were given up.
	if st.Latency.Max < 150_000 {
		t.Errorf("max latency %s is below the timeout; timeouts were left out", fmtUS(st.Latency.Max))
	}
	// The 2xx latency leaves out the 503s and the timeouts.
	if st.LatencyOK.Count != st.OK || st.LatencyOK.Max >= 150_000 {
		t.Errorf("2xx latency counts %d answers with max %s; want the %d successes, none timed out", st.LatencyOK.Count, fmtUS(st.LatencyOK.Max), st.OK)
	}
	var table strings.Builder
	if err := WriteTable(&table, &Report{Steps: []Step{st}}); err != nil || !strings.Contains(table.String(), "2xx only step 1: ") {
		t.Errorf("the table does not show the 2xx latency of a step with errors:\n%s", table.String())
	}
}

func TestConnectionErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now

	cfg := testConfig(t, url)
	cfg.Rates = []float64{200}
	cfg.Requests = 20
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "cannot reach") {
		t.Fatalf("preflight against a closed port: err = %v, want cannot reach", err)
	}
	cfg.Preflight = false
	st := run(t, cfg).Steps[0]
	if st.Errors.Connection != 20 || st.OK != 0 {
		t.Fatalf("want 20 connection errors, got ok %d, %+v", st.OK, st.Errors)
	}
}

func TestPreflightShowsRejectedTraffic(t *testing.T) {
	url := startServer(t, func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
		ctx.SetBodyString(`{"error":{"code":"unknown_placement"}}`)
	})
	cfg := testConfig(t, url)
	cfg.Duration = time.Second
	_, err := Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "answered 400") || !strings.Contains(err.Error(), "unknown_placement") {
		t.Fatalf("err = %v, want the 400 and its body", err)
	}
}

func TestInterruptReportsWhatWasMeasured(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var served atomic.Int64
	url := startServer(t, func(rc *fasthttp.RequestCtx) {
		if served.Add(1) == 60 {
			cancel() // the interrupt arrives mid-step
		}
		okHandler(rc)
	})
	cfg := testConfig(t, url)
	cfg.Preflight = false
	cfg.Rates = []float64{500, 1000}
	cfg.Duration = 30 * time.Second
	began := time.Now()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Fatalf("an interrupted run took %s", took)
	}
	if !rep.Interrupted || len(rep.Steps) != 1 || !rep.Steps[0].Interrupted {
		t.Fatalf("interrupted = %v, steps = %d", rep.Interrupted, len(rep.Steps))
	}
	if st := rep.Steps[0]; st.OK < 50 || st.Latency.Count < 50 {
		t.Errorf("the measured part is missing: ok %d, latencies %d", st.OK, st.Latency.Count)
	}
	var table bytes.Buffer
	WriteTable(&table, rep)
	if !strings.Contains(table.String(), "interrupted") {
		t.Errorf("table does not say the run was interrupted:\n%s", table.String())
	}
}

func TestStepsAndFindMax(t *testing.T) {
	url := startServer(t, okHandler)
	cfg := testConfig(t, url)
	cfg.Rates = []float64{100, 200}
	cfg.Duration = 400 * time.Millisecond
	// The SLO is loose on purpose: this tests the steps and the search,
	// not the machine, which CI may load so much that a 200 req/s step
	// misses a tight latency or the 97% achieved-rate bound.
	cfg.SLO, _ = ParseSLO("p99=30s")
	cfg.SLO.MinAchieved = 0.25
	rep := run(t, cfg)
	if len(rep.Steps) != 2 || rep.Steps[1].TargetRate != 200 {
		t.Fatalf("steps: %+v", rep.Steps)
	}
	for _, st := range rep.Steps {
		if want := int64(st.TargetRate * 0.4); st.Planned != want || st.OK != want {
			t.Errorf("step %d: planned %d, ok %d, want %d", st.Index, st.Planned, st.OK, want)
		}
		if st.SLO == nil || !st.SLO.Pass {
			t.Errorf("step %d: SLO %+v", st.Index, st.SLO)
		}
		if len(st.Seconds) != 1 || st.Seconds[0].Sent != st.Planned {
			t.Errorf("step %d: seconds %+v", st.Index, st.Seconds)
		}
	}

	cfg.FindMax = true
	cfg.Rates = []float64{100}
	cfg.MaxRate = 400
	cfg.Duration = 300 * time.Millisecond
	rep = run(t, cfg)
	fm := rep.FindMax
	if fm == nil || !fm.Found || !fm.Capped || fm.MaxRate != 400 || fm.Probes != 3 || len(rep.Steps) != 3 {
		t.Fatalf("find-max: %+v, %d steps", fm, len(rep.Steps))
	}
	if rep.Steps[2].Kind != kindProbe || rep.Steps[2].TargetRate != 400 {
		t.Errorf("probe 3: %+v", rep.Steps[2])
	}
}

func TestSearch(t *testing.T) {
	const capacity = 12_345.0
	var probed []float64
	best, capped, probes := search(1000, 1e6, func(rate float64) (bool, bool) {
		probed = append(probed, rate)
		return rate <= capacity, false
	})
	if capped || best > capacity || best < capacity*(1-searchResolution) {
		t.Fatalf("best = %g (capped %v) after %v, want within 5%% below %g", best, capped, probed, capacity)
	}
	if probes > 12 || probed[0] != 1000 || probed[1] != 2000 {
		t.Errorf("probes %v: want a doubling ramp from the start, then a short bisection", probed)
	}
	for _, r := range probed[4:] {
		if r != roundSig(r, 3) {
			t.Errorf("probe rate %g is not round", r)
		}
	}
	if best, _, _ := search(1000, 1e6, func(float64) (bool, bool) { return false, false }); best != 0 {
		t.Errorf("nothing passes: best = %g, want 0", best)
	}
	if best, capped, _ := search(1000, 5000, func(float64) (bool, bool) { return true, false }); best != 5000 || !capped {
		t.Errorf("everything passes: best = %g capped %v, want 5000 capped", best, capped)
	}
	if _, _, probes := search(1000, 1e6, func(float64) (bool, bool) { return true, true }); probes != 1 {
		t.Errorf("an interrupted probe must end the search, ran %d", probes)
	}
}

func TestRefusesEndlessRuns(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1")
	_, err := Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "--duration or --requests") {
		t.Fatalf("err = %v", err)
	}
}

// TestWarnsAboutUnknownCustomers runs the default --customers (a million
// ids) against a target that holds only the first 100 customers, as the
// README's demo holds 3,000: the preflight must say how many the target
// seems to hold and which flag fixes it, and the report must count the
// decides that were for customers the target does not know.
func TestWarnsAboutUnknownCustomers(t *testing.T) {
	const held = 100
	var known, unknown atomic.Int64
	url := startServer(t, func(ctx *fasthttp.RequestCtx) {
		body := ctx.PostBody()
		id := body[bytes.Index(body, []byte(`"customer_id":"`))+len(`"customer_id":"`):]
		id = id[:bytes.IndexByte(id, '"')]
		n := 0
		if rest, ok := bytes.CutPrefix(id, []byte("c-")); ok {
			for _, c := range rest {
				n = n*10 + int(c-'0')
			}
		}
		ctx.SetContentType("application/json")
		if n >= 1 && n <= held {
			known.Add(1)
			ctx.SetBodyString(`{"decision_id":"d","known_customer":true,"placements":{}}`)
			return
		}
		unknown.Add(1)
		ctx.SetBodyString(`{"decision_id":"d","known_customer":false,"placements":{}}`)
	})
	cfg := testConfig(t, url)
	cfg.Traffic, _ = cfg.Traffic.WithEventShare(0)
	cfg.Customers = DefaultConfig().Customers
	cfg.Rates = []float64{2000}
	cfg.Requests = 1000
	rep := run(t, cfg)

	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "it seems to hold 100 customers (c-000001 … c-000100)") ||
		!strings.Contains(rep.Warnings[0], "--customers 100") {
		t.Fatalf("warnings = %q; want one saying the target holds 100 customers", rep.Warnings)
	}
	d := rep.Steps[0].ByKind.Decide
	if d.UnknownCustomers == 0 || d.UnknownCustomers >= d.OK {
		t.Errorf("unknown customers %d of %d decides; want some but not all", d.UnknownCustomers, d.OK)
	}
	var table bytes.Buffer
	if err := WriteTable(&table, rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "warning  the target knows c-000001 but not c-1000000") ||
		!strings.Contains(table.String(), "were for customers the target does not know") {
		t.Errorf("table does not show the warning and the unknown share:\n%s", table.String())
	}

	// Against a target that knows every id it is asked about, no warning.
	cfg = testConfig(t, startServer(t, okHandler))
	cfg.Traffic, _ = cfg.Traffic.WithEventShare(0)
	cfg.Rates = []float64{2000}
	cfg.Requests = 200
	if rep := run(t, cfg); len(rep.Warnings) != 0 || rep.Steps[0].ByKind.Decide.UnknownCustomers != 0 {
		t.Errorf("warnings %q, unknown %d against a target that knows everyone", rep.Warnings, rep.Steps[0].ByKind.Decide.UnknownCustomers)
	}
}
