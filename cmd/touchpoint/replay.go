package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/features/redisstore"
	"github.com/touchpoint-dev/touchpoint/replay"
	"github.com/touchpoint-dev/touchpoint/rules"
)

const rulesReplayUsage = `Usage: touchpoint rules replay --log REQUESTS.jsonl --rules DRAFT_DIR [--base DIR] [--customers F | --redis URL] [--fail-if-changed PCT]

Re-decides the requests of a decision log (or of a JSON Lines file of
decide request bodies) with the rules being served (--base) and with a
draft, on the same features, and reports what the draft would change:
per placement, how many decisions gain, lose or swap a touchpoint (a
fallback counts as nothing shown), per rule, the touchpoints it would
show more or no more, and examples. Deciding both now, rather than
comparing with what the log recorded, keeps changes of the customers'
features since out of the comparison. Bandit placements rank by score
in both, and nothing is counted.

With --fail-if-changed PCT, exits 1 when more than PCT percent of the
placement decisions would change: a check for CI.

Flags:
`

func rulesReplay(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rules replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	logPath := fs.String("log", "", "decision log, or JSON Lines of decide requests")
	draftDir := fs.String("rules", "", "the draft rules directory")
	baseDir := fs.String("base", "configs/rules", "the rules directory being served")
	schema := fs.String("schema", "", "feature schema (default: features.yaml beside the draft, else configs/features.yaml)")
	customers := fs.String("customers", "configs/demo/customers.jsonl", "customers' features (JSON Lines), looked up by id")
	redisURL := fs.String("redis", "", "read customers' features from Redis instead of --customers")
	failIf := fs.Float64("fail-if-changed", -1, "exit 1 when more than this percent of placement decisions change")
	examples := fs.Int("examples", 3, "examples per placement and kind of change")
	fs.Usage = func() {
		fmt.Fprint(stderr, rulesReplayUsage)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 || *logPath == "" || *draftDir == "" {
		fs.Usage()
		return exitError{2}
	}
	if *failIf != -1 && (*failIf < 0 || *failIf > 100) {
		return fmt.Errorf("--fail-if-changed must be a percent from 0 to 100, got %v", *failIf)
	}
	if *examples < 0 || *examples > 100 {
		return fmt.Errorf("--examples must be from 0 to 100, got %d", *examples)
	}
	schemaPath := *schema
	if schemaPath == "" {
		schemaPath = defaultSchema(*draftDir)
	}
	paths := []pathSetting{{"--log", *logPath}, {"--rules", *draftDir}, {"--base", *baseDir}, {"--schema", schemaPath}}
	if *redisURL == "" {
		paths = append(paths, pathSetting{"--customers", *customers})
	}
	if err := checkPaths(paths...); err != nil {
		return fmt.Errorf("cannot replay: %w", err)
	}
	store, closeStore, err := replayStore(*customers, *redisURL)
	if err != nil {
		return err
	}
	defer closeStore()
	base, err := replayEngine(stdout, *baseDir, schemaPath, store, "base")
	if err != nil {
		return err
	}
	draft, err := replayEngine(stdout, *draftDir, schemaPath, store, "draft")
	if err != nil {
		return err
	}
	f, err := os.Open(*logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	rep, err := replay.Run(context.Background(), base, draft, f, replay.Options{Examples: *examples})
	if err != nil {
		return fmt.Errorf("cannot replay %q: %w", *logPath, err)
	}
	writeReplay(stdout, rep, *baseDir, *draftDir)
	if *failIf >= 0 && 100*rep.Changed() > *failIf {
		fmt.Fprintf(stdout, "\n%.1f%% of placement decisions change, more than --fail-if-changed %v%%\n", 100*rep.Changed(), *failIf)
		return exitError{1}
	}
	return nil
}

// replayStore opens the customers' features: Redis, or a JSON Lines file.
func replayStore(customers, redisURL string) (features.Store, func(), error) {
	if redisURL == "" {
		mem, err := features.OpenJSONL(customers)
		if err != nil {
			return nil, nil, fmt.Errorf("cannot read customers from %q: %w", customers, err)
		}
		return mem, func() {}, nil
	}
	cfg := redisstore.DefaultConfig()
	cfg.URL = redisURL
	cfg.Password = os.Getenv(redisPasswordEnv)
	// A replay reads one customer after another; it can wait for Redis
	// longer than a page view would.
	cfg.LookupTimeout = 2 * time.Second
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	rs, err := redisstore.Open(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot open Redis store: %w", err)
	}
	return rs, func() { _ = rs.Close() }, nil
}

func writeReplay(w io.Writer, rep *replay.Report, baseDir, draftDir string) {
	fmt.Fprintf(w, "draft %s (ruleset %s) against %s (ruleset %s) over %d requests: %d replayed", draftDir, rep.DraftVersion, baseDir, rep.BaseVersion, rep.Requests, rep.Replayed)
	if rep.NoCustomerID > 0 {
		fmt.Fprintf(w, ", %d without a customer id (the log hashed them)", rep.NoCustomerID)
	}
	if rep.Failed > 0 {
		fmt.Fprintf(w, ", %d refused (%s)", rep.Failed, rep.FailedExample)
	}
	if rep.DroppedContext > 0 {
		fmt.Fprintf(w, "; %d context fields a schema does not declare were left out", rep.DroppedContext)
	}
	fmt.Fprintf(w, "\n\n%-20s %9s %9s %7s %7s %8s %8s\n", "placement", "decisions", "unchanged", "gained", "lost", "swapped", "changed")
	for _, p := range rep.Placements {
		fmt.Fprintf(w, "%-20s %9d %9d %7d %7d %8d %7.1f%%\n", p.ID, p.Decisions, p.Unchanged, p.Gained, p.Lost, p.Swapped, percent(p.Changed(), p.Decisions))
	}
	if len(rep.Rules) > 0 {
		fmt.Fprintf(w, "\n%-32s %12s %12s\n", "rule", "shows more", "shows no more")
		for _, r := range rep.Rules {
			name := r.Rule
			if name == "" {
				name = "(fallback)"
			}
			fmt.Fprintf(w, "%-32s %12d %12d\n", name, r.Gains, r.Losses)
		}
	}
	for _, p := range rep.Placements {
		for _, ex := range p.Examples {
			fmt.Fprintf(w, "\n%s %s (line %d, %s): %s → %s", p.ID, ex.Kind, ex.Line, ex.CustomerID, shownText(ex.Base), shownText(ex.Draft))
		}
	}
	fmt.Fprintln(w)
}

func percent(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}

// shownText writes a placement's items as a marketer reads them.
func shownText(list []replay.Shown) string {
	if len(list) == 0 {
		return "nothing"
	}
	parts := make([]string, len(list))
	for i, s := range list {
		switch {
		case s.Fallback:
			parts[i] = s.Touchpoint + " (fallback)"
		default:
			parts[i] = s.Touchpoint + " (rule " + s.Rule + ")"
		}
	}
	return strings.Join(parts, ", ")
}

// replayEngine loads rules to decide past requests with: without the
// learning loop, so bandit placements rank by score (it has no posteriors
// of its own) and nothing is counted. A broken ruleset's errors go to
// stdout, as rules check prints them.
func replayEngine(stdout io.Writer, dir, schemaPath string, store features.Store, what string) (*engine.Engine, error) {
	e, err := engine.New(engine.Config{RulesDir: dir, SchemaPath: schemaPath}, store, zerolog.Nop(), engine.WithoutLearning())
	if err != nil {
		printRuleErrors(stdout, err)
		return nil, fmt.Errorf("cannot load the %s rules from %q: %w", what, dir, err)
	}
	return e, nil
}

// printRuleErrors writes each file:line:col error of a ruleset that does
// not load, with its source line and caret.
func printRuleErrors(w io.Writer, err error) {
	var list rules.ErrorList
	if errors.As(err, &list) {
		for _, le := range list {
			fmt.Fprintln(w, le.Detail())
		}
	}
}
