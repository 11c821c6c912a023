package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/touchpoint-dev/touchpoint/rules"
)

const rulesDiffUsage = `Usage: touchpoint rules diff [--schema FILE] OLD_DIR NEW_DIR

Lists what changed between two rules directories, in the words of the rule
files: placements, touchpoints, rules, segments, experiments, models and
the contact policy added, removed or changed, and for a change the keys
that differ with their old and new values (fixtures as a count). Items are
matched by id whatever file holds them; comments, order and layout do not
count, and a model file whose bytes changed is reported. Both directories
must load; a broken one is reported like rules check does.

Flags:
`

func rulesDiff(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rules diff", flag.ContinueOnError)
	fs.SetOutput(stderr)
	schema := fs.String("schema", "", "feature schema for both (default: features.yaml beside each directory, else configs/features.yaml)")
	fs.Usage = func() {
		fmt.Fprint(stderr, rulesDiffUsage)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return exitError{2}
	}
	load := func(dir string) (*rules.Ruleset, error) {
		schemaPath := *schema
		if schemaPath == "" {
			schemaPath = defaultSchema(dir)
		}
		if err := checkPaths(pathSetting{"rules directory", dir}, pathSetting{"--schema", schemaPath}); err != nil {
			return nil, fmt.Errorf("cannot diff: %w", err)
		}
		rs, err := rules.Load(dir, schemaPath)
		if err != nil {
			printRuleErrors(stdout, err)
			return nil, fmt.Errorf("cannot load rules from %q: %w", dir, err)
		}
		return rs, nil
	}
	old, err := load(fs.Arg(0))
	if err != nil {
		return err
	}
	cur, err := load(fs.Arg(1))
	if err != nil {
		return err
	}
	changes, err := rules.Diff(old, cur)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s (ruleset %s) → %s (ruleset %s): ", fs.Arg(0), old.Version, fs.Arg(1), cur.Version)
	if len(changes) == 0 {
		fmt.Fprintln(stdout, "no changes")
		return nil
	}
	if len(changes) == 1 {
		fmt.Fprintln(stdout, "1 change")
	} else {
		fmt.Fprintf(stdout, "%d changes\n", len(changes))
	}
	for _, c := range changes {
		fmt.Fprintln(stdout, "\n"+c.String())
	}
	return nil
}
