package loadtest

import (
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/valyala/fasthttp"
)

// Histogram range: 1 µs to 60 s at three significant digits. Longer
// latencies are recorded as 60 s.
const (
	histMinUS  = 1
	histMaxUS  = 60_000_000
	histDigits = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMinUS, histMaxUS, histDigits) }

// toUS converts to whole microseconds (rounded), clamped to the histogram.
func toUS(d time.Duration) int64 {
	us := (int64(d) + 500) / 1000
	if us < 0 {
		return 0
	}
	if us > histMaxUS {
		return histMaxUS
	}
	return us
}

// errKind classifies a failed exchange.
type errKind uint8

const (
	kindNone errKind = iota
	kindTimeout
	kindConnection
	kindOther
)

func (k errKind) String() string {
	switch k {
	case kindTimeout:
		return "timeout"
	case kindConnection:
		return "connection"
	case kindOther:
		return "other"
	}
	return ""
}

func classify(err error) errKind {
	if err == nil {
		return kindNone
	}
	var te interface{ Timeout() bool }
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) || (errors.As(err, &te) && te.Timeout()) {
		return kindTimeout
	}
	var op *net.OpError
	if errors.As(err, &op) || errors.Is(err, fasthttp.ErrConnectionClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, fasthttp.ErrNoFreeConns) {
		return kindConnection
	}
	return kindOther
}

// recorder collects one step's outcomes. Workers call record under a
// mutex: the critical section is a few counter updates and two histogram
// increments, cheaper than handing results to a collector goroutine, and
// uncontended when the generator runs on one core.
type recorder struct {
	start time.Duration // step start on the run clock

	mu       sync.Mutex
	lat      *hdrhistogram.Histogram
	latOK    *hdrhistogram.Histogram // 2xx answers only
	sec      *hdrhistogram.Histogram // the second being filled
	cur      int
	curOK    int64
	curErr   int64
	seconds  []Second
	sent     []int64 // per second, by send time
	ok       int64
	answered int64
	status   map[int]int64
	byKind   [4]int64
	samples  map[string]string
	lastDone time.Duration
	// Stragglers before foldUntil count in second lastSec (see setWindow).
	foldUntil time.Duration
	lastSec   int

	unsent atomic.Int64
	// kinds splits everything above by request kind; withEvents says the
	// step's report shows the events kind even if none was drawn.
	kinds      [numKinds]tally
	withEvents bool
	// Live figures for the progress line, read without the lock.
	liveDone, liveOK, liveErr atomic.Int64
	liveP99                   atomic.Int64
}

// tally is one request kind's share of a step. Its fields other than
// unsent are guarded by the recorder's mutex.
type tally struct {
	lat                  *hdrhistogram.Histogram
	sent, ok, answered   int64
	status               map[int]int64
	byErr                [4]int64
	samples              map[string]string
	accepted, duplicates int64
	items                int64
	unknownCustomers     int64
	unsent               atomic.Int64
}

func newRecorder(start time.Duration) *recorder {
	r := &recorder{start: start, lat: newHist(), latOK: newHist(), sec: newHist(), status: map[int]int64{}, lastSec: -1}
	for i := range r.kinds {
		r.kinds[i].lat = newHist()
		r.kinds[i].status = map[int]int64{}
	}
	return r
}

// outcome is what one exchange produced.
type outcome struct {
	kind   RequestKind
	status int
	// body is read only for the first non-2xx answer of each status.
	body []byte
	err  error
	// items is how many events the request carried; accepted and
	// duplicates are what a 2xx events answer said.
	items, accepted, duplicates int64
	// unknownCustomer is set for a 2xx decide answer saying the target
	// does not know the customer.
	unknownCustomer bool
}

// addUnsent counts n requests of kind k that were never written.
func (r *recorder) addUnsent(k RequestKind, n int64) {
	r.unsent.Add(n)
	r.kinds[k].unsent.Add(n)
}

// foldGrace is how long after a step's window its stragglers still count
// in the window's last second.
const foldGrace = 100 * time.Millisecond

// setWindow tells the recorder when the step's sending window ends. The
// few answers that complete just after it are counted in the window's last
// second instead of opening a near-empty extra second, which would read
// as a collapse in throughput at the end of every step.
func (r *recorder) setWindow(end time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.foldUntil = end + foldGrace
	// A window that overshoots a whole second by rounding (a millisecond at
	// most) still ends in that second.
	r.lastSec = max(0, int((end-r.start-time.Millisecond+time.Second-1)/time.Second)-1)
}

// second is the per-second bucket for an instant on the run clock.
func (r *recorder) second(t time.Duration) int {
	s := int((t - r.start) / time.Second)
	if s < 0 {
		return 0
	}
	if r.lastSec >= 0 && s > r.lastSec && t < r.foldUntil {
		return r.lastSec
	}
	return s
}

// record files one exchange. start is when the request should have been
// sent (open loop) or was sent (closed loop); latency runs from there.
func (r *recorder) record(start, sent, done time.Duration, o outcome) {
	kind, status, err := classify(o.err), o.status, o.err
	lat := toUS(done - start)
	k := &r.kinds[o.kind]
	r.liveDone.Add(1)
	r.mu.Lock()
	if s := r.second(done); s > r.cur {
		r.rollTo(s)
	}
	si := r.second(sent)
	for len(r.sent) <= si {
		r.sent = append(r.sent, 0)
	}
	r.sent[si]++
	k.sent++
	k.items += o.items
	if done > r.lastDone {
		r.lastDone = done
	}
	failed := true
	switch kind {
	case kindNone:
		r.answered++
		k.answered++
		r.lat.RecordValue(lat)
		r.sec.RecordValue(lat)
		k.lat.RecordValue(lat)
		if status >= 200 && status < 300 {
			r.latOK.RecordValue(lat)
			r.ok++
			r.curOK++
			k.ok++
			k.accepted += o.accepted
			k.duplicates += o.duplicates
			if o.unknownCustomer {
				k.unknownCustomers++
			}
			failed = false
		} else {
			if _, seen := r.status[status]; !seen {
				r.samples = sample(r.samples, strconv.Itoa(status), truncate(string(o.body), 300))
			}
			if _, seen := k.status[status]; !seen {
				k.samples = sample(k.samples, strconv.Itoa(status), truncate(string(o.body), 300))
			}
			r.status[status]++
			k.status[status]++
		}
	case kindTimeout:
		// A timed-out request is recorded at the moment it was given up:
		// a lower bound, but leaving it out would hide exactly the stalls
		// a load test exists to find.
		r.lat.RecordValue(lat)
		r.sec.RecordValue(lat)
		k.lat.RecordValue(lat)
		fallthrough
	default:
		// Only the first error of a kind is formatted, so an error storm
		// does not build a string per request.
		if r.byKind[kind] == 0 {
			r.samples = sample(r.samples, kind.String(), err.Error())
		}
		if k.byErr[kind] == 0 {
			k.samples = sample(k.samples, kind.String(), err.Error())
		}
		r.byKind[kind]++
		k.byErr[kind]++
	}
	if failed {
		r.curErr++
	}
	r.mu.Unlock()
	if failed {
		r.liveErr.Add(1)
	} else {
		r.liveOK.Add(1)
	}
}

// sample keeps the first message of each kind in samples, which it
// returns (made on first use). The caller holds mu.
func sample(samples map[string]string, kind, msg string) map[string]string {
	if _, ok := samples[kind]; ok || msg == "" {
		return samples
	}
	if samples == nil {
		samples = map[string]string{}
	}
	samples[kind] = msg
	return samples
}

// rollTo closes the current second (and any empty ones) up to second s.
func (r *recorder) rollTo(s int) {
	for r.cur < s {
		sec := Second{T: r.cur, OK: r.curOK, Errors: r.curErr}
		if r.sec.TotalCount() > 0 {
			v := r.sec.ValueAtPercentilesSlice([]float64{50, 90, 99})
			sec.P50, sec.P90, sec.P99, sec.Max = v[0], v[1], v[2], r.sec.Max()
			r.liveP99.Store(sec.P99)
		}
		r.seconds = append(r.seconds, sec)
		r.sec.Reset()
		r.curOK, r.curErr = 0, 0
		r.cur++
	}
}

// finish closes the last second and fills in the step's counts. The step
// lasts at least until end (its schedule's end in the open loop).
func (r *recorder) finish(st *Step, end time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.answered > 0 || r.curErr > 0 || len(r.seconds) > 0 || r.sec.TotalCount() > 0 {
		r.rollTo(r.cur + 1)
	}
	for i := range r.seconds {
		if i < len(r.sent) {
			r.seconds[i].Sent = r.sent[i]
		}
	}
	for i := len(r.seconds); i < len(r.sent); i++ {
		// Requests sent in a second whose answers all came later.
		r.seconds = append(r.seconds, Second{T: i, Sent: r.sent[i]})
	}
	var sent int64
	for _, n := range r.sent {
		sent += n
	}
	st.Sent = sent
	st.OK = r.ok
	st.Seconds = r.seconds
	st.hist = r.lat
	st.Latency = summarize(r.lat)
	st.LatencyOK = summarize(r.latOK)
	st.Spectrum = spectrum(r.lat)
	if enc, err := r.lat.Encode(hdrhistogram.V2CompressedEncodingCookieBase); err == nil {
		st.Histogram = string(enc)
	}
	e := Errors{Status: map[string]int64{}, Timeout: r.byKind[kindTimeout], Connection: r.byKind[kindConnection],
		Other: r.byKind[kindOther], Unsent: r.unsent.Load(), Samples: r.samples}
	for code, n := range r.status {
		e.Status[strconv.Itoa(code)] = n
		e.Total += n
	}
	e.Total += e.Timeout + e.Connection + e.Other + e.Unsent
	st.Errors = e
	elapsed := max(r.lastDone, end) - r.start
	st.ElapsedMS = elapsed.Milliseconds()
	if elapsed > 0 {
		secs := elapsed.Seconds()
		st.AchievedRate = round1(float64(r.answered) / secs)
		st.OKRate = round1(float64(r.ok) / secs)
	}
	st.ByKind = &ByKind{Decide: r.kinds[DecideRequest].stats(elapsed, false)}
	if ev := &r.kinds[EventsRequest]; r.withEvents || ev.sent > 0 || ev.unsent.Load() > 0 {
		st.ByKind.Events = ev.stats(elapsed, true)
	}
}

// stats summarises one kind the way finish does the step: planned is what
// was sent plus what never was. The caller holds mu.
func (k *tally) stats(elapsed time.Duration, events bool) *KindStats {
	e := Errors{Status: map[string]int64{}, Timeout: k.byErr[kindTimeout], Connection: k.byErr[kindConnection],
		Other: k.byErr[kindOther], Unsent: k.unsent.Load(), Samples: k.samples}
	for code, n := range k.status {
		e.Status[strconv.Itoa(code)] = n
		e.Total += n
	}
	e.Total += e.Timeout + e.Connection + e.Other + e.Unsent
	ks := &KindStats{Planned: k.sent + e.Unsent, Sent: k.sent, OK: k.ok, Errors: e, Latency: summarize(k.lat)}
	if elapsed > 0 {
		ks.AchievedRate = round1(float64(k.answered) / elapsed.Seconds())
		ks.OKRate = round1(float64(k.ok) / elapsed.Seconds())
	}
	if events {
		ks.Feedback = &Feedback{Events: k.items, Accepted: k.accepted, Duplicates: k.duplicates}
	} else {
		ks.UnknownCustomers = k.unknownCustomers
	}
	return ks
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

// truncate shortens s to at most n bytes for display.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
