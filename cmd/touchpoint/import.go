package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/touchpoint-dev/touchpoint/features/redisstore"
)

const importUsage = `Usage: touchpoint features import [--redis URL] [--merge] [--checkpoint FILE] FILE.jsonl

Writes customers from a JSON Lines file ({"id": "c-000001", "features": {…}}
per line, as touchpoint demo-data writes) into Redis, in pipelined batches.
Each line replaces that customer's features unless --merge is given;
counters and consent are kept. The import is resumable: the number of lines
committed is kept in the checkpoint file, and a later run with the same
checkpoint continues after them. The file is removed when the import ends.

Flags:
`

func featuresCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "import" {
		if len(args) > 0 && isHelp(args[0]) {
			return featuresCommand([]string{"import", "--help"}, stdout, stderr)
		}
		return errors.New(`unknown features command; use "touchpoint features import FILE.jsonl --redis URL"`)
	}
	fs := flag.NewFlagSet("features import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	redisURL := fs.String("redis", "redis://127.0.0.1:6379/0", "Redis URL")
	merge := fs.Bool("merge", false, "merge each line's features into the stored ones instead of replacing them")
	checkpoint := fs.String("checkpoint", "", "checkpoint file (default FILE.jsonl.checkpoint)")
	progress := fs.Bool("progress", false, "show the progress line even when stderr is not a terminal")
	fs.Usage = func() {
		fmt.Fprint(stderr, importUsage)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, interleaved(args[1:])); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitError{2}
	}
	path := fs.Arg(0)
	if *checkpoint == "" {
		*checkpoint = path + ".checkpoint"
	}
	cfg := redisstore.DefaultConfig()
	cfg.URL = *redisURL
	cfg.Password = os.Getenv(redisPasswordEnv)
	if err := cfg.Validate(); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot import customers: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cannot import customers: %w", err)
	}
	skip, err := readCheckpoint(*checkpoint)
	if err != nil {
		return err
	}
	store, err := redisstore.Open(cfg)
	if err != nil {
		return fmt.Errorf("cannot open Redis store: %w", err)
	}
	defer store.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if skip > 0 {
		fmt.Fprintf(stderr, "resuming %s after line %d (from %s)\n", path, skip, *checkpoint)
	}
	counted := &countingReader{r: f}
	bar := newProgressBar(stderr, info.Size(), *progress || isTerminal(stderr))
	stats, err := store.Import(ctx, bufio.NewReaderSize(counted, 1<<20), redisstore.ImportOptions{
		Name: path, Skip: skip, Merge: *merge,
		Progress: func(st redisstore.ImportStats) {
			// Keep the checkpoint current so an interrupted import resumes
			// where it stopped.
			_ = writeCheckpoint(*checkpoint, st.Committed)
			bar.update(counted.n, st.Customers)
		},
	})
	bar.last = time.Time{} // draw the final state
	bar.update(counted.n, stats.Customers)
	bar.done()
	if err != nil {
		_ = writeCheckpoint(*checkpoint, stats.Committed)
		return fmt.Errorf("import stopped after line %d (run again to resume): %w", stats.Committed, err)
	}
	_ = os.Remove(*checkpoint)
	rate := float64(stats.Customers) / max(stats.Elapsed.Seconds(), 1e-9)
	fmt.Fprintf(stdout, "imported %d customers from %s in %s (%.0f customers/s)\n", stats.Customers, path, stats.Elapsed.Round(time.Millisecond), rate)
	return nil
}

func readCheckpoint(path string) (int, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cannot read checkpoint: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("checkpoint %s does not hold a line number; delete it to start over", path)
	}
	return n, nil
}

func writeCheckpoint(path string, line int) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(line)+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// progressBar draws one line, rewritten in place, at most ten times a second.
type progressBar struct {
	w     io.Writer
	total int64
	on    bool
	start time.Time
	last  time.Time
}

func newProgressBar(w io.Writer, total int64, on bool) *progressBar {
	now := time.Now()
	return &progressBar{w: w, total: total, on: on, start: now}
}

func (p *progressBar) update(read int64, customers int) {
	now := time.Now()
	if !p.on || !p.last.IsZero() && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	frac := 0.0
	if p.total > 0 {
		frac = min(float64(read)/float64(p.total), 1)
	}
	const width = 30
	filled := int(frac * width)
	rate := float64(customers) / max(now.Sub(p.start).Seconds(), 1e-9)
	eta := ""
	if frac > 0 && frac < 1 {
		eta = " ETA " + (time.Duration(float64(now.Sub(p.start)) * (1 - frac) / frac)).Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "\r[%s%s] %3.0f%%  %d customers  %.0f/s%s   ", strings.Repeat("#", filled), strings.Repeat(".", width-filled), frac*100, customers, rate, eta)
}

func (p *progressBar) done() {
	if p.on {
		fmt.Fprintln(p.w)
	}
}
