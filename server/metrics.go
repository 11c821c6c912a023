package server

import (
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/touchpoint-dev/touchpoint/decisionlog"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/internal/buildinfo"
)

// metrics holds the server's private Prometheus registry. It is private so
// that tests and several servers in one process never collide on names.
type metrics struct {
	reg            *prometheus.Registry
	requests       *prometheus.CounterVec
	decideDuration prometheus.Histogram
	eventsApplied  prometheus.Counter
	degraded       prometheus.Counter
	overloaded     prometheus.Counter
	handler        fasthttp.RequestHandler
	// counters caches resolved request counters per endpoint and common
	// status, so counting a request does no label hashing after the first
	// time a combination is seen.
	counters [numEndpoints][numStatusSlots]atomic.Pointer[counterRef]
}

type counterRef struct{ c prometheus.Counter }

// decideBuckets spans the server's own time (tens of microseconds) up to a
// slow feature store (hundreds of milliseconds).
func decideBuckets() []float64 {
	return []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1}
}

func newMetrics(d Decider, cache FeatureCache, log zerolog.Logger, inflight func() int64) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "touchpoint_http_requests_total",
			Help: "HTTP requests answered, by endpoint and status code.",
		}, []string{"endpoint", "status"}),
		decideDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "touchpoint_decide_duration_seconds",
			Help:    "Server time for one POST /v1/decide: decoding, deciding and encoding.",
			Buckets: decideBuckets(),
		}),
		eventsApplied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "touchpoint_events_applied_total",
			Help: "Feedback events counted (retried duplicates are not).",
		}),
		degraded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "touchpoint_degraded_decisions_total",
			Help: "Degraded decisions: made without the customer's features because the store failed, or with rules skipped at the decide deadline.",
		}),
		overloaded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "touchpoint_decide_overloaded_total",
			Help: "Decides refused with 503 overloaded because server.max_inflight_decides were already in flight.",
		}),
	}
	m.reg.MustRegister(
		m.requests,
		m.decideDuration,
		m.eventsApplied,
		m.degraded,
		m.overloaded,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "touchpoint_decide_in_flight",
			Help: "Decides being served right now (bounded by server.max_inflight_decides).",
		}, func() float64 { return float64(inflight()) }),
		newEngineCollector(d),
		buildInfo(),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if cache != nil {
		m.reg.MustRegister(newCacheCollector(cache))
	}
	m.handler = fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog: promLogger{log: log},
		// A broken collector should cost its own series, not the scrape.
		ErrorHandling: promhttp.ContinueOnError,
	}))
	// Resolve the hot series up front so they exist (at 0) from the first
	// scrape, which keeps rate() and ratio queries well defined.
	for _, c := range []struct {
		ep     endpoint
		status int
	}{
		{epDecide, fasthttp.StatusOK},
		{epDecide, fasthttp.StatusBadRequest},
		{epDecide, fasthttp.StatusInternalServerError},
		{epDecide, fasthttp.StatusServiceUnavailable},
		{epPreflight, fasthttp.StatusNoContent},
		{epHealthz, fasthttp.StatusOK},
		{epReadyz, fasthttp.StatusOK},
	} {
		m.counter(c.ep, c.status)
	}
	return m
}

// Status codes with a cached counter slot; others are counted through the
// vector directly.
const numStatusSlots = 15

func statusSlot(status int) int {
	switch status {
	case 200:
		return 0
	case 204:
		return 1
	case 400:
		return 2
	case 401:
		return 3
	case 403:
		return 4
	case 404:
		return 5
	case 405:
		return 6
	case 408:
		return 7
	case 413:
		return 8
	case 415:
		return 9
	case 422:
		return 10
	case 431:
		return 11
	case 500:
		return 12
	case 503:
		return 13
	case 429:
		return 14
	}
	return -1
}

func (m *metrics) counter(ep endpoint, status int) prometheus.Counter {
	slot := statusSlot(status)
	if slot < 0 || ep >= numEndpoints {
		return m.requests.WithLabelValues(ep.String(), strconv.Itoa(status))
	}
	p := &m.counters[ep][slot]
	if r := p.Load(); r != nil {
		return r.c
	}
	// Two goroutines may both resolve the same child; the vector returns
	// the same counter to both, so either store is correct.
	r := &counterRef{c: m.requests.WithLabelValues(ep.String(), strconv.Itoa(status))}
	p.Store(r)
	return r.c
}

func (m *metrics) countRequest(ep endpoint, status int) {
	m.counter(ep, status).Inc()
}

// handleMetrics serves the registry through promhttp, which owns content
// negotiation and compression, adapted to fasthttp by fasthttpadaptor.
// Scrapes are rare, so the adaptor's cost does not matter; it waits for
// the handler's goroutine before returning.
func (s *Server) handleMetrics(ctx *fasthttp.RequestCtx) {
	s.metrics.handler(ctx)
	noStore(ctx)
}

// promLogger routes promhttp's error reports into the server log.
type promLogger struct{ log zerolog.Logger }

func (l promLogger) Println(v ...any) {
	l.log.Warn().Str("source", "promhttp").Msg(fmt.Sprint(v...))
}

// engineCollector reads the engine's counters at scrape time, so the
// engine needs no Prometheus dependency of its own.
type engineCollector struct {
	d             Decider
	ruleErrors    *prometheus.Desc
	info          *prometheus.Desc
	loadedAt      *prometheus.Desc
	reloads       *prometheus.Desc
	failedReloads *prometheus.Desc
	truncated     *prometheus.Desc
	deadline      *prometheus.Desc
	exposures     *prometheus.Desc
	learnFailures *prometheus.Desc
}

func newEngineCollector(d Decider) *engineCollector {
	return &engineCollector{
		d: d,
		ruleErrors: prometheus.NewDesc("touchpoint_rule_errors_total",
			"Run-time expression failures per rule since the process started.", []string{"rule"}, nil),
		info: prometheus.NewDesc("touchpoint_ruleset_info",
			"The ruleset version being served (value is always 1).", []string{"version"}, nil),
		loadedAt: prometheus.NewDesc("touchpoint_ruleset_loaded_timestamp_seconds",
			"Unix time the serving ruleset was loaded.", nil, nil),
		reloads: prometheus.NewDesc("touchpoint_ruleset_reloads_total",
			"Successful ruleset reloads.", nil, nil),
		failedReloads: prometheus.NewDesc("touchpoint_ruleset_failed_reloads_total",
			"Ruleset reloads rejected because the new ruleset was invalid.", nil, nil),
		truncated: prometheus.NewDesc("touchpoint_feature_lists_truncated_total",
			"List values cut to their field's max_items, each time a decision reads them.", nil, nil),
		deadline: prometheus.NewDesc("touchpoint_rule_deadline_exceeded_total",
			"Decisions that reached rules.decide_deadline and skipped their remaining rules.", nil, nil),
		exposures: prometheus.NewDesc("touchpoint_experiment_exposures_flushed_total",
			"Experiment exposures this node counted and wrote to the store.", nil, nil),
		learnFailures: prometheus.NewDesc("touchpoint_learning_store_failures_total",
			"Failed store calls of the learning loop: flush (exposures, kept for the next try) or refresh (bandit posteriors, the last kept).", []string{"op"}, nil),
	}
}

func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.ruleErrors
	ch <- c.info
	ch <- c.loadedAt
	ch <- c.reloads
	ch <- c.failedReloads
	ch <- c.truncated
	ch <- c.deadline
	ch <- c.exposures
	ch <- c.learnFailures
}

func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	if c.d == nil {
		return
	}
	for _, re := range c.d.RuleErrors() {
		send(ch, c.ruleErrors, prometheus.CounterValue, float64(re.Count), re.Rule)
	}
	st := c.d.Status()
	if st.Version != "" {
		send(ch, c.info, prometheus.GaugeValue, 1, st.Version)
	}
	if !st.LoadedAt.IsZero() {
		send(ch, c.loadedAt, prometheus.GaugeValue,
			float64(st.LoadedAt.UnixNano())/1e9)
	}
	send(ch, c.reloads, prometheus.CounterValue, float64(st.Reloads))
	send(ch, c.failedReloads, prometheus.CounterValue, float64(st.FailedLoads))
	send(ch, c.truncated, prometheus.CounterValue, float64(st.ListsTruncated))
	send(ch, c.deadline, prometheus.CounterValue, float64(st.DeadlineExceeded))
	send(ch, c.exposures, prometheus.CounterValue, float64(st.ExposuresFlushed))
	send(ch, c.learnFailures, prometheus.CounterValue, float64(st.FlushFailures), "flush")
	send(ch, c.learnFailures, prometheus.CounterValue, float64(st.RefreshFailures), "refresh")
}

// FeatureCache is what /metrics reads of the feature cache;
// *features.Cache satisfies it.
type FeatureCache interface {
	Stats() features.CacheStats
	Usage() features.CacheUsage
}

// cacheCollector exposes the feature cache's hit and miss counters and
// what it holds, so operators can see how much of
// features.cache.max_bytes it uses.
type cacheCollector struct {
	cache   FeatureCache
	hits    *prometheus.Desc
	misses  *prometheus.Desc
	bytes   *prometheus.Desc
	entries *prometheus.Desc
}

func newCacheCollector(cache FeatureCache) *cacheCollector {
	return &cacheCollector{
		cache: cache,
		hits: prometheus.NewDesc("touchpoint_feature_cache_hits_total",
			"Feature lookups answered from the cache.", nil, nil),
		misses: prometheus.NewDesc("touchpoint_feature_cache_misses_total",
			"Feature lookups that went to the feature store.", nil, nil),
		bytes: prometheus.NewDesc("touchpoint_feature_cache_bytes",
			"Estimated heap of the cached customer records, bounded by features.cache.max_bytes.", nil, nil),
		entries: prometheus.NewDesc("touchpoint_feature_cache_entries",
			"Customer records in the feature cache, including customers remembered as unknown.", nil, nil),
	}
}

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.hits
	ch <- c.misses
	ch <- c.bytes
	ch <- c.entries
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	st, u := c.cache.Stats(), c.cache.Usage()
	send(ch, c.hits, prometheus.CounterValue, float64(st.Hits))
	send(ch, c.misses, prometheus.CounterValue, float64(st.Misses))
	send(ch, c.bytes, prometheus.GaugeValue, float64(u.Bytes))
	send(ch, c.entries, prometheus.GaugeValue, float64(u.Entries))
}

// send emits a constant metric, skipping one the client library rejects
// (say, a label value that is not UTF-8): a panic there would happen on a
// collector goroutine, out of reach of any recover.
func send(ch chan<- prometheus.Metric, desc *prometheus.Desc, typ prometheus.ValueType, v float64, labels ...string) {
	if m, err := prometheus.NewConstMetric(desc, typ, v, labels...); err == nil {
		ch <- m
	}
}

// storeCollector exposes the shared feature store's health.
type storeCollector struct {
	stats                                                      func() StoreStats
	up, calls, failures, rejected, breakerOpens, invalidations *prometheus.Desc
	badValues, resubscribes, dialFailures, panics              *prometheus.Desc
}

func newStoreCollector(stats func() StoreStats) *storeCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &storeCollector{
		stats:         stats,
		up:            d("touchpoint_store_up", "1 when the feature store answers, 0.5 when it is failing some calls, cannot open new connections or lost its invalidation subscription, 0 when a circuit breaker is open."),
		calls:         d("touchpoint_store_calls_total", "Calls made to the feature store."),
		failures:      d("touchpoint_store_failures_total", "Feature store calls that failed or timed out."),
		rejected:      d("touchpoint_store_rejected_total", "Calls not made because a circuit breaker was open."),
		breakerOpens:  d("touchpoint_store_breaker_opens_total", "Times a circuit breaker (read or write) opened."),
		invalidations: d("touchpoint_store_invalidations_total", "Cache invalidations received from other nodes."),
		badValues:     d("touchpoint_store_bad_values_total", "Stored values a lookup could not decode and skipped (written by something other than Touchpoint)."),
		resubscribes:  d("touchpoint_store_resubscribes_total", "Invalidation subscriptions re-established after a loss; each drops the whole cache."),
		dialFailures:  d("touchpoint_store_dial_failures_total", "New connections to the feature store that could not be made."),
		panics:        d("touchpoint_store_invalidation_panics_total", "Invalidation callbacks or receives that panicked and were recovered."),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.calls, c.failures, c.rejected, c.breakerOpens, c.invalidations,
		c.badValues, c.resubscribes, c.dialFailures, c.panics} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	up := 0.0
	switch st.State {
	case "up":
		up = 1
	case "degraded":
		up = 0.5
	}
	send(ch, c.up, prometheus.GaugeValue, up)
	for _, m := range []struct {
		desc *prometheus.Desc
		v    uint64
	}{
		{c.calls, st.Calls}, {c.failures, st.Failures}, {c.rejected, st.Rejected},
		{c.breakerOpens, st.BreakerOpens}, {c.invalidations, st.Invalidations},
		{c.badValues, st.BadValues}, {c.resubscribes, st.Resubscribes},
		{c.dialFailures, st.DialFailures}, {c.panics, st.Panics},
	} {
		send(ch, m.desc, prometheus.CounterValue, float64(m.v))
	}
}

// decisionLogCollector exposes the decision log's counters.
type decisionLogCollector struct {
	stats                          func() decisionlog.Stats
	written, errors                *prometheus.Desc
	dropped, sampledOut, queueSize *prometheus.Desc
}

func newDecisionLogCollector(stats func() decisionlog.Stats) *decisionLogCollector {
	return &decisionLogCollector{
		stats: stats,
		written: prometheus.NewDesc("touchpoint_decision_log_written_total",
			"Decision log lines written, by sink.", []string{"sink"}, nil),
		errors: prometheus.NewDesc("touchpoint_decision_log_errors_total",
			"Decision log writes that failed, by sink; their lines are lost to that sink.", []string{"sink"}, nil),
		dropped: prometheus.NewDesc("touchpoint_decision_log_dropped_total",
			"Decisions not logged because the decision log queue was full (decision_log.queue) or closed.", nil, nil),
		sampledOut: prometheus.NewDesc("touchpoint_decision_log_sampled_out_total",
			"Decisions left out of the decision log by sampling (decision_log.sample).", nil, nil),
		queueSize: prometheus.NewDesc("touchpoint_decision_log_queue_length",
			"Decisions waiting to be written to the decision log.", nil, nil),
	}
}

func (c *decisionLogCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.written, c.errors, c.dropped, c.sampledOut, c.queueSize} {
		ch <- d
	}
}

func (c *decisionLogCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	for _, s := range st.Sinks {
		send(ch, c.written, prometheus.CounterValue, float64(s.Written), s.Name)
		send(ch, c.errors, prometheus.CounterValue, float64(s.Errors), s.Name)
	}
	send(ch, c.dropped, prometheus.CounterValue, float64(st.Dropped))
	send(ch, c.sampledOut, prometheus.CounterValue, float64(st.SampledOut))
	send(ch, c.queueSize, prometheus.GaugeValue, float64(st.Queued))
}

// buildInfo is touchpoint_build_info: which build is running, as labels
// of a gauge that is always 1.
func buildInfo() prometheus.Collector {
	info := buildinfo.Read()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "touchpoint_build_info",
		Help: "The running build: module version, git commit and Go version (value is always 1).",
	}, []string{"version", "commit", "goversion"})
	g.WithLabelValues(info.Version, info.Commit, info.GoVersion).Set(1)
	return g
}
