package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/touchpoint-dev/touchpoint/experiments"
	"github.com/touchpoint-dev/touchpoint/rules"
)

const experimentsReportUsage = `Usage: touchpoint experiments report --log DECISIONS.jsonl --events EVENTS.jsonl [--rules DIR] ID

Reports experiment ID from a decision log and the events posted for its
decisions: per variant and the holdout, exposures (decisions that showed
the customer an item attributed to it), impressions, clicks, conversions
and revenue; click and conversion rates with 95% Wilson intervals; each
variant's uplift over the first variant (control) and over the holdout
with a p-value; and a sample ratio check of the exposures against the
configured split, which warns when it fails. The experiment's split is
read from the rules (default configs/rules).

Flags:
`

func experimentsCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "report" {
		if len(args) > 0 && isHelp(args[0]) {
			fmt.Fprint(stdout, experimentsReportUsage)
			return nil
		}
		return fmt.Errorf(`unknown experiments command; use "touchpoint experiments report ID"`)
	}
	fs := flag.NewFlagSet("experiments report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	logPath := fs.String("log", "", "decision log (JSON Lines)")
	eventsPath := fs.String("events", "", "events (JSON Lines of event objects, as posted to /v1/events)")
	rulesDir := fs.String("rules", "configs/rules", "rules directory that declares the experiment")
	schema := fs.String("schema", "", "feature schema (default: features.yaml beside the rules, else configs/features.yaml)")
	fs.Usage = func() {
		fmt.Fprint(stderr, experimentsReportUsage)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 || *logPath == "" || *eventsPath == "" {
		fs.Usage()
		return exitError{2}
	}
	id := fs.Arg(0)
	schemaPath := *schema
	if schemaPath == "" {
		schemaPath = defaultSchema(*rulesDir)
	}
	if err := checkPaths(pathSetting{"--log", *logPath}, pathSetting{"--events", *eventsPath}, pathSetting{"--rules", *rulesDir}, pathSetting{"--schema", schemaPath}); err != nil {
		return fmt.Errorf("cannot report: %w", err)
	}
	rs, err := rules.Load(*rulesDir, schemaPath)
	if err != nil {
		return fmt.Errorf("cannot load rules from %q: %w", *rulesDir, err)
	}
	xi := rs.Experiment(id)
	if xi < 0 {
		names := make([]string, len(rs.Experiments))
		for i := range rs.Experiments {
			names[i] = rs.Experiments[i].ID
		}
		return fmt.Errorf("no experiment %q in %s%s", id, *rulesDir, rules.Suggest(id, names))
	}
	lf, err := os.Open(*logPath)
	if err != nil {
		return err
	}
	defer lf.Close()
	ef, err := os.Open(*eventsPath)
	if err != nil {
		return err
	}
	defer ef.Close()
	rep, err := experiments.BuildReport(rs.Experiments[xi].Experiment, lf, ef)
	if err != nil {
		return fmt.Errorf("cannot report %s: %w", id, err)
	}
	writeExperimentReport(stdout, rep)
	return nil
}

func writeExperimentReport(w io.Writer, rep *experiments.Report) {
	fmt.Fprintf(w, "experiment %s\n", rep.Experiment)
	if rep.SampleRatioMismatch() {
		fmt.Fprintf(w, "\n!!! SAMPLE RATIO MISMATCH: the exposures do not follow the configured split (chi-square %.1f, p = %.2g).\n"+
			"!!! Something loses or adds exposures for some arms; do not trust the comparisons below until it is found.\n", rep.SRMChi2, rep.SRMP)
	}
	fmt.Fprintf(w, "\n%-14s %9s %9s %11s %7s %-26s %11s %-26s %10s\n", "arm", "expected", "exposures", "impressions", "clicks", "click rate", "conversions", "conversion rate", "revenue")
	var total int64
	for _, a := range rep.Arms {
		total += a.Exposures
	}
	for _, a := range rep.Arms {
		share := "-"
		if total > 0 {
			share = fmt.Sprintf("%.1f%%", 100*float64(a.Exposures)/float64(total))
		}
		fmt.Fprintf(w, "%-14s %8.1f%% %9d %11d %7d %-26s %11d %-26s %10.2f   (%s of exposures)\n", a.Name, a.Expected, a.Exposures, a.Impressions, a.Clicks,
			rate(a.ClickRate()), a.Conversions, rate(a.ConversionRate()), a.Revenue, share)
	}
	control := &rep.Arms[0]
	holdout := rep.Arm(experiments.Holdout)
	fmt.Fprintln(w)
	for i := range rep.Arms {
		a := &rep.Arms[i]
		if a.Name == experiments.Holdout {
			continue
		}
		var parts []string
		if a != control {
			parts = append(parts, "over "+control.Name+": "+comparison(a, control))
		}
		if holdout != nil {
			parts = append(parts, "over the holdout: "+comparison(a, holdout))
		}
		if len(parts) > 0 {
			fmt.Fprintf(w, "%s: %s\n", a.Name, strings.Join(parts, "; "))
		}
	}
	fmt.Fprintf(w, "\nsample ratio check: chi-square %.2f, p = %.3g (warns below %g)\n", rep.SRMChi2, rep.SRMP, experiments.SRMThreshold)
	if rep.Unattributed > 0 {
		fmt.Fprintf(w, "%d events report on decisions or items not in the log for this experiment\n", rep.Unattributed)
	}
}

func rate(p experiments.Proportion) string {
	lo, hi := p.Wilson95()
	return fmt.Sprintf("%.4f [%.4f, %.4f]", p.Rate(), lo, hi)
}

// comparison is a's click and conversion rates against b's.
func comparison(a, b *experiments.Arm) string {
	c := experiments.Compare(a.ClickRate(), b.ClickRate())
	v := experiments.Compare(a.ConversionRate(), b.ConversionRate())
	return fmt.Sprintf("clicks %s (p = %.3g), conversions %s (p = %.3g)", uplift(c), c.P, uplift(v), v.P)
}

func uplift(c experiments.Comparison) string {
	if math.IsNaN(c.Uplift) {
		return fmt.Sprintf("%+.4f", c.Difference)
	}
	return fmt.Sprintf("%+.1f%%", 100*c.Uplift)
}
