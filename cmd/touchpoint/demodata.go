package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"

	"github.com/touchpoint-dev/touchpoint/features/demodata"
)

func demoData(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo-data", flag.ContinueOnError)
	fs.SetOutput(stderr)
	customers := fs.Int("customers", 3000, "how many customers to write")
	seed := fs.Uint64("seed", 42, "random seed; the same seed writes the same customers")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: touchpoint demo-data [--customers N] [--seed S] > customers.jsonl\n\nWrites demo customers as JSON Lines, reproducibly for a seed.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("demo-data takes no arguments, got %q", fs.Arg(0))
	}
	if *customers < 1 {
		return fmt.Errorf("--customers must be at least 1, got %d", *customers)
	}
	w := bufio.NewWriterSize(stdout, 1<<20)
	if err := demodata.Generate(w, *customers, *seed); err != nil {
		return fmt.Errorf("cannot write demo data: %w", err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("cannot write demo data: %w", err)
	}
	return nil
}

// parseFlags maps -h to errHelp (exit 0) and other flag errors to exit 2;
// the flag package has already printed the message and usage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == flag.ErrHelp {
		return errHelp
	}
	if err != nil {
		return exitError{2}
	}
	return nil
}
