package loadtest

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Mode says how requests are paced.
type Mode string

const (
	// Open paces requests at a fixed rate whatever the target does, and
	// measures each latency from the request's scheduled send time.
	Open Mode = "open"
	// Closed runs a fixed number of workers that each send their next
	// request as soon as the previous one is answered. It finds maximum
	// throughput; its latencies are service times that hide queueing (a
	// stalled target simply receives fewer requests).
	Closed Mode = "closed"
)

// Label is the mode as every output names it, so a closed-loop run is never
// mistaken for an open-loop one.
func (m Mode) Label() string {
	if m == Closed {
		return "closed loop (max throughput; latencies are service times, not user-perceived)"
	}
	return "open loop (constant arrival rate; latency from scheduled send time)"
}

// Config is one load test run.
type Config struct {
	// URL is the target. A URL without a path (or with "/") gets the
	// traffic file's path, normally /v1/decide.
	URL string
	// Mode is Open or Closed.
	Mode Mode
	// Rates are the open-loop target rates in requests per second, one step
	// each; with FindMax the first is where the search starts.
	Rates []float64
	// Concurrency is the closed-loop worker count.
	Concurrency int
	// Duration is each step's length (each probe's, with FindMax). Zero
	// means the step ends after Requests.
	Duration time.Duration
	// Requests caps each step's request count. Zero means the step ends
	// after Duration. At least one of the two must be set.
	Requests int64
	// Connections caps open-loop connections (and workers): at most this
	// many requests are in flight; later ones wait, and their wait counts.
	Connections int
	// KeepAlive reuses connections; false opens one per request.
	KeepAlive bool
	// Timeout bounds one HTTP exchange, and how long a step waits for its
	// backlog after its schedule ends.
	Timeout time.Duration
	// Warmup runs the first rate (or the closed loop) this long before
	// measuring, to open connections and fill the target's caches.
	Warmup time.Duration
	// Pause separates steps so one step's backlog does not leak into the next.
	Pause time.Duration
	// FindMax searches for the highest open-loop rate that meets SLO.
	FindMax bool
	// MaxRate caps the FindMax search.
	MaxRate float64
	// SLO is checked for every step; with FindMax it defines success.
	SLO SLO
	// Preflight sends one unmeasured request per traffic view before the
	// run and refuses to start if any fails, so a wrong URL or traffic file
	// is one clear error instead of a run full of failures.
	Preflight bool
	// Traffic describes the requests; TrafficPath is recorded in the report.
	Traffic     *Traffic
	TrafficPath string
	// Customers is how many customer ids (c-000001 …) the Zipf draw covers.
	Customers int
	// Seed makes the request sequence reproducible.
	Seed uint64
	// RunID goes into every event id with the seed, so reruns with the
	// same seed send fresh ids instead of duplicates the server skips.
	// Empty means one made from the start time.
	RunID string
	// Progress receives a live progress line (carriage-return updated)
	// when non-nil.
	Progress io.Writer
}

// Limits enforced by Validate.
const (
	maxSteps       = 200
	maxConnections = 10000
	maxRate        = 10_000_000
)

// DefaultConfig is a one-step open-loop run at 1,000 requests per second
// over 64 keep-alive connections. Duration or Requests must still be set.
func DefaultConfig() Config {
	return Config{
		Mode:        Open,
		Rates:       []float64{1000},
		Connections: 64,
		KeepAlive:   true,
		Timeout:     2 * time.Second,
		Pause:       500 * time.Millisecond,
		MaxRate:     1_000_000,
		Preflight:   true,
		Customers:   1_000_000,
		Seed:        1,
	}
}

// Validate reports every setting that cannot work, joined into one error.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.URL == "" {
		bad("a target URL is required, e.g. http://127.0.0.1:8080")
	} else if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("target %q is not an http:// or https:// URL with a host", c.URL)
	}
	if c.Duration <= 0 && c.Requests <= 0 {
		bad("set --duration or --requests; a load test that never ends measures nothing")
	}
	if c.Duration < 0 {
		bad("--duration must not be negative, got %s", c.Duration)
	}
	if c.Requests < 0 {
		bad("--requests must not be negative, got %d", c.Requests)
	}
	switch c.Mode {
	case Open:
		if len(c.Rates) == 0 {
			bad("open loop needs at least one --rate")
		}
		if len(c.Rates) > maxSteps {
			bad("%d rate steps is more than the %d allowed", len(c.Rates), maxSteps)
		}
		for _, r := range c.Rates {
			if !(r > 0) || r > maxRate {
				bad("rate %g is out of range (0, %d]", r, maxRate)
				break
			}
		}
		if c.Connections < 1 || c.Connections > maxConnections {
			bad("--connections must be between 1 and %d, got %d", maxConnections, c.Connections)
		}
	case Closed:
		if c.Concurrency < 1 || c.Concurrency > maxConnections {
			bad("--concurrency must be between 1 and %d, got %d", maxConnections, c.Concurrency)
		}
		if c.FindMax {
			bad("--find-max searches open-loop rates; it cannot be combined with --concurrency")
		}
	default:
		bad("mode must be %q or %q, got %q", Open, Closed, c.Mode)
	}
	if c.FindMax {
		if len(c.SLO.Terms) == 0 {
			bad("--find-max needs an --slo to hold, e.g. --slo p99=1ms")
		}
		if len(c.Rates) > 1 {
			bad("--find-max takes one starting --rate, not steps")
		}
		if !(c.MaxRate > 0) || c.MaxRate > maxRate {
			bad("--max-rate must be in (0, %d], got %g", maxRate, c.MaxRate)
		}
	}
	if c.Timeout <= 0 {
		bad("--timeout must be positive, got %s", c.Timeout)
	}
	if c.Warmup < 0 || c.Pause < 0 {
		bad("--warmup and the pause between steps must not be negative")
	}
	if c.Customers < 1 {
		bad("--customers must be at least 1, got %d", c.Customers)
	}
	if c.Traffic == nil {
		bad("a traffic description is required")
	}
	if err := checkRunID(c.RunID); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ParseRates reads --rate: one rate ("20000", "20k"), a comma list
// ("1000,5000,20000") or a FROM:TO:STEP range ("5000:40000:5000", TO
// included).
func ParseRates(s string) ([]float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty --rate; want RATE, R1,R2,… or FROM:TO:STEP, e.g. 5000:40000:5000")
	}
	if strings.Contains(s, ":") {
		parts := strings.Split(s, ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("--rate %q: a range is FROM:TO:STEP, e.g. 5000:40000:5000", s)
		}
		var v [3]float64
		for i, p := range parts {
			r, err := parseRate(p)
			if err != nil {
				return nil, fmt.Errorf("--rate %q: %w", s, err)
			}
			v[i] = r
		}
		from, to, step := v[0], v[1], v[2]
		if to < from {
			return nil, fmt.Errorf("--rate %q: TO (%g) is below FROM (%g)", s, to, from)
		}
		n := math.Floor((to-from)/step+1e-9) + 1
		if n > maxSteps {
			return nil, fmt.Errorf("--rate %q: %g steps is more than the %d allowed", s, n, maxSteps)
		}
		rates := make([]float64, 0, int(n))
		for i := 0; i < int(n); i++ {
			rates = append(rates, from+float64(i)*step)
		}
		return rates, nil
	}
	var rates []float64
	for _, p := range strings.Split(s, ",") {
		r, err := parseRate(p)
		if err != nil {
			return nil, fmt.Errorf("--rate %q: %w", s, err)
		}
		rates = append(rates, r)
	}
	if len(rates) > maxSteps {
		return nil, fmt.Errorf("--rate %q: %d steps is more than the %d allowed", s, len(rates), maxSteps)
	}
	return rates, nil
}

// parseRate reads one positive rate, with an optional k (thousands) suffix.
func parseRate(p string) (float64, error) {
	p = strings.TrimSpace(p)
	mult := 1.0
	if strings.HasSuffix(p, "k") || strings.HasSuffix(p, "K") {
		mult, p = 1000, p[:len(p)-1]
	}
	v, err := strconv.ParseFloat(p, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a number of requests per second", p)
	}
	v *= mult
	if v <= 0 || v > maxRate {
		return 0, fmt.Errorf("rate %g is out of range (0, %d]", v, maxRate)
	}
	return v, nil
}

// SLO is a set of latency limits and an error budget, e.g.
// "p99=1ms,p99.9=5ms,errors=0.1%".
type SLO struct {
	Terms []SLOTerm
	// MaxErrorRatio is the share of failed requests allowed (0.001 = 0.1%).
	MaxErrorRatio float64
	// MinAchieved is the share of the target rate a step must reach
	// (open loop), so a generator or target that falls behind fails.
	MinAchieved float64
}

// SLOTerm is one latency limit: Percentile (0 < p ≤ 100; 100 is max).
type SLOTerm struct {
	Percentile float64
	Limit      time.Duration
}

// Default error budget and rate tolerance when --slo does not say.
const (
	defaultMaxErrorRatio = 0.001
	defaultMinAchieved   = 0.97
)

// ParseSLO reads --slo: comma-separated pNN=DURATION terms ("p99=1ms",
// "p99.9=5ms", "max=50ms") and optionally errors=PERCENT ("errors=0.5%").
func ParseSLO(s string) (SLO, error) {
	slo := SLO{MaxErrorRatio: defaultMaxErrorRatio, MinAchieved: defaultMinAchieved}
	if strings.TrimSpace(s) == "" {
		return SLO{}, nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return SLO{}, fmt.Errorf("--slo %q: term %q is not NAME=VALUE, e.g. p99=1ms", s, part)
		}
		name, val = strings.TrimSpace(name), strings.TrimSpace(val)
		if name == "errors" {
			pct := strings.TrimSuffix(val, "%")
			v, err := strconv.ParseFloat(pct, 64)
			if err != nil || !strings.HasSuffix(val, "%") || v < 0 || v > 100 {
				return SLO{}, fmt.Errorf("--slo %q: errors=%s must be a percentage such as errors=0.1%%", s, val)
			}
			slo.MaxErrorRatio = v / 100
			continue
		}
		var p float64
		switch {
		case name == "max":
			p = 100
		case strings.HasPrefix(name, "p"):
			v, err := strconv.ParseFloat(name[1:], 64)
			if err != nil || !(v > 0 && v <= 100) {
				return SLO{}, fmt.Errorf("--slo %q: %q is not a percentile; use p50, p99, p99.9 … or max", s, name)
			}
			p = v
		default:
			return SLO{}, fmt.Errorf("--slo %q: unknown term %q; use pNN=DURATION, max=DURATION or errors=PERCENT", s, name)
		}
		d, err := time.ParseDuration(val)
		if err != nil || d <= 0 {
			return SLO{}, fmt.Errorf("--slo %q: %s=%s needs a positive duration such as 1ms or 500us", s, name, val)
		}
		slo.Terms = append(slo.Terms, SLOTerm{Percentile: p, Limit: d})
	}
	return slo, nil
}

// String renders the SLO in the form ParseSLO reads.
func (s SLO) String() string {
	if len(s.Terms) == 0 {
		return ""
	}
	parts := make([]string, 0, len(s.Terms)+1)
	for _, t := range s.Terms {
		parts = append(parts, percentileName(t.Percentile)+"="+t.Limit.String())
	}
	parts = append(parts, "errors="+strconv.FormatFloat(s.MaxErrorRatio*100, 'g', -1, 64)+"%")
	return strings.Join(parts, ",")
}

// percentileName renders 99.9 as "p99.9" and 100 as "max".
func percentileName(p float64) string {
	if p >= 100 {
		return "max"
	}
	return "p" + strconv.FormatFloat(p, 'f', -1, 64)
}
