package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/offpolicy"
)

const evaluateUsage = `Usage: touchpoint evaluate --log DECISIONS.jsonl --events EVENTS.jsonl --rules DIR [flags]

Replays the requests of a decision log through the ruleset in DIR and
estimates, from the logged choices, their logged probabilities and the
reward events that followed them (events with a decision_id), the reward
the new ruleset would earn per placement: inverse propensity scoring (IPS)
and its self-normalised form (SNIPS), with 95% intervals, next to the
logged policy's observed reward. Customers' features come from --customers
(the log records none), so the log must carry customer ids, not their
hashes.

Flags:
`

func evaluate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("evaluate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	logPath := fs.String("log", "", "decision log (JSON Lines, as the decision log writes it)")
	eventsPath := fs.String("events", "", "events (JSON Lines of event objects, as posted to /v1/events)")
	rulesDir := fs.String("rules", "", "the candidate rules directory")
	schema := fs.String("schema", "", "feature schema (default: features.yaml beside the rules, else configs/features.yaml)")
	customers := fs.String("customers", "configs/demo/customers.jsonl", "customers' features (JSON Lines), looked up by id")
	reward := fs.String("reward", "click", "the event type that counts as a reward: click or conversion")
	fs.Usage = func() {
		fmt.Fprint(stderr, evaluateUsage)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 || *logPath == "" || *eventsPath == "" || *rulesDir == "" {
		fs.Usage()
		return exitError{2}
	}
	if *reward != features.EventClick && *reward != features.EventConversion {
		return fmt.Errorf("--reward must be click or conversion, got %q", *reward)
	}
	schemaPath := *schema
	if schemaPath == "" {
		schemaPath = defaultSchema(*rulesDir)
	}
	if err := checkPaths(pathSetting{"--log", *logPath}, pathSetting{"--events", *eventsPath}, pathSetting{"--rules", *rulesDir},
		pathSetting{"--schema", schemaPath}, pathSetting{"--customers", *customers}); err != nil {
		return fmt.Errorf("cannot evaluate: %w", err)
	}
	store, err := features.OpenJSONL(*customers)
	if err != nil {
		return fmt.Errorf("cannot read customers from %q: %w", *customers, err)
	}
	e, err := replayEngine(stdout, *rulesDir, schemaPath, store, "candidate")
	if err != nil {
		return err
	}
	ev, err := os.Open(*eventsPath)
	if err != nil {
		return err
	}
	defer ev.Close()
	rewards, unattributed, err := offpolicy.Rewards(ev, *reward)
	if err != nil {
		return fmt.Errorf("cannot read events from %q: %w", *eventsPath, err)
	}
	lf, err := os.Open(*logPath)
	if err != nil {
		return err
	}
	defer lf.Close()
	rep, err := offpolicy.Evaluate(context.Background(), e, lf, rewards)
	if err != nil {
		return fmt.Errorf("cannot read the decision log %q: %w", *logPath, err)
	}
	writeEvaluation(stdout, rep, *reward, *rulesDir, e.Ruleset().Version, unattributed)
	return nil
}

func writeEvaluation(w io.Writer, rep *offpolicy.Report, reward, dir, version string, unattributed int) {
	fmt.Fprintf(w, "candidate %s (ruleset %s) over %d logged decisions: %d replayed", dir, version, rep.Decisions, rep.Replayed)
	if rep.NoCustomerID > 0 {
		fmt.Fprintf(w, ", %d without a customer id (the log hashed them)", rep.NoCustomerID)
	}
	if rep.Failed > 0 {
		fmt.Fprintf(w, ", %d refused by the candidate rules", rep.Failed)
	}
	fmt.Fprintln(w)
	if rep.DroppedContext > 0 {
		fmt.Fprintf(w, "note: %d context values were left out: the candidate schema does not declare their fields\n", rep.DroppedContext)
	}
	if unattributed > 0 {
		fmt.Fprintf(w, "note: %d %s events carry no decision_id and count for no decision\n", unattributed, reward)
	}
	fmt.Fprintf(w, "\n%-20s %9s %8s  %-26s %-26s %-26s\n", "placement", "decisions", "changed", "logged "+reward+" rate", "IPS estimate", "SNIPS estimate")
	row := func(name string, r offpolicy.Result, changed string) {
		fmt.Fprintf(w, "%-20s %9d %8s  %-26s %-26s %-26s\n", name, r.Decisions, changed, interval(r.Logged), interval(r.IPS), interval(r.SNIPS))
	}
	total := 0
	for _, p := range rep.Placements {
		total += p.Changed
		row(p.ID, p.Result, pct(p.Changed, p.Decisions))
	}
	row("all placements", rep.Overall, pct(total, rep.Overall.Decisions))
	for _, p := range rep.Placements {
		if p.Changed == 0 {
			continue
		}
		rulesByCount := make([]string, 0, len(p.ByRule))
		for r := range p.ByRule {
			rulesByCount = append(rulesByCount, r)
		}
		sort.Slice(rulesByCount, func(i, j int) bool {
			a, b := rulesByCount[i], rulesByCount[j]
			return p.ByRule[a] > p.ByRule[b] || p.ByRule[a] == p.ByRule[b] && a < b
		})
		parts := make([]string, len(rulesByCount))
		for i, r := range rulesByCount {
			name := r
			if name == "" {
				name = "(fallback or nothing)"
			}
			parts[i] = fmt.Sprintf("%s %d", name, p.ByRule[r])
		}
		fmt.Fprintf(w, "\n%s: %d decisions change; the new first item comes from %s", p.ID, p.Changed, strings.Join(parts, ", "))
	}
	fmt.Fprintln(w)
}

func interval(iv offpolicy.Interval) string {
	return fmt.Sprintf("%.4f [%.4f, %.4f]", iv.Value, iv.Lo, iv.Hi)
}

func pct(n, of int) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
}
