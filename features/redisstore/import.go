package redisstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync/atomic"
	"time"

	"github.com/touchpoint-dev/touchpoint/features"
)

// maxLineBytes bounds one customer line, as the embedded store's loader does.
const maxLineBytes = 16 << 20

// errAfterFailure marks a batch not written because an earlier one failed.
var errAfterFailure = errors.New("not written: an earlier batch failed")

// ImportOptions configures Import. The zero value imports everything with
// the defaults.
type ImportOptions struct {
	// Name stands for the input in errors ("customers.jsonl:12: …").
	Name string
	// Skip is the number of lines already imported: ImportStats.Committed of
	// an earlier, interrupted run.
	Skip int
	// BatchSize is the number of customers per pipeline (default 1000).
	BatchSize int
	// Pipelines is the number of pipelines in flight (default 4).
	Pipelines int
	// Timeout bounds one pipeline (default 30s).
	Timeout time.Duration
	// Merge merges each line's features into the stored ones. By default a
	// line replaces the customer's features, so features dropped from the
	// file disappear; counters and consent are kept either way.
	Merge bool
	// Progress, if not nil, is called after each batch is committed, on the
	// goroutine that called Import.
	Progress func(ImportStats)
}

// ImportStats reports an import's progress.
type ImportStats struct {
	// Lines is the number of lines read, skipped ones included.
	Lines int
	// Customers is the number of customers written by this run.
	Customers int
	// Committed is the line number up to which every line is in Redis: the
	// Skip that resumes an interrupted import.
	Committed int
	Elapsed   time.Duration
}

func (o ImportOptions) withDefaults() ImportOptions {
	if o.Name == "" {
		o.Name = "input"
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.Pipelines <= 0 {
		o.Pipelines = 4
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	return o
}

// importBatch is a run of lines written in one pipeline.
type importBatch struct {
	seq   int
	last  int      // the last line number the batch covers, blank lines included
	lines []int    // line numbers of the records
	data  [][]byte // the records, slices of buf
	buf   []byte
}

type importResult struct {
	seq       int
	last      int
	customers int
	err       error
}

// Import writes customers from JSON Lines in the format features.OpenJSONL
// reads, one record per line, blank lines skipped. Lines are parsed with
// features.RecordParser and written in pipelined batches, several in flight.
// A line replaces the customer's features (DEL and HSET, back to back in the
// pipeline), or merges into them (see Merge); counters and consent are kept.
// A bad line stops the import with an error naming Name:line. The returned
// stats say how far the import got: pass Committed as Skip to resume.
//
// When done, Import publishes one invalidation telling every node to drop
// its whole cache. That also covers a lookup that ran between a customer's
// DEL and HSET and saw no features: whatever it cached is dropped.
//
// Import bypasses the circuit breaker: it is an operator's bulk load, and
// reports the first error rather than degrading. Reads of r are not
// interrupted: after an error or cancellation Import returns once the
// current read does.
func (s *Store) Import(ctx context.Context, r io.Reader, opts ImportOptions) (ImportStats, error) {
	opts = opts.withDefaults()
	stats := ImportStats{Committed: max(opts.Skip, 0)}
	if opts.Skip < 0 {
		return stats, fmt.Errorf("cannot import customers: skip must not be negative, got %d", opts.Skip)
	}
	start := time.Now()
	// A bad batch stops the reading, and the writing of batches after it,
	// but not the writing of batches before it: they were good, and
	// Committed can only cover them if they finish.
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	var failedSeq atomic.Int64 // the lowest seq of a failed batch
	failedSeq.Store(math.MaxInt64)

	work := make(chan importBatch, opts.Pipelines)
	results := make(chan importResult, opts.Pipelines)
	var readErr error
	var linesRead int
	// The reader and the workers are owned by this call: closing work ends
	// the workers, and results is closed once they have all returned.
	go func() {
		defer close(work)
		linesRead, readErr = s.readBatches(readCtx, r, opts, work)
	}()
	done := make(chan struct{})
	for range opts.Pipelines {
		go func() {
			defer func() { done <- struct{}{} }()
			var parser features.RecordParser
			for b := range work {
				if int64(b.seq) > failedSeq.Load() {
					results <- importResult{seq: b.seq, last: b.last, err: errAfterFailure}
					continue
				}
				results <- s.writeBatch(ctx, &parser, b, opts)
			}
		}()
	}
	go func() {
		for range opts.Pipelines {
			<-done
		}
		close(results)
	}()

	// Batches finish out of order; Committed only advances over an unbroken
	// run of finished batches, and the error reported is that of the first
	// batch that failed in input order.
	var firstErr error
	firstErrSeq := math.MaxInt
	pending := make(map[int]importResult)
	next, blocked := 0, false
	for res := range results {
		if res.err != nil && res.err != errAfterFailure && res.seq < firstErrSeq {
			firstErr, firstErrSeq = res.err, res.seq
			for cur := failedSeq.Load(); int64(res.seq) < cur && !failedSeq.CompareAndSwap(cur, int64(res.seq)); cur = failedSeq.Load() {
			}
			stopReading()
			if s.importFailed != nil {
				s.importFailed(res.seq)
			}
		}
		pending[res.seq] = res
		for !blocked {
			r, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			if r.err != nil {
				blocked = true
				break
			}
			stats.Committed = r.last
			stats.Customers += r.customers
			if opts.Progress != nil {
				stats.Lines = max(stats.Lines, r.last)
				stats.Elapsed = time.Since(start)
				opts.Progress(stats)
			}
		}
	}
	stats.Lines = max(linesRead, stats.Committed)
	stats.Elapsed = time.Since(start)
	switch {
	case firstErr != nil && !errors.Is(firstErr, context.Canceled):
		return stats, firstErr
	case readErr != nil:
		return stats, readErr
	case ctx.Err() != nil:
		return stats, fmt.Errorf("cannot import customers: %w", context.Cause(ctx))
	case firstErr != nil:
		return stats, firstErr
	}
	if stats.Customers > 0 {
		pctx, pcancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
		err := s.client.Publish(pctx, s.cfg.InvalidationChannel, "").Err()
		pcancel()
		if err != nil {
			return stats, fmt.Errorf("customers imported, but cannot tell the nodes to drop their caches: %w", err)
		}
	}
	return stats, nil
}

// readBatches reads r into batches of record lines and sends them on work
// until the input ends or ctx is cancelled. It returns the number of lines
// read.
func (s *Store) readBatches(ctx context.Context, r io.Reader, opts ImportOptions, work chan<- importBatch) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLineBytes)
	line, seq := 0, 0
	b := importBatch{}
	send := func() bool {
		b.seq, b.last = seq, line
		seq++
		select {
		case work <- b:
			b = importBatch{}
			return true
		case <-ctx.Done():
			return false
		}
	}
	for sc.Scan() {
		line++
		if line <= opts.Skip {
			continue
		}
		data := sc.Bytes()
		if line == 1 {
			data = features.TrimBOM(data)
		}
		if features.IsBlankLine(data) {
			continue
		}
		start := len(b.buf)
		b.buf = append(b.buf, data...)
		b.lines = append(b.lines, line)
		b.data = append(b.data, b.buf[start:len(b.buf):len(b.buf)])
		if len(b.lines) == opts.BatchSize && !send() {
			return line, nil
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("line is longer than %d MiB", maxLineBytes>>20)
			return line, fmt.Errorf("cannot import customers: %w", &features.LoadError{Path: opts.Name, Line: line + 1, Err: err})
		}
		return line, fmt.Errorf("cannot import customers from %s: %w", opts.Name, err)
	}
	if line > opts.Skip {
		send() // the rest, possibly only blank lines, so Committed reaches the end
	}
	return line, nil
}

// writeBatch parses a batch and writes it in one pipeline.
func (s *Store) writeBatch(ctx context.Context, parser *features.RecordParser, b importBatch, opts ImportOptions) importResult {
	res := importResult{seq: b.seq, last: b.last}
	if err := ctx.Err(); err != nil {
		res.err = err
		return res
	}
	pipe := s.client.Pipeline()
	buf := make([]byte, 0, len(b.buf))
	var pairs []any
	customers := 0
	for i, data := range b.data {
		rec, err := parser.Parse(data)
		if err == nil {
			pairs, buf, err = appendPairs(pairs[:0], buf, rec.Values.All())
		}
		if err != nil {
			res.err = fmt.Errorf("cannot import customers: %w", &features.LoadError{Path: opts.Name, Line: b.lines[i], Err: err})
			return res
		}
		key := keysFor(rec.ID).features()
		if !opts.Merge {
			pipe.Del(ctx, key)
		}
		if len(pairs) > 0 {
			pipe.HSet(ctx, key, pairs...)
		}
		customers++
	}
	if pipe.Len() > 0 {
		wctx, cancel := context.WithTimeout(ctx, opts.Timeout)
		_, err := pipe.Exec(wctx)
		cancel()
		if err != nil {
			res.err = fmt.Errorf("cannot import customers from %s lines %d-%d: %w", opts.Name, b.lines[0], b.last, err)
			return res
		}
	}
	res.customers = customers
	return res
}
