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
	// Live figures for the progress line, read without the lock.
	liveDone, liveOK, liveErr atomic.Int64
	liveP99                   atomic.Int64
}

func newRecorder(start time.Duration) *recorder {
	return &recorder{start: start, lat: newHist(), sec: newHist(), status: map[int]int64{}, lastSec: -1}
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
// body is read only for the first non-2xx answer of each status, as a sample.
func (r *recorder) record(start, sent, done time.Duration, status int, body []byte, err error) {
	kind := classify(err)
	lat := toUS(done - start)
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
	if done > r.lastDone {
		r.lastDone = done
	}
	failed := true
	switch kind {
	case kindNone:
		r.answered++
		r.lat.RecordValue(lat)
		r.sec.RecordValue(lat)
		if status >= 200 && status < 300 {
			r.ok++
			r.curOK++
			failed = false
		} else {
			if _, seen := r.status[status]; !seen {
				r.sample(strconv.Itoa(status), truncate(string(body), 300))
			}
			r.status[status]++
		}
	case kindTimeout:
		// A timed-out request is recorded at the moment it was given up:
		// a lower bound, but leaving it out would hide exactly the stalls
		// a load test exists to find.
		r.lat.RecordValue(lat)
		r.sec.RecordValue(lat)
		fallthrough
	default:
		// Only the first error of a kind is formatted, so an error storm
		// does not build a string per request.
		if r.byKind[kind] == 0 {
			r.sample(kind.String(), err.Error())
		}
		r.byKind[kind]++
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

// sample keeps the first message of each kind. The caller holds mu.
func (r *recorder) sample(kind, msg string) {
	if _, ok := r.samples[kind]; ok || msg == "" {
		return
	}
	if r.samples == nil {
		r.samples = map[string]string{}
	}
	r.samples[kind] = msg
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
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

// truncate shortens s to at most n bytes for display.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
