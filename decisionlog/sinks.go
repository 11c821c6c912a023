package decisionlog

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"gopkg.in/natefinch/lumberjack.v2"
)

// batch is the lines one writer pass encoded: buf holds them back to back,
// each ending in '\n', and ends[i] is where line i ends.
type batch struct {
	buf  []byte
	ends []int
}

func (b *batch) reset() {
	b.buf = b.buf[:0]
	b.ends = b.ends[:0]
}

func (b *batch) len() int { return len(b.ends) }

// line returns line i without its newline.
func (b *batch) line(i int) []byte {
	start := 0
	if i > 0 {
		start = b.ends[i-1]
	}
	return b.buf[start : b.ends[i]-1]
}

// sink is where lines go. Its methods other than counts are called only
// by the writer goroutine.
type sink interface {
	name() string
	// write writes the batch, counting what it wrote and what failed;
	// ctx is cancelled when Close stops waiting.
	write(ctx context.Context, b *batch)
	close() error
	counts() (written, errors uint64)
}

// sinkCounters counts a sink's lines written and failed writes, and logs
// failures at most once per 10 s: a sink that is down fails every batch.
type sinkCounters struct {
	written, errors atomic.Uint64
	errLog          zerolog.Logger
}

func newSinkCounters(log zerolog.Logger, name string) sinkCounters {
	return sinkCounters{errLog: log.With().Str("sink", name).Logger().
		Sample(&zerolog.BurstSampler{Burst: 1, Period: 10 * time.Second})}
}

func (c *sinkCounters) counts() (uint64, uint64) { return c.written.Load(), c.errors.Load() }

func (c *sinkCounters) failed(err error, lines int) {
	c.errors.Add(1)
	c.errLog.Warn().Err(err).Int("lines_lost", lines).
		Msg("cannot write to the decision log sink (logged at most once per 10s)")
}

// fileSink appends lines to a local file rotated by lumberjack: by size
// there, and by age here, since lumberjack itself only deletes old files
// by age.
type fileSink struct {
	sinkCounters
	lj     *lumberjack.Logger
	every  time.Duration
	opened time.Time // first write into the current file
	now    func() time.Time
	chunk  int
}

// maxChunk bounds one write to the file. Writes end on line ends, so a
// rotation never splits a line between two files.
const maxChunk = 256 << 10

func newFileSink(c FileConfig, log zerolog.Logger) *fileSink {
	return &fileSink{
		sinkCounters: newSinkCounters(log, "file"),
		lj: &lumberjack.Logger{
			Filename:   c.Path,
			MaxSize:    c.MaxSizeMB,
			MaxAge:     int(c.MaxAge / day),
			MaxBackups: c.MaxBackups,
			Compress:   c.Compress,
			LocalTime:  false,
		},
		every: c.RotateEvery,
		now:   time.Now,
		chunk: min(maxChunk, c.MaxSizeMB<<20),
	}
}

func (f *fileSink) name() string { return "file" }

func (f *fileSink) write(_ context.Context, b *batch) {
	now := f.now()
	if f.opened.IsZero() {
		f.opened = now
	} else if f.every > 0 && now.Sub(f.opened) >= f.every {
		if err := f.lj.Rotate(); err != nil {
			f.failed(err, 0)
		}
		f.opened = now
	}
	// Lines [first, i) are gathered into the next write, which starts at
	// byte start.
	start, first := 0, 0
	for i, end := range b.ends {
		if end-start > f.chunk && i > first {
			f.flush(b.buf[start:b.ends[i-1]], i-first)
			start, first = b.ends[i-1], i
		}
	}
	if first < len(b.ends) {
		f.flush(b.buf[start:], len(b.ends)-first)
	}
}

func (f *fileSink) flush(p []byte, lines int) {
	if _, err := f.lj.Write(p); err != nil {
		f.failed(err, lines)
		return
	}
	f.written.Add(uint64(lines))
}

func (f *fileSink) close() error { return f.lj.Close() }

// StreamAppender adds entries to a Redis Stream. *redisstore.Store
// satisfies it, so the log shares the store's connections and settings.
type StreamAppender interface {
	// AppendStream adds one entry per value, as field=value, trimming the
	// stream to about maxLen entries (XADD key MAXLEN ~ maxLen * field
	// value), in as few round trips as it can.
	AppendStream(ctx context.Context, key string, maxLen int64, field string, values [][]byte) error
}

// StreamField is the field each stream entry holds its JSON line in.
const StreamField = "decision"

// streamSink adds each line as one entry of a Redis Stream, so that the
// nodes of a deployment feed one log.
type streamSink struct {
	sinkCounters
	cfg    StreamConfig
	to     StreamAppender
	values [][]byte
}

func newStreamSink(c StreamConfig, to StreamAppender, log zerolog.Logger) *streamSink {
	return &streamSink{sinkCounters: newSinkCounters(log, "redis_stream"), cfg: c, to: to}
}

func (s *streamSink) name() string { return "redis_stream" }

func (s *streamSink) write(ctx context.Context, b *batch) {
	s.values = s.values[:0]
	for i := range b.len() {
		s.values = append(s.values, b.line(i))
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if err := s.to.AppendStream(ctx, s.cfg.Key, s.cfg.MaxLen, StreamField, s.values); err != nil {
		s.failed(err, len(s.values))
		return
	}
	s.written.Add(uint64(len(s.values)))
}

// close leaves the connections to their owner, the Redis store.
func (s *streamSink) close() error { return nil }
