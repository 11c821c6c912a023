// Package loadtest owns `touchpoint loadtest`: an HTTP load generator that
// measures the decide API the way its callers experience it. It schedules
// requests at a constant rate whatever the target does (open loop) and
// measures each latency from the request's scheduled send time, so a
// stalled server shows up in the percentiles instead of silently slowing
// the generator down (coordinated omission). A closed-loop mode finds
// maximum throughput and is labelled as such everywhere.
//
// It also owns the traffic model (weighted page views over Zipf-distributed
// customers, with a share of event batches, feedback and behavioural, for
// the events endpoint mixed in), the HDR-histogram measurements, the step and find-max
// searches, and the reports: the terminal table, the JSON file, the
// self-contained HTML page and the comparison of two runs.
//
// It is a black-box client: it speaks HTTP to a URL and imports nothing
// from the server, engine, rules or features packages.
package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/valyala/fasthttp"
)

// Step kinds in the report.
const (
	kindStep   = "step"
	kindProbe  = "probe"
	kindWarmup = "warmup"
)

// Preflight.
const (
	// preflightSeq numbers preflight requests far from the measured
	// sequence, so a preflight never shifts which requests a run sends.
	preflightSeq = uint64(1) << 63
	// maxPreflightDraws bounds the search for one request of every view.
	maxPreflightDraws = 100_000
)

// runner is one Run: the shared HTTP client, the request generator and
// the run clock. Steps run one after another on it.
type runner struct {
	cfg    Config
	gen    *Generator
	client *fasthttp.HostClient
	target string
	// eventsTarget is where event batches go; empty without events.
	eventsTarget string
	idPrefix     string
	clk          clock
	// seq is the next request sequence number; steps continue it, so every
	// request of a run is drawn from its own number.
	seq uint64
}

// job is one scheduled open-loop request.
type job struct {
	seq     uint64
	planned time.Duration
}

// Run executes cfg and returns what it measured. Cancelling ctx ends the
// run early: the step in progress stops scheduling, its in-flight requests
// finish (bounded by cfg.Timeout), and the report holds every step so far
// with Interrupted set. Errors are returned only when nothing could be
// measured (invalid settings, unreachable target, failed preflight).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	target, addr, isTLS, err := resolveTarget(cfg.URL, cfg.Traffic.Path)
	if err != nil {
		return nil, err
	}
	conns := cfg.Connections
	if cfg.Mode == Closed {
		conns = cfg.Concurrency
	}
	started := time.Now().UTC()
	runID := cfg.RunID
	if runID == "" {
		runID = newRunID(started)
	}
	r := &runner{
		cfg:      cfg,
		gen:      NewRunGenerator(cfg.Traffic, cfg.Customers, cfg.Seed, runID),
		target:   target,
		idPrefix: eventIDPrefix(cfg.Seed, runID),
		clk:      newClock(),
		client:   newClient(addr, isTLS, conns),
	}
	if cfg.Traffic.HasEvents() {
		if r.eventsTarget, err = eventsURL(cfg.URL, cfg.Traffic.Path, cfg.Traffic.Events.Path); err != nil {
			return nil, err
		}
	}
	defer r.client.CloseIdleConnections()

	rep := &Report{Format: FormatVersion, StartedAt: started, Settings: r.settings()}
	if cfg.Preflight {
		if rep.Warnings, err = r.preflight(); err != nil {
			return nil, err
		}
	}
	if cfg.Warmup > 0 && ctx.Err() == nil {
		p := plan{kind: kindWarmup, rate: firstRate(cfg), concurrency: cfg.Concurrency, duration: cfg.Warmup}
		r.runStep(ctx, p)
	}
	switch {
	case ctx.Err() != nil:
		// Interrupted during the warm-up: nothing was measured.
	case cfg.FindMax:
		r.findMax(ctx, rep)
	case cfg.Mode == Closed:
		rep.Steps = append(rep.Steps, r.runStep(ctx, plan{kind: kindStep, index: 1, of: 1,
			concurrency: cfg.Concurrency, duration: cfg.Duration, requests: cfg.Requests}))
	default:
		for i, rate := range cfg.Rates {
			if i > 0 && !r.pause(ctx) {
				break
			}
			st := r.runStep(ctx, plan{kind: kindStep, index: i + 1, of: len(cfg.Rates),
				rate: rate, duration: cfg.Duration, requests: cfg.Requests})
			rep.Steps = append(rep.Steps, st)
			if st.Interrupted {
				break
			}
		}
	}
	if len(cfg.SLO.Terms) > 0 {
		for i := range rep.Steps {
			if rep.Steps[i].SLO == nil {
				res := cfg.SLO.Check(&rep.Steps[i])
				rep.Steps[i].SLO = &res
			}
		}
	}
	rep.FinishedAt = time.Now().UTC()
	rep.Interrupted = ctx.Err() != nil
	return rep, nil
}

func firstRate(cfg Config) float64 {
	if len(cfg.Rates) > 0 {
		return cfg.Rates[0]
	}
	return 0
}

// newClient is the HTTP client shared by a run's workers.
func newClient(addr string, isTLS bool, conns int) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr:  addr,
		Name:  "touchpoint-loadtest",
		IsTLS: isTLS,
		// One connection per worker: the pool never grows past the
		// workers, so 20k req/s cannot exhaust local ports.
		MaxConns: conns,
		// A retried request would hide an error and its latency.
		MaxIdemponentCallAttempts: 1,
		RetryIfErr:                func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
		DisablePathNormalizing:    true,
		ReadBufferSize:            8 << 10,
		WriteBufferSize:           4 << 10,
	}
}

// resolveTarget gives the full request URL and the host:port to dial.
func resolveTarget(raw, defaultPath string) (target, addr string, isTLS bool, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", false, fmt.Errorf("bad target URL %q: %w", raw, err)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = defaultPath
	}
	isTLS = u.Scheme == "https"
	addr = u.Host
	if u.Port() == "" {
		port := "80"
		if isTLS {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	return u.String(), addr, isTLS, nil
}

// eventsURL is where event batches go: the target's scheme and host with
// the events path. A target whose path ends in the decide path keeps what
// comes before it, so http://gw/tp/v1/decide sends events to
// http://gw/tp/v1/events.
func eventsURL(raw, decidePath, eventsPath string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("bad target URL %q: %w", raw, err)
	}
	prefix := ""
	if p := u.Path; p != "" && p != "/" && strings.HasSuffix(p, decidePath) {
		prefix = strings.TrimSuffix(p, decidePath)
	}
	u.Path = prefix + eventsPath
	u.RawPath = ""
	return u.String(), nil
}

func (r *runner) settings() Settings {
	c := r.cfg
	s := Settings{
		URL: r.target, Mode: c.Mode, ModeLabel: c.Mode.Label(),
		DurationMS: c.Duration.Milliseconds(), Requests: c.Requests,
		Connections: c.Connections, KeepAlive: c.KeepAlive,
		TimeoutMS: c.Timeout.Milliseconds(), WarmupMS: c.Warmup.Milliseconds(),
		Customers: c.Customers, Seed: c.Seed,
		Traffic: c.TrafficPath, TrafficDigest: c.Traffic.Digest, Views: len(c.Traffic.Views),
		SLO: c.SLO.String(), FindMax: c.FindMax,
		CPUs: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
	}
	if e := c.Traffic.Events; c.Traffic.HasEvents() {
		s.Events = &EventSettings{URL: r.eventsTarget, Share: e.Share, Batch: e.Batch, Touchpoints: e.Touchpoints,
			Track: e.Track, TrackShare: e.TrackShare, IDPrefix: r.idPrefix}
	}
	if c.Mode == Closed {
		s.Concurrency = c.Concurrency
		s.Connections = c.Concurrency
	} else {
		s.Rates = c.Rates
	}
	if c.FindMax {
		s.MaxRate = c.MaxRate
	}
	return s
}

// pause waits between steps; false if interrupted meanwhile.
func (r *runner) pause(ctx context.Context) bool {
	if r.cfg.Pause <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(r.cfg.Pause)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// preflight sends one request of every view, and one event batch when the
// traffic has events, and refuses to start if any fails: a wrong port, a
// traffic file the target rejects or a server without an events endpoint
// is one clear error line instead of a run full of failures. It also
// checks the customer ids the run draws against the target and returns
// warnings about what it found.
func (r *runner) preflight() ([]string, error) {
	w := r.newWorker()
	t := r.cfg.Traffic
	views := t.Views
	covered := make([]bool, len(views))
	left := len(views)
	if t.HasEvents() && t.Events.Share >= 1 {
		left = 0 // an events-only run sends no decide
	}
	for k := uint64(0); k < maxPreflightDraws && left > 0; k++ {
		body, vi := w.src.Decide(w.body[:0], preflightSeq+k)
		w.body = body
		if covered[vi] {
			continue
		}
		covered[vi] = true
		left--
		w.decide.SetBodyRaw(body)
		if err := r.client.DoTimeout(w.decide, w.resp, r.cfg.Timeout); err != nil {
			return nil, fmt.Errorf("cannot reach %s: %w", r.target, err)
		}
		if code := w.resp.StatusCode(); code < 200 || code >= 300 {
			return nil, fmt.Errorf("%s answered %d to a %q request from the traffic file (%s): %s",
				r.target, code, views[vi].Name, truncate(string(body), 200), truncate(string(w.resp.Body()), 300))
		}
	}
	var warnings []string
	if len(views) > 0 && (!t.HasEvents() || t.Events.Share < 1) {
		if warn := r.customersWarning(w); warn != "" {
			warnings = append(warnings, warn)
		}
	}
	if !t.HasEvents() {
		return warnings, nil
	}
	w.body = w.src.Events(w.body[:0], preflightSeq, time.Now())
	w.events.SetBodyRaw(w.body)
	if err := r.client.DoTimeout(w.events, w.resp, r.cfg.Timeout); err != nil {
		return nil, fmt.Errorf("cannot reach %s: %w", r.eventsTarget, err)
	}
	code := w.resp.StatusCode()
	answer := truncate(string(w.resp.Body()), 300)
	switch {
	case code >= 200 && code < 300:
		return warnings, nil
	case code == fasthttp.StatusNotFound || code == fasthttp.StatusMethodNotAllowed:
		return nil, fmt.Errorf("%s answered %d to an event batch: the target has no events endpoint there (a server older than POST /v1/events, or a wrong events.path); "+
			"send decides only with --event-share 0 or set events.share: 0 in the traffic file (%s)", r.eventsTarget, code, answer)
	case code == fasthttp.StatusNotImplemented:
		return nil, fmt.Errorf("%s answered 501 to an event batch: the server cannot record events (it has no writable customer store); "+
			"send decides only with --event-share 0 or set events.share: 0 in the traffic file (%s)", r.eventsTarget, answer)
	}
	return nil, fmt.Errorf("%s answered %d to an event batch from the traffic file (%s): %s",
		r.eventsTarget, code, truncate(string(w.body), 200), answer)
}

// unknownCustomerAnswer is how a decide answer says the target does not
// know the customer.
var unknownCustomerAnswer = []byte(`"known_customer":false`)

// customersWarning asks the target about the lowest and the highest
// customer id the run draws. A store with fewer customers than --customers
// decides every id past its last one as unknown, which a run should not do
// by accident (the demo store has 3,000 customers, --customers defaults to
// 1,000,000); when that is so, it finds the last known id by bisection
// (demo ids are contiguous) and says so.
func (r *runner) customersWarning(w *worker) string {
	known := func(customer int) (bool, bool) {
		w.body = w.src.DecideAs(w.body[:0], preflightSeq, customer)
		w.decide.SetBodyRaw(w.body)
		if err := r.client.DoTimeout(w.decide, w.resp, r.cfg.Timeout); err != nil {
			return false, false
		}
		if code := w.resp.StatusCode(); code < 200 || code >= 300 {
			return false, false
		}
		return !bytes.Contains(w.resp.Body(), unknownCustomerAnswer), true
	}
	n := r.cfg.Customers
	first, ok1 := known(1)
	last, ok2 := known(n)
	switch {
	case !ok1 || !ok2 || last:
		return ""
	case !first:
		return fmt.Sprintf("the target knows neither %s nor %s, the first and last of the ids --customers %d draws: every decide will be for an unknown customer",
			customerID(1), customerID(n), n)
	}
	lo, hi := 1, n // lo is known, hi is not
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		k, ok := known(mid)
		if !ok {
			break
		}
		if k {
			lo = mid
		} else {
			hi = mid
		}
	}
	return fmt.Sprintf("the target knows %s but not %s, the last of the ids --customers %d draws; it seems to hold %s customers (%s … %s), so decides for the ids past that are for unknown customers. Pass --customers %d to draw only ids it knows",
		customerID(1), customerID(n), n, fmtInt(int64(lo)), customerID(1), customerID(lo), lo)
}

func customerID(n int) string { return string(appendCustomerID(nil, n)) }

// plan is one step to run.
type plan struct {
	kind        string
	index, of   int
	rate        float64 // open loop when > 0
	concurrency int     // closed loop when rate == 0
	duration    time.Duration
	requests    int64
}

func (r *runner) runStep(ctx context.Context, p plan) Step {
	if p.rate > 0 {
		return r.runOpen(ctx, p)
	}
	return r.runClosed(ctx, p)
}

// runOpen runs one constant-rate step: a scheduler (this goroutine) hands
// jobs at their planned times to a fixed set of workers, each of which
// owns at most one connection. When every worker is busy the scheduler
// waits, but planned times never move: the requests that queued behind a
// slow answer carry their waiting time into their latency.
func (r *runner) runOpen(ctx context.Context, p plan) Step {
	n := plannedCount(p)
	// Whole nanoseconds keep planned times exact integers; the rate this
	// implies differs from the requested one by under 0.05% up to 1M req/s.
	interval := max(time.Duration(math.Round(float64(time.Second)/p.rate)), 1)
	conns := r.cfg.Connections

	// Start a little ahead so the workers are parked and ready.
	start := r.clk.now() + time.Millisecond
	rec := newRecorder(start)
	rec.withEvents = r.cfg.Traffic.HasEvents()
	rec.setWindow(start + time.Duration(n)*interval)
	jobs := make(chan job, conns)
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := r.newWorker()
			for j := range jobs {
				if ctx.Err() != nil {
					rec.addUnsent(r.gen.Kind(j.seq), 1) // interrupted before it could be sent
					continue
				}
				w.exchange(j.seq, j.planned, rec)
			}
		}()
	}
	stopProgress := r.startProgress(p, rec, start)
	cpu0, cpuOK := processCPU()

	lag := newHist()
	planned, dispatched, interrupted := r.schedule(ctx, jobs, start, interval, n, lag)
	close(jobs)
	wg.Wait()
	end := r.clk.now()
	cpu1, _ := processCPU()
	stopProgress()

	// The requests never handed to a worker still count, each as its kind.
	var unsentEvents int64
	for i := dispatched; i < planned; i++ {
		if r.gen.Kind(r.seq+uint64(i)) == EventsRequest {
			unsentEvents++
		}
	}
	rec.addUnsent(DecideRequest, planned-dispatched-unsentEvents)
	rec.addUnsent(EventsRequest, unsentEvents)
	st := Step{Index: p.index, Kind: p.kind, Mode: Open, TargetRate: p.rate, Planned: planned, Interrupted: interrupted}
	rec.finish(&st, start+time.Duration(planned)*interval)
	if lag.TotalCount() > 0 {
		l := summarize(lag)
		st.SchedulerLag = &l
	}
	if cpuOK && end > start {
		st.GeneratorCPU = math.Round(float64(cpu1-cpu0)/float64(end-start)*100) / 100
	}
	r.seq += uint64(n)
	return st
}

// plannedCount is how many requests a step schedules.
func plannedCount(p plan) int64 {
	var n int64 = math.MaxInt64
	if p.duration > 0 {
		n = max(1, int64(p.duration.Seconds()*p.rate))
	}
	if p.requests > 0 && p.requests < n {
		n = p.requests
	}
	return n
}

// minTick is the shortest scheduler tick. Above 20,000 req/s one tick
// releases several requests (those due within it), because a wake-up per
// request would cost more CPU than the requests themselves.
const minTick = 50 * time.Microsecond

// schedule dispatches n jobs, job i at start + i×interval. It waits on a
// precise ticker between jobs and blocks when every worker is busy; it
// gives up on jobs still undispatched a timeout after the schedule's end.
// It returns how many jobs were due (all n, unless interrupted) and how
// many were dispatched, and records in lag how late each tick woke it.
func (r *runner) schedule(ctx context.Context, jobs chan<- job, start, interval time.Duration, n int64,
	lag *hdrhistogram.Histogram) (planned, dispatched int64, interrupted bool) {
	at := func(i int64) time.Duration { return start + time.Duration(i)*interval }
	dueBy := func(t time.Duration) int64 {
		if t < start {
			return 0
		}
		return min(n, int64((t-start)/interval)+1)
	}
	tick := interval
	if tick < minTick {
		tick = interval * ((minTick + interval - 1) / interval)
	}
	ahead := tick - interval // jobs due within the current tick leave together
	tk := newTicker(ctx, r.clk, start, tick)
	defer tk.stop()

	giveUp := at(n) + r.cfg.Timeout
	var i int64
	for i < n {
		now := r.clk.now()
		if at(i) > now+ahead {
			last, ok := tk.wait()
			if !ok {
				return max(i, dueBy(r.clk.now())), i, true
			}
			lag.RecordValue(toUS(r.clk.now() - last))
			continue
		}
		if now > giveUp {
			return n, i, false
		}
		j := job{seq: r.seq + uint64(i), planned: at(i)}
		select {
		case jobs <- j:
		default:
			// Every worker is busy: wait for one. The planned time stays,
			// so this wait is counted in the request's latency.
			select {
			case jobs <- j:
			case <-ctx.Done():
				return max(i, dueBy(r.clk.now())), i, true
			}
		}
		i++
		if i&255 == 0 && ctx.Err() != nil {
			return max(i, dueBy(r.clk.now())), i, true
		}
	}
	return n, i, false
}

// runClosed runs the closed loop: each worker sends its next request as
// soon as it has the previous answer. Latency runs from the actual send.
func (r *runner) runClosed(ctx context.Context, p plan) Step {
	start := r.clk.now()
	end := time.Duration(math.MaxInt64)
	if p.duration > 0 {
		end = start + p.duration
	}
	rec := newRecorder(start)
	rec.withEvents = r.cfg.Traffic.HasEvents()
	if p.duration > 0 {
		rec.setWindow(end)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range p.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := r.newWorker()
			for ctx.Err() == nil && r.clk.now() < end {
				k := next.Add(1) - 1
				if p.requests > 0 && k >= p.requests {
					return
				}
				w.exchange(r.seq+uint64(k), -1, rec)
			}
		}()
	}
	stopProgress := r.startProgress(p, rec, start)
	cpu0, cpuOK := processCPU()
	wg.Wait()
	stopEnd := r.clk.now()
	cpu1, _ := processCPU()
	stopProgress()

	st := Step{Index: p.index, Kind: p.kind, Mode: Closed, Concurrency: p.concurrency, Interrupted: ctx.Err() != nil}
	rec.finish(&st, start)
	st.Planned = st.Sent
	if cpuOK && stopEnd > start {
		st.GeneratorCPU = math.Round(float64(cpu1-cpu0)/float64(stopEnd-start)*100) / 100
	}
	r.seq += uint64(max(0, next.Load()))
	return st
}

// worker owns one request per kind, one response and one body buffer,
// reused for every exchange so the steady state allocates nothing. Both
// kinds share the run's client, so they share its connections too.
type worker struct {
	r      *runner
	src    *Source
	decide *fasthttp.Request
	events *fasthttp.Request
	resp   *fasthttp.Response
	body   []byte
}

func (r *runner) newWorker() *worker {
	w := &worker{r: r, src: r.gen.NewSource(), decide: r.newRequest(r.target), resp: &fasthttp.Response{}, body: make([]byte, 0, 512)}
	if r.eventsTarget != "" {
		w.events = r.newRequest(r.eventsTarget)
	}
	return w
}

func (r *runner) newRequest(uri string) *fasthttp.Request {
	req := &fasthttp.Request{}
	req.SetRequestURI(uri)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	if !r.cfg.KeepAlive {
		req.SetConnectionClose()
	}
	return req
}

// exchange sends request seq and records it. planned < 0 means closed loop.
func (w *worker) exchange(seq uint64, planned time.Duration, rec *recorder) {
	o := outcome{kind: w.r.gen.Kind(seq)}
	req := w.decide
	if o.kind == EventsRequest {
		w.body = w.src.Events(w.body[:0], seq, time.Now())
		o.items = int64(w.r.cfg.Traffic.Events.Batch)
		req = w.events
	} else {
		w.body, _ = w.src.Decide(w.body[:0], seq)
	}
	req.SetBodyRaw(w.body)
	sent := w.r.clk.now()
	o.err = w.r.client.DoTimeout(req, w.resp, w.r.cfg.Timeout)
	done := w.r.clk.now()
	start := sent
	if planned >= 0 && planned < sent {
		start = planned
	}
	if o.err == nil {
		o.status = w.resp.StatusCode()
		switch {
		case o.status < 200 || o.status >= 300:
			o.body = w.resp.Body()
		case o.kind == EventsRequest:
			o.accepted, o.duplicates, _ = eventsAnswer(w.resp.Body())
		default:
			o.unknownCustomer = bytes.Contains(w.resp.Body(), unknownCustomerAnswer)
		}
	}
	rec.record(start, sent, done, o)
}
