package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/touchpoint-dev/touchpoint/experiments"
	"github.com/touchpoint-dev/touchpoint/rules"
)

const experimentsReportUsage = `Usage: touchpoint experiments report [--server URL] ID
       touchpoint experiments report --log DECISIONS.jsonl --events EVENTS.jsonl [--rules DIR] ID

Reports experiment ID: per variant and the holdout, exposures (decisions
in which the customer entered the experiment and asked for a placement it
covers), impressions, clicks, conversions and revenue; click and
conversion rates with 95% Wilson intervals; each variant's uplift over the
first variant (control) and over the holdout with a p-value; and a sample
ratio check of the exposures against the configured split, which warns
when it fails.

By default the report comes from a running server's live counters (GET
/v1/experiments/ID, with the admin key from TOUCHPOINT_ADMIN_KEY), which
every node adds to. With --log and --events it is computed from a
decision log and the events posted for its decisions instead, and the
experiment's split is read from the rules.

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
	server := fs.String("server", "http://localhost:8080", "base URL of a running touchpoint server")
	logPath := fs.String("log", "", "decision log (JSON Lines); with --events, report from files instead of a server")
	eventsPath := fs.String("events", "", "events (JSON Lines of event objects, as posted to /v1/events)")
	rulesDir := fs.String("rules", "configs/rules", "rules directory that declares the experiment (with --log)")
	schema := fs.String("schema", "", "feature schema (default: features.yaml beside the rules, else configs/features.yaml)")
	fs.Usage = func() {
		fmt.Fprint(stderr, experimentsReportUsage)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 || (*logPath == "") != (*eventsPath == "") {
		fs.Usage()
		return exitError{2}
	}
	id := fs.Arg(0)
	if *logPath == "" {
		rep, err := fetchExperimentReport(*server, id, os.Getenv("TOUCHPOINT_ADMIN_KEY"))
		if err != nil {
			return fmt.Errorf("cannot report %s: %w", id, err)
		}
		writeExperimentReport(stdout, rep)
		return nil
	}
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
		return fmt.Errorf("no experiment %q in %s%s", id, *rulesDir, rules.Suggest(id, rs.ExperimentIDs()))
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

// fetchExperimentReport reads an experiment's live report from a server.
func fetchExperimentReport(server, id, adminKey string) (*experiments.Report, error) {
	if adminKey == "" {
		return nil, errors.New("set TOUCHPOINT_ADMIN_KEY to the server's admin key, or report from files with --log and --events")
	}
	u, err := url.Parse(strings.TrimRight(server, "/") + "/v1/experiments/" + url.PathEscape(id))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--server must be an http or https URL such as http://localhost:8080, got %q", server)
	}
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+adminKey)
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var apiErr struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(body, &apiErr) == nil && apiErr.Error.Message != "" {
			return nil, fmt.Errorf("%s answered %d: %s", u.Host, resp.StatusCode, apiErr.Error.Message)
		}
		return nil, fmt.Errorf("%s answered %d", u.Host, resp.StatusCode)
	}
	var sum experiments.Summary
	if err := json.Unmarshal(body, &sum); err != nil {
		return nil, fmt.Errorf("cannot read the report %s sent: %w", u.Host, err)
	}
	return sum.Report(), nil
}

func writeExperimentReport(w io.Writer, rep *experiments.Report) {
	fmt.Fprintf(w, "experiment %s\n", rep.Experiment)
	if rep.SampleRatioMismatch() {
		fmt.Fprintf(w, "\n!!! SAMPLE RATIO MISMATCH: the exposures do not follow the configured split (chi-square %.1f, p = %.2g).\n"+
			"!!! Something loses or adds exposures for some arms; do not trust the comparisons below until it is found.\n", rep.SRMChi2, rep.SRMP)
	}
	width := len("arm")
	for _, a := range rep.Arms {
		width = max(width, len(a.Name))
	}
	fmt.Fprintf(w, "\n%-*s %9s %9s %11s %7s %-26s %11s %-26s %10s\n", width, "arm", "expected", "exposures", "impressions", "clicks", "click rate", "conversions", "conversion rate", "revenue")
	var total int64
	for _, a := range rep.Arms {
		total += a.Exposures
	}
	for _, a := range rep.Arms {
		share := "-"
		if total > 0 {
			share = fmt.Sprintf("%.1f%%", 100*float64(a.Exposures)/float64(total))
		}
		fmt.Fprintf(w, "%-*s %8.1f%% %9d %11d %7d %-26s %11d %-26s %10.2f   (%s of exposures)\n", width, a.Name, a.Expected, a.Exposures, a.Impressions, a.Clicks,
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
