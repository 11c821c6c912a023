package decisionlog

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/touchpoint-dev/touchpoint/engine"
)

// maxBatch bounds how many lines the writer gathers before it writes: a
// batch is one file write and one Redis round trip.
const maxBatch = 256

// Options carries a Logger's collaborators.
type Options struct {
	// Logger receives sink failures (rate-limited) and the shutdown report.
	Logger zerolog.Logger
	// HashKey keys the customer id hash; see Config.HashKey. It must be set
	// when Config.HashCustomerIDs is.
	HashKey []byte
	// Stream writes the redis_stream sink; it must be set when
	// Config.RedisStream.Key is. *redisstore.Store satisfies it.
	Stream StreamAppender

	// sinks replaces the configured sinks; tests set it.
	sinks []sink
}

// Logger is the decision log. Create it with New, feed it with Sample and
// Log from any goroutine, and Close it once nothing decides any more.
type Logger struct {
	cfg  Config
	log  zerolog.Logger
	node string

	// all is set when every decision is logged; otherwise a decision is
	// kept when the hash of its sequence number is below threshold.
	all       bool
	threshold uint64
	seq       atomic.Uint64

	// Entries cycle between free (a stack, so that a queue that never
	// fills keeps reusing the same few warm entries) and queue. At most
	// cfg.Queue entries ever exist, so a send to queue never blocks.
	mu    sync.Mutex
	free  []*entry
	made  int
	queue chan *entry

	closed   atomic.Bool
	stop     chan struct{}
	done     chan struct{}
	ctx      context.Context // cancelled when Close gives up waiting
	cancel   context.CancelFunc
	closing  sync.Once
	closeErr error

	enc   *encoder
	batch batch
	sinks []sink

	dropped, sampledOut atomic.Uint64
}

// New starts a Logger and its writer goroutine, opening the configured
// sinks. cfg must pass Validate and be enabled.
func New(cfg Config, opts Options) (*Logger, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Enabled {
		return nil, errors.New("decision_log is not enabled")
	}
	if cfg.HashCustomerIDs && len(opts.HashKey) < minHashKey {
		return nil, fmt.Errorf("decision_log.hash_customer_ids needs a key of at least %d bytes", minHashKey)
	}
	node := cfg.Node
	if node == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "unknown"
		}
		node = h
	}
	l := &Logger{
		cfg:   cfg,
		log:   opts.Logger.With().Str("component", "decision_log").Logger(),
		node:  node,
		queue: make(chan *entry, cfg.Queue),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	l.all, l.threshold = threshold(cfg.Sample)
	var key []byte
	if cfg.HashCustomerIDs {
		key = opts.HashKey
	}
	l.enc = newEncoder(node, key)
	l.ctx, l.cancel = context.WithCancel(context.Background())

	l.sinks = opts.sinks
	if l.sinks == nil {
		if cfg.File.Path != "" {
			l.sinks = append(l.sinks, newFileSink(cfg.File, l.log))
		}
		if cfg.RedisStream.Key != "" {
			if opts.Stream == nil {
				return nil, errors.New("decision_log.redis_stream needs the redis section's url")
			}
			l.sinks = append(l.sinks, newStreamSink(cfg.RedisStream, opts.Stream, l.log))
		}
	}
	go l.run()
	return l, nil
}

// threshold turns a sampling share into a bound on 64-bit hashes.
func threshold(sample float64) (all bool, t uint64) {
	v := sample * (1 << 64)
	if sample >= 1 || v >= math.MaxUint64 {
		return true, 0
	}
	return false, uint64(v)
}

// Sample says whether the next decision is logged, counting it as sampled
// out if not. Call it before deciding, and ask the engine for
// Decision.Logged (Request.Log) only when it is true, so that decisions
// left out cost nothing more.
//
// Sampling is decided before a decision exists, so it cannot read the
// decision id; it hashes the logger's own decision count instead
// (SplitMix64) and keeps the decision when the hash falls below sample ×
// 2⁶⁴. That is one atomic add and a few multiplications, the share is
// exact to within sampling noise, the choice does not depend on the
// customer, the request or what is decided (so the logged decisions are an
// unbiased sample of the traffic), and it is deterministic: the n-th
// decision a logger is asked about is kept or not whatever it is.
func (l *Logger) Sample() bool {
	if l.all {
		return true
	}
	if splitmix64(l.seq.Add(1)) < l.threshold {
		return true
	}
	l.sampledOut.Add(1)
	return false
}

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Log queues d, decided for req at now, for writing. It copies what the
// line needs, so req and d may be reused as soon as it returns. It never
// waits: when the queue is full, or the logger is closed, the decision is
// dropped, counted, and Log returns false. d.Logged must have been filled
// (Request.Log) for the candidates to be recorded.
func (l *Logger) Log(req *engine.Request, d *engine.Decision, now time.Time) bool {
	if l.closed.Load() {
		l.dropped.Add(1)
		return false
	}
	e := l.acquire()
	if e == nil {
		l.dropped.Add(1)
		return false
	}
	e.fill(req, d, now)
	l.queue <- e
	return true
}

// acquire takes a free entry, making one while fewer than cfg.Queue
// exist; nil means the queue is full.
func (l *Logger) acquire() *entry {
	l.mu.Lock()
	if n := len(l.free); n > 0 {
		e := l.free[n-1]
		l.free = l.free[:n-1]
		l.mu.Unlock()
		return e
	}
	if l.made >= l.cfg.Queue {
		l.mu.Unlock()
		return nil
	}
	l.made++
	l.mu.Unlock()
	return new(entry)
}

func (l *Logger) release(e *entry) {
	e.forget()
	l.mu.Lock()
	if e.oversized() {
		// Forget it; acquire makes a small one in its place.
		l.made--
	} else {
		l.free = append(l.free, e)
	}
	l.mu.Unlock()
}

// run is the writer goroutine, owned by the Logger: it ends when Close
// asks it to, after writing what is queued.
//
// An idle writer waits on the queue, so the first decision after a pause
// is written at once; after each batch it sleeps for gatherFor before it
// looks again. While it sleeps, a decision only enqueues: waking the
// writer for every decision cost the request path more than the logging
// itself (about 2 µs a decide on two cores), and writing one line per
// system call cost the writer more than encoding it.
func (l *Logger) run() {
	defer close(l.done)
	gather := time.NewTimer(time.Hour)
	gather.Stop()
	defer gather.Stop()
	for {
		select {
		case e := <-l.queue:
			l.writeBatch(e)
			l.writeQueued()
			gather.Reset(gatherFor)
			select {
			case <-gather.C:
				continue
			case <-l.stop:
			}
		case <-l.stop:
		}
		l.finish()
		return
	}
}

// gatherFor is how long the writer lets decisions gather after a batch:
// short enough that a log follows traffic within a blink, long enough
// that a busy node writes hundreds of lines a call.
const gatherFor = 10 * time.Millisecond

// writeQueued writes what is queued now, in batches.
func (l *Logger) writeQueued() {
	for l.ctx.Err() == nil {
		select {
		case e := <-l.queue:
			l.writeBatch(e)
		default:
			return
		}
	}
}

// finish writes what is queued (until Close's timeout cancels the
// context), counts the rest as dropped and closes the sinks.
func (l *Logger) finish() {
	l.writeQueued()
	for {
		select {
		case e := <-l.queue:
			l.release(e)
			l.dropped.Add(1)
			continue
		default:
		}
		break
	}
	for _, s := range l.sinks {
		if err := s.close(); err != nil {
			l.log.Warn().Err(err).Str("sink", s.name()).Msg("cannot close the decision log sink")
		}
	}
}

// writeBatch encodes first and whatever else is queued, up to maxBatch
// lines, and hands them to every sink.
func (l *Logger) writeBatch(first *entry) {
	if l.ctx.Err() != nil {
		// Close gave up waiting: drop rather than write.
		l.release(first)
		l.dropped.Add(1)
		return
	}
	b := &l.batch
	b.reset()
	e := first
	for {
		b.buf = l.enc.appendLine(b.buf, e)
		b.ends = append(b.ends, len(b.buf))
		l.release(e)
		if len(b.ends) >= maxBatch {
			break
		}
		select {
		case e = <-l.queue:
			continue
		default:
		}
		break
	}
	for _, s := range l.sinks {
		s.write(l.ctx, b)
	}
	if cap(b.buf) > 4*maxBatch*1024 {
		// One batch of huge lines should not pin its buffer for ever.
		b.buf = nil
	}
}

// Close stops taking decisions, waits up to close_timeout for the queued
// ones to be written, and closes the sinks. Decisions still queued then
// are dropped and counted. It returns an error if the timeout passed.
// Closing twice is harmless.
func (l *Logger) Close() error {
	l.closing.Do(func() {
		l.closed.Store(true)
		close(l.stop)
		t := time.NewTimer(l.cfg.CloseTimeout)
		defer t.Stop()
		select {
		case <-l.done:
		case <-t.C:
			l.closeErr = fmt.Errorf("decision log: the queue did not drain within %s; the rest was dropped", l.cfg.CloseTimeout)
			// Abandon sink calls in flight and what is left; the writer
			// then only closes the sinks.
			l.cancel()
			<-l.done
		}
		l.cancel()
		st := l.Stats()
		l.log.Info().Uint64("dropped", st.Dropped).Uint64("sampled_out", st.SampledOut).Msg("decision log closed")
	})
	return l.closeErr
}

// Stats are the logger's counters since New.
type Stats struct {
	// Dropped counts decisions not logged because the queue was full or
	// the logger closed; SampledOut, decisions Sample left out.
	Dropped, SampledOut uint64
	// Queued is how many decisions wait for the writer now.
	Queued int
	Sinks  []SinkStats
}

// SinkStats counts one sink's lines written and failed writes.
type SinkStats struct {
	Name            string
	Written, Errors uint64
}

// Stats reads the counters; it is safe to call from any goroutine.
func (l *Logger) Stats() Stats {
	st := Stats{Dropped: l.dropped.Load(), SampledOut: l.sampledOut.Load(), Queued: len(l.queue)}
	for _, s := range l.sinks {
		w, e := s.counts()
		st.Sinks = append(st.Sinks, SinkStats{Name: s.name(), Written: w, Errors: e})
	}
	return st
}
