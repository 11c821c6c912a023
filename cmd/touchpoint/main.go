// Command touchpoint is the one binary: it serves decisions, checks rule
// files and writes demo data. It only turns flags and config into calls on
// the server, engine, rules and features packages.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

const usage = `touchpoint: real-time personalization and decisions

Usage:
  touchpoint serve [flags]            serve POST /v1/decide
  touchpoint rules check [flags] DIR  compile, lint and test a rules directory
  touchpoint rules diff OLD NEW       what changed between two rules directories
  touchpoint rules replay [flags]     what a draft ruleset would change on past requests
  touchpoint demo-data [flags]        write demo customers as JSON Lines to stdout
  touchpoint features import FILE     import customers into Redis (resumable)
  touchpoint loadtest [flags] URL     load test a decide endpoint (open loop; see --help)
  touchpoint models predict|inspect   score JSON Lines with a model file, or describe one
  touchpoint evaluate [flags]         estimate a new ruleset's reward from a decision log
  touchpoint experiments report ID    an A/B test's outcomes per variant, from the decision log and events
  touchpoint config env               the environment variables that set config keys
  touchpoint version                  the build: version, commit and Go version (also --version)
  touchpoint help                     show this help

Run "touchpoint COMMAND --help" for a command's flags.
`

// exitError carries a non-zero status with nothing more to print (the
// command already printed its report).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		os.Exit(ee.code)
	case errors.Is(err, errHelp):
		os.Exit(0)
	default:
		fmt.Fprintln(os.Stderr, "touchpoint: "+oneLine(err.Error()))
		os.Exit(1)
	}
}

var errHelp = errors.New("help shown")

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError{2}
	}
	switch args[0] {
	case "version", "--version", "-version":
		return version(stdout)
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "rules":
		if len(args) >= 2 {
			switch args[1] {
			case "check":
				return rulesCheck(args[2:], stdout, stderr)
			case "replay":
				return rulesReplay(args[2:], stdout, stderr)
			case "diff":
				return rulesDiff(args[2:], stdout, stderr)
			}
			if isHelp(args[1]) {
				return rulesCheck([]string{"--help"}, stdout, stderr)
			}
		}
		return errors.New(`unknown rules command; use "touchpoint rules check DIR", "touchpoint rules diff OLD NEW" or "touchpoint rules replay --log F --rules DIR"`)
	case "demo-data":
		return demoData(args[1:], stdout, stderr)
	case "features":
		return featuresCommand(args[1:], stdout, stderr)
	case "loadtest":
		return loadtestCmd(args[1:], stdout, stderr)
	case "models":
		return modelsCommand(args[1:], os.Stdin, stdout, stderr)
	case "evaluate":
		return evaluate(args[1:], stdout, stderr)
	case "experiments":
		return experimentsCommand(args[1:], stdout, stderr)
	case "config":
		return configCommand(args[1:], stdout, stderr)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q; run \"touchpoint help\"", args[0])
}

func isHelp(a string) bool { return a == "-h" || a == "--help" || a == "-help" || a == "help" }

// oneLine keeps CLI failures to one readable line; multi-line details (rule
// errors with carets) are printed by the commands that own them.
func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " (and more)"
	}
	return s
}
