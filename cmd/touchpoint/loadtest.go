package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/touchpoint-dev/touchpoint/loadtest"
)

const loadtestUsage = `Usage: touchpoint loadtest [flags] URL
       touchpoint loadtest compare [--threshold 5%] A.json B.json
       touchpoint loadtest baseline [--addr 127.0.0.1:8090] [--work 10us]

Sends decide requests to URL (e.g. http://127.0.0.1:8080; a URL without a
path gets the traffic file's, /v1/decide) and reports latency percentiles,
throughput and errors. When the traffic file has an events section, that
share of the requests are event batches (feedback, and behavioural track
events when the file weighs them) posted to the same host's events path
(/v1/events), measured on the same schedule and reported on their own as
well; --event-share changes the share, 0 sends decides only.

Open loop (the default): requests leave at a constant --rate whatever the
target does, and latency is measured from each request's scheduled send
time, so a stalling target shows in the percentiles. Closed loop
(--concurrency N): N workers send as fast as answers come back, for maximum
throughput; its latencies hide queueing and every output says so.

  touchpoint loadtest --rate 20000 --duration 30s http://127.0.0.1:8080
  touchpoint loadtest --rate 5000:40000:5000 --duration 20s --out run.json --html run.html URL
  touchpoint loadtest --find-max --slo p99=1ms --duration 5s URL
  touchpoint loadtest --concurrency 32 --duration 30s URL

--duration or --requests is required. Ctrl-C stops early and still reports
what was measured (exit 130). With --slo and no --find-max, a step that
misses the SLO makes the exit status 1.

Flags:
`

func loadtestCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "compare" {
		return loadtestCompare(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "baseline" {
		return loadtestBaseline(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "bodies" {
		return loadtestBodies(args[1:], stdout, stderr)
	}
	def := loadtest.DefaultConfig()
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rate := fs.String("rate", "1000", "open-loop requests per second: RATE, R1,R2,… or FROM:TO:STEP (one step per rate); the start rate with --find-max")
	duration := fs.Duration("duration", 0, "length of each step (each probe with --find-max), e.g. 30s")
	requests := fs.Int64("requests", 0, "requests per step; with --duration, whichever comes first")
	concurrency := fs.Int("concurrency", 0, "closed loop: N workers sending as fast as answers come back (max throughput; not user-perceived latency)")
	findMax := fs.Bool("find-max", false, "search for the highest rate that meets --slo (exponential ramp, then bisection)")
	slo := fs.String("slo", "", "latency and error objective, e.g. p99=1ms,p99.9=5ms,errors=0.5%; the error budget is 0.1% unless given")
	maxRate := fs.String("max-rate", "1000000", "highest rate --find-max tries")
	connections := fs.Int("connections", def.Connections, "open loop: most connections (and requests in flight); later requests wait and their wait counts")
	keepalive := fs.Bool("keepalive", def.KeepAlive, "reuse connections; --keepalive=false opens one per request")
	timeout := fs.Duration("timeout", def.Timeout, "give up on one exchange after this long (counted as a timeout)")
	warmup := fs.Duration("warmup", 0, "run the first rate this long, unmeasured, before measuring")
	customers := fs.Int("customers", def.Customers, "customer ids c-000001… to draw from (Zipf); the demo store has 3000")
	traffic := fs.String("traffic", "configs/loadtest/traffic.yaml", "traffic file: weighted views, placements and contexts")
	seed := fs.Uint64("seed", def.Seed, "random seed; the same seed sends the same requests")
	eventShare := fs.Float64("event-share", 0, "fraction of requests sent as event batches, overriding the traffic file's events.share (0 sends decides only)")
	cpus := fs.Int("cpus", 0, "CPUs the generator may use (GOMAXPROCS); 0 = all")
	out := fs.String("out", "", "write the JSON report to this file")
	html := fs.String("html", "", "write the self-contained HTML report to this file")
	progress := fs.Bool("progress", false, "show the live progress line even when stderr is not a terminal")
	preflight := fs.Bool("preflight", def.Preflight, "send one unmeasured request per traffic view (and one event batch) first and stop if any fails")
	fs.Usage = func() {
		fmt.Fprint(stderr, loadtestUsage)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, flagsFirst(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		if fs.NArg() == 0 {
			return errors.New("loadtest needs a target URL, e.g. touchpoint loadtest --rate 1000 --duration 10s http://127.0.0.1:8080")
		}
		return fmt.Errorf("loadtest takes one URL, got %d arguments: %s", fs.NArg(), strings.Join(fs.Args(), " "))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	cfg := def
	cfg.URL = fs.Arg(0)
	cfg.Duration, cfg.Requests = *duration, *requests
	if cfg.Duration <= 0 && cfg.Requests <= 0 {
		return errors.New("set --duration or --requests; a load test that never ends measures nothing")
	}
	if *concurrency > 0 {
		if set["rate"] {
			return errors.New("choose --rate (open loop) or --concurrency (closed loop), not both")
		}
		cfg.Mode, cfg.Concurrency, cfg.Rates = loadtest.Closed, *concurrency, nil
	} else if set["concurrency"] {
		return fmt.Errorf("--concurrency must be at least 1, got %d", *concurrency)
	} else {
		rates, err := loadtest.ParseRates(*rate)
		if err != nil {
			return err
		}
		cfg.Rates = rates
	}
	mr, err := loadtest.ParseRates(*maxRate)
	if err != nil || len(mr) != 1 {
		return fmt.Errorf("--max-rate %q is not one rate", *maxRate)
	}
	cfg.MaxRate = mr[0]
	if cfg.SLO, err = loadtest.ParseSLO(*slo); err != nil {
		return err
	}
	cfg.FindMax = *findMax
	cfg.Connections, cfg.KeepAlive, cfg.Timeout, cfg.Warmup = *connections, *keepalive, *timeout, *warmup
	cfg.Customers, cfg.Seed, cfg.Preflight = *customers, *seed, *preflight
	cfg.TrafficPath = *traffic
	if err := checkPaths(pathSetting{"--traffic", *traffic}); err != nil {
		return err
	}
	if cfg.Traffic, err = loadtest.LoadTraffic(*traffic); err != nil {
		return err
	}
	if set["event-share"] {
		if cfg.Traffic, err = cfg.Traffic.WithEventShare(*eventShare); err != nil {
			return fmt.Errorf("--event-share: %w", err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return errors.New(strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	if *cpus < 0 {
		return fmt.Errorf("--cpus must not be negative, got %d", *cpus)
	}
	if *cpus > 0 {
		prev := runtime.GOMAXPROCS(*cpus)
		defer runtime.GOMAXPROCS(prev)
	}
	if *progress || isTerminal(stderr) {
		cfg.Progress = stderr
	}

	rep, err := runInterruptible(stderr, func(ctx context.Context) (*loadtest.Report, error) {
		return loadtest.Run(ctx, cfg)
	})
	if err != nil {
		return err
	}
	if err := loadtest.WriteTable(stdout, rep); err != nil {
		return fmt.Errorf("cannot write the summary: %w", err)
	}
	if *out != "" {
		if err := writeFile(*out, rep.WriteJSON); err != nil {
			return fmt.Errorf("cannot write --out: %w", err)
		}
	}
	if *html != "" {
		if err := writeFile(*html, func(w io.Writer) error { return loadtest.WriteHTML(w, rep) }); err != nil {
			return fmt.Errorf("cannot write --html: %w", err)
		}
	}
	if rep.Interrupted {
		return exitError{130}
	}
	if !cfg.FindMax && len(cfg.SLO.Terms) > 0 {
		for _, st := range rep.Steps {
			if st.SLO != nil && !st.SLO.Pass {
				return exitError{1}
			}
		}
	}
	return nil
}

func loadtestCompare(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadtest compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	threshold := fs.String("threshold", "5%", "changes within ± this are reported as the same (noise)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: touchpoint loadtest compare [--threshold 5%] A.json B.json\n\nCompares two --out reports step by step: each percentile and the throughput,\nfrom A (before) to B (after), with a verdict: better, worse or same within\nthe threshold.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, flagsFirst(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return errors.New("compare needs two reports: touchpoint loadtest compare A.json B.json")
	}
	pct := strings.TrimSuffix(strings.TrimSpace(*threshold), "%")
	t, err := strconv.ParseFloat(pct, 64)
	if err != nil || t < 0 || t >= 100 {
		return fmt.Errorf("--threshold %q must be a percentage such as 5%%", *threshold)
	}
	a, err := loadtest.ReadReport(fs.Arg(0))
	if err != nil {
		return err
	}
	b, err := loadtest.ReadReport(fs.Arg(1))
	if err != nil {
		return err
	}
	return loadtest.Compare(stdout, a, b, fs.Arg(0), fs.Arg(1), t/100)
}

// runInterruptible runs a load test that the first SIGINT or SIGTERM stops
// early (it still reports what was measured); after that signal the default
// handling is back, so a second Ctrl-C quits at once. The signal watcher
// has finished, and printed all it will, when runInterruptible returns.
func runInterruptible(stderr io.Writer, run func(ctx context.Context) (*loadtest.Report, error)) (*loadtest.Report, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	runDone := make(chan struct{})
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		select {
		case <-sigs:
			signal.Stop(sigs)
			fmt.Fprintln(stderr, "\rinterrupted: finishing in-flight requests and reporting (Ctrl-C again to quit)")
			cancel()
		case <-runDone:
		}
	}()
	rep, err := run(ctx)
	close(runDone)
	<-watcherDone
	return rep, err
}

// flagsFirst moves flags written after the positional arguments to the
// front, so "loadtest URL --rate 5000" works as people type it.
func flagsFirst(fs *flag.FlagSet, args []string) []string {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			rest = append(rest, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue // let the flag package report it
		}
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	return append(flags, rest...)
}

// writeFile writes through a temporary file so a failed write never leaves
// half a report behind.
func writeFile(path string, write func(io.Writer) error) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// isTerminal reports whether w is a character device (a terminal), where
// a carriage-return progress line makes sense.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// loadtestBodies writes the decide bodies a run would send, one per line,
// so that another load generator (wrk in benchmarks/peer.sh) can send the
// same traffic.
func loadtestBodies(args []string, stdout, stderr io.Writer) error {
	def := loadtest.DefaultConfig()
	fs := flag.NewFlagSet("loadtest bodies", flag.ContinueOnError)
	fs.SetOutput(stderr)
	count := fs.Int("count", 10000, "bodies to write")
	customers := fs.Int("customers", def.Customers, "customer ids c-000001… to draw from (Zipf)")
	traffic := fs.String("traffic", "configs/loadtest/traffic.yaml", "traffic file: weighted views, placements and contexts")
	seed := fs.Uint64("seed", def.Seed, "random seed; the same seed writes the same bodies")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: touchpoint loadtest bodies [flags] > bodies.jsonl\n\nWrites the decide request bodies a load test would send, one JSON object\nper line, for replaying the same traffic with another generator\n(benchmarks/wrk/decide.lua).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *count < 1 || *customers < 1 {
		return errors.New("--count and --customers must be at least 1")
	}
	t, err := loadtest.LoadTraffic(*traffic)
	if err != nil {
		return err
	}
	src := loadtest.NewGenerator(t, *customers, *seed).NewSource()
	w := bufio.NewWriter(stdout)
	var body []byte
	for n := range uint64(*count) {
		body, _ = src.Decide(body[:0], n)
		w.Write(body)
		w.WriteByte('\n')
	}
	return w.Flush()
}

// loadtestBaseline serves the bare fasthttp peer that decide servers are
// compared with (see benchmarks/peer.sh).
func loadtestBaseline(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadtest baseline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8090", "listen address")
	work := fs.Duration("work", 0, "CPU time to burn on every request before answering (calibration: what a handler doing this much work reaches)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: touchpoint loadtest baseline [--addr ADDR] [--work DURATION]\n\nServes a bare fasthttp handler that reads the body and answers a fixed\ndecision-sized JSON: the peer to compare a decide server with, on the same\nmachine with the same load generator. With --work it first keeps the CPU\nbusy that long on every request, which shows how much work of its own a\nserver can do and still hold a given share of the bare handler's\nthroughput. Stops on SIGINT or SIGTERM.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *work < 0 || *work > time.Second {
		return fmt.Errorf("--work must be between 0 and 1s, got %v", *work)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", *addr, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stdout, "baseline serving on %s\n", ln.Addr())
	return loadtest.ServeBaseline(ctx, ln, *work)
}
