package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// FormatVersion names the JSON report format. Fields are only ever added
// under this version; a change in meaning gets a new version.
const FormatVersion = "touchpoint-loadtest/1"

// Report is everything a run measured; it is what --out writes and what
// compare and the HTML report read. Latencies are in microseconds.
type Report struct {
	// Format is FormatVersion.
	Format string `json:"format"`
	// StartedAt and FinishedAt are wall-clock UTC times of the run.
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	// Interrupted is true when the run was stopped before it finished.
	Interrupted bool     `json:"interrupted"`
	Settings    Settings `json:"settings"`
	// Steps are in the order they ran (find-max probes in search order).
	Steps   []Step   `json:"steps"`
	FindMax *FindMax `json:"find_max,omitempty"`
	// Warnings are what the preflight found questionable about the run's
	// settings against this target (they do not stop it).
	Warnings []string `json:"warnings,omitempty"`
}

// Settings records how the run was configured.
type Settings struct {
	// URL is the full request URL.
	URL string `json:"url"`
	// Mode is "open" or "closed"; ModeLabel says what that means.
	Mode      Mode   `json:"mode"`
	ModeLabel string `json:"mode_label"`
	// Rates are the open-loop step rates (req/s); the start rate with find-max.
	Rates []float64 `json:"rates,omitempty"`
	// Concurrency is the closed-loop worker count.
	Concurrency int `json:"concurrency,omitempty"`
	// DurationMS and Requests bound each step (0 = not set).
	DurationMS int64 `json:"duration_ms"`
	Requests   int64 `json:"requests"`
	// Connections caps requests in flight (the workers in a closed loop).
	Connections int   `json:"connections"`
	KeepAlive   bool  `json:"keepalive"`
	TimeoutMS   int64 `json:"timeout_ms"`
	WarmupMS    int64 `json:"warmup_ms"`
	// Customers, Seed, Traffic, TrafficDigest and the event share define
	// the requests: the same values send the same request sequence.
	Customers     int    `json:"customers"`
	Seed          uint64 `json:"seed"`
	Traffic       string `json:"traffic"`
	TrafficDigest string `json:"traffic_digest"`
	Views         int    `json:"views"`
	// Events describes the feedback mixed into the traffic; absent when
	// every request is a decide.
	Events *EventSettings `json:"events,omitempty"`
	// SLO is the objective in --slo form, with the error budget spelled out.
	SLO     string  `json:"slo,omitempty"`
	FindMax bool    `json:"find_max"`
	MaxRate float64 `json:"max_rate,omitempty"`
	// CPUs is the generator's GOMAXPROCS.
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
}

// EventSettings records how event batches were mixed into the traffic.
type EventSettings struct {
	// URL is where the batches went.
	URL string `json:"url"`
	// Share is the fraction of requests that were event batches.
	Share float64 `json:"share"`
	// Batch is the events per request; Touchpoints how many ids the
	// feedback events name.
	Batch       int `json:"batch"`
	Touchpoints int `json:"touchpoints"`
	// Track names the behavioural events and TrackShare is their share
	// of all events; absent when every event is feedback.
	Track      []string `json:"track,omitempty"`
	TrackShare float64  `json:"track_share,omitempty"`
	// IDPrefix starts every event id of the run (the seed and a run id),
	// so the run's events can be told apart in the store.
	IDPrefix string `json:"id_prefix"`
}

// Step is one constant-rate step, one find-max probe or the closed-loop run.
type Step struct {
	// Index counts from 1; Kind is "step" or "probe".
	Index int    `json:"index"`
	Kind  string `json:"kind"`
	Mode  Mode   `json:"mode"`
	// TargetRate is the open-loop rate (req/s); 0 in a closed loop, which
	// has Concurrency workers instead.
	TargetRate  float64 `json:"target_rate"`
	Concurrency int     `json:"concurrency,omitempty"`
	// ElapsedMS runs from the step's first scheduled send to its last answer.
	ElapsedMS int64 `json:"elapsed_ms"`
	// Planned requests were scheduled (open loop); Sent were attempted
	// (written, or failed while connecting or writing).
	Planned int64 `json:"planned"`
	Sent    int64 `json:"sent"`
	OK      int64 `json:"ok"`
	// AchievedRate is answers of any status per second of ElapsedMS;
	// OKRate counts 2xx answers only.
	AchievedRate float64 `json:"achieved_rate"`
	OKRate       float64 `json:"ok_rate"`
	Errors       Errors  `json:"errors"`
	// Latency covers every answer (any status) and every timeout (at the
	// moment it was given up); connection errors have no latency.
	Latency Latency `json:"latency_us"`
	// LatencyOK covers the 2xx answers alone: what the requests a server
	// accepted experienced, when it refused others (503 under overload).
	LatencyOK Latency         `json:"latency_ok_us"`
	Spectrum  []SpectrumPoint `json:"spectrum"`
	// Histogram is the full latency distribution in microseconds, in
	// HdrHistogram's compressed V2 base64 form.
	Histogram string `json:"histogram"`
	// SchedulerLag is how late the generator's own timer woke (open loop).
	// It is part of the latencies; large values mean the generator, not
	// the target, delayed requests.
	SchedulerLag *Latency `json:"scheduler_lag_us,omitempty"`
	// GeneratorCPU is the process's CPU seconds per second of the step.
	GeneratorCPU float64    `json:"generator_cpu"`
	SLO          *SLOResult `json:"slo,omitempty"`
	Interrupted  bool       `json:"interrupted,omitempty"`
	Seconds      []Second   `json:"seconds"`
	// ByKind splits the step into decides and event batches. Both kinds
	// share the schedule, the connections and the latency accounting
	// above, which covers them together; each kind's figures add up to the
	// step's.
	ByKind *ByKind `json:"by_kind,omitempty"`

	hist *hdrhistogram.Histogram
}

// ByKind holds each request kind's share of a step; Events is absent when
// the traffic has no events.
type ByKind struct {
	Decide *KindStats `json:"decide,omitempty"`
	Events *KindStats `json:"events,omitempty"`
}

// KindStats is one kind of request within a step, counted as the step is.
type KindStats struct {
	Planned      int64   `json:"planned"`
	Sent         int64   `json:"sent"`
	OK           int64   `json:"ok"`
	AchievedRate float64 `json:"achieved_rate"`
	OKRate       float64 `json:"ok_rate"`
	Errors       Errors  `json:"errors"`
	Latency      Latency `json:"latency_us"`
	// Feedback adds up the event batches' answers (events kind only).
	Feedback *Feedback `json:"feedback,omitempty"`
	// UnknownCustomers counts 2xx decide answers with
	// "known_customer": false (decide kind only): anonymous visitors, and
	// ids past the customers the target holds.
	UnknownCustomers int64 `json:"unknown_customers"`
}

// Feedback counts the events in a step's batches. Accepted minus
// Duplicates is what the server counted (its events-applied metric).
type Feedback struct {
	// Events were carried by the batches sent.
	Events int64 `json:"events"`
	// Accepted and Duplicates add up the 2xx answers' own figures;
	// duplicates are event ids the server had already counted.
	Accepted   int64 `json:"accepted"`
	Duplicates int64 `json:"duplicates"`
}

// Errors counts failed requests by kind.
type Errors struct {
	Total int64 `json:"total"`
	// Status counts non-2xx answers by status code.
	Status     map[string]int64 `json:"status"`
	Timeout    int64            `json:"timeout"`
	Connection int64            `json:"connection"`
	// Unsent requests were scheduled but never written: the target (or
	// the generator) fell so far behind that they were still waiting when
	// the step ended plus --timeout, or the run was interrupted.
	Unsent int64 `json:"unsent"`
	Other  int64 `json:"other"`
	// Samples holds the first error message seen per kind.
	Samples map[string]string `json:"samples,omitempty"`
}

// Latency summarises a distribution in microseconds.
type Latency struct {
	Count int64   `json:"count"`
	Min   int64   `json:"min"`
	Mean  float64 `json:"mean"`
	P50   int64   `json:"p50"`
	P90   int64   `json:"p90"`
	P99   int64   `json:"p99"`
	P999  int64   `json:"p99_9"`
	P9999 int64   `json:"p99_99"`
	Max   int64   `json:"max"`
}

// SpectrumPoint is one point of the percentile spectrum.
type SpectrumPoint struct {
	Percentile float64 `json:"percentile"`
	US         int64   `json:"us"`
}

// Second is one second of a step, by completion time: requests sent in it,
// answers and errors that completed in it, and their latency percentiles
// (zero when nothing completed).
type Second struct {
	T      int   `json:"t"`
	Sent   int64 `json:"sent"`
	OK     int64 `json:"ok"`
	Errors int64 `json:"errors"`
	P50    int64 `json:"p50_us"`
	P90    int64 `json:"p90_us"`
	P99    int64 `json:"p99_us"`
	Max    int64 `json:"max_us"`
}

// SLOResult says whether a step met the SLO, and if not, why.
type SLOResult struct {
	Pass     bool     `json:"pass"`
	Failures []string `json:"failures,omitempty"`
}

// FindMax is the outcome of --find-max.
type FindMax struct {
	SLO string `json:"slo"`
	// MaxRate is the highest probed rate that met the SLO; 0 if none did.
	MaxRate float64 `json:"max_rate"`
	Found   bool    `json:"found"`
	// Capped is true when the search stopped at --max-rate still passing.
	Capped bool `json:"capped"`
	Probes int  `json:"probes"`
}

// summarize reads a histogram's percentiles.
func summarize(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	v := h.ValueAtPercentilesSlice([]float64{50, 90, 99, 99.9, 99.99})
	return Latency{
		Count: h.TotalCount(), Min: h.Min(), Mean: float64(int64(h.Mean()*10)) / 10,
		P50: v[0], P90: v[1], P99: v[2], P999: v[3], P9999: v[4], Max: h.Max(),
	}
}

// spectrum samples the percentile spectrum the way HdrHistogram plots do:
// ever finer steps towards the tail, five per halving of the remainder.
func spectrum(h *hdrhistogram.Histogram) []SpectrumPoint {
	if h.TotalCount() == 0 {
		return nil
	}
	var pts []SpectrumPoint
	for _, b := range h.CumulativeDistributionWithTicks(5) {
		if n := len(pts); n > 0 && pts[n-1].Percentile == b.Quantile {
			pts[n-1].US = b.ValueAt
			continue
		}
		pts = append(pts, SpectrumPoint{Percentile: b.Quantile, US: b.ValueAt})
	}
	return pts
}

// WriteJSON writes the report, indented for people who open it.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReadReport reads a JSON report written by WriteJSON.
func ReadReport(path string) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s is not a load test report: %w", path, err)
	}
	if r.Format != FormatVersion {
		return nil, fmt.Errorf("%s: format %q is not %q", path, r.Format, FormatVersion)
	}
	for i := range r.Steps {
		if r.Steps[i].Histogram == "" {
			continue
		}
		h, err := hdrhistogram.Decode([]byte(r.Steps[i].Histogram))
		if err != nil {
			return nil, fmt.Errorf("%s: step %d: bad histogram: %w", path, r.Steps[i].Index, err)
		}
		r.Steps[i].hist = h
	}
	return &r, nil
}
