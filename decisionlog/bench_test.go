package decisionlog

import "testing"

// BenchmarkDecisionLog measures what the request path pays to log a
// decision (two placements, four candidates, four context values): Log
// copying it into a warm queue entry. The writer is held in its sink, and
// the benchmark takes the entries back off the queue itself, outside the
// timer, so encoding and I/O, which run on the writer goroutine, are not
// counted.
func BenchmarkDecisionLog(b *testing.B) {
	mem := gatedSink()
	defer close(mem.gate)
	cfg := testConfig()
	cfg.Queue = 2048
	l, err := New(cfg, Options{sinks: []sink{mem}})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	holdWriter(b, l, mem)
	req, d := sampleDecision()
	drain := func() {
		for len(l.queue) > 0 {
			l.release(<-l.queue)
		}
	}
	// Warm every entry the loop will use.
	for range 1024 {
		l.Log(req, d, sampleTime)
	}
	drain()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if !l.Log(req, d, sampleTime) {
			b.Fatal("Log refused")
		}
		if n++; n == 1024 {
			b.StopTimer()
			drain()
			n = 0
			b.StartTimer()
		}
	}
}

// BenchmarkSample is the per-decision cost of sampling a share below 1.
func BenchmarkSample(b *testing.B) {
	cfg := testConfig()
	cfg.Sample = 0.1
	l, err := New(cfg, Options{sinks: []sink{newMemSink()}})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.ReportAllocs()
	for b.Loop() {
		l.Sample()
	}
}

// BenchmarkWriter is the writer goroutine's cost per line: encoding and
// handing the batch to a sink that keeps nothing.
func BenchmarkWriter(b *testing.B) {
	l := &Logger{enc: newEncoder("node-a", nil)}
	req, d := sampleDecision()
	var e entry
	e.fill(req, d, sampleTime)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = l.enc.appendLine(buf[:0], &e)
	}
	b.SetBytes(int64(len(buf)))
}
