package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/rules"
)

const rulesCheckUsage = `Usage: touchpoint rules check [--schema FILE] DIR

Compiles every rule file under DIR against the feature schema, lints the
ruleset and runs every fixture under the rules' tests. Prints one
file:line:col: message per problem and a summary; exits 1 on any problem.

Flags:
`

func rulesCheck(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rules check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	schema := fs.String("schema", "", "feature schema file (default: features.yaml beside DIR, else configs/features.yaml)")
	fs.Usage = func() {
		fmt.Fprint(stderr, rulesCheckUsage)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, interleaved(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitError{2}
	}
	dir := fs.Arg(0)
	schemaPath := *schema
	if schemaPath == "" {
		schemaPath = defaultSchema(dir)
	}
	if err := checkPaths(pathSetting{"rules directory", dir}, pathSetting{"--schema", schemaPath}); err != nil {
		return fmt.Errorf("cannot check rules: %w", err)
	}
	rs, err := rules.Load(dir, schemaPath)
	if err != nil {
		var list rules.ErrorList
		if !errors.As(err, &list) {
			return fmt.Errorf("cannot check rules in %q: %w", dir, err)
		}
		for _, e := range list {
			fmt.Fprintln(stdout, e.Detail())
		}
		fmt.Fprintf(stdout, "\n%s: %d %s; the ruleset does not load\n", dir, len(list), plural(len(list), "error", "errors"))
		return exitError{1}
	}
	for _, w := range rs.Warnings {
		fmt.Fprintln(stdout, w.Error())
	}
	results := engine.RunFixtures(rs)
	failed := 0
	for _, r := range results {
		if !r.Passed {
			failed++
			fmt.Fprintln(stdout, r.Error())
		}
	}
	if len(rs.Warnings) > 0 || failed > 0 {
		fmt.Fprintln(stdout)
	}
	models := ""
	if len(rs.Models) > 0 {
		models = fmt.Sprintf(", %d %s", len(rs.Models), plural(len(rs.Models), "model", "models"))
	}
	if len(rs.Triggers) > 0 {
		models += fmt.Sprintf(", %d %s", len(rs.Triggers), plural(len(rs.Triggers), "trigger", "triggers"))
	}
	fmt.Fprintf(stdout, "%s: %d %s, %d %s, %d %s%s; %d %s passed, %d failed; %d %s (ruleset %s)\n",
		dir, len(rs.Rules), plural(len(rs.Rules), "rule", "rules"),
		len(rs.Touchpoints), plural(len(rs.Touchpoints), "touchpoint", "touchpoints"),
		len(rs.Placements), plural(len(rs.Placements), "placement", "placements"), models,
		len(results)-failed, plural(len(results)-failed, "test", "tests"), failed,
		len(rs.Warnings), plural(len(rs.Warnings), "warning", "warnings"), rs.Version)
	if failed > 0 || len(rs.Warnings) > 0 {
		return exitError{1}
	}
	return nil
}

// defaultSchema finds the schema for a rules directory: configs/ keeps
// features.yaml beside rules/, so look there first.
func defaultSchema(dir string) string {
	beside := filepath.Join(filepath.Dir(filepath.Clean(dir)), "features.yaml")
	if fileExists(beside) {
		return beside
	}
	return "configs/features.yaml"
}

// interleaved moves flags after the positional argument to the front, so
// "rules check DIR --schema F" works as people type it.
func interleaved(args []string) []string {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if len(a) > 1 && a[0] == '-' {
			flags = append(flags, a)
			if (a == "--schema" || a == "-schema" || a == "--redis" || a == "-redis" || a == "--checkpoint" || a == "-checkpoint") && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		rest = append(rest, a)
	}
	return append(flags, rest...)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func fileExists(p string) bool {
	info, err := os.Stat(p)
	return err == nil && !info.IsDir()
}
