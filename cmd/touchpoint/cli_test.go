package main

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func runCLI(args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	err := run(args, &out, &errb)
	var ee exitError
	switch {
	case err == nil, errors.Is(err, errHelp):
	case errors.As(err, &ee):
		code = ee.code
	default:
		code = 1
		errb.WriteString("touchpoint: " + oneLine(err.Error()) + "\n")
	}
	return out.String(), errb.String(), code
}

func TestRulesCheckDemo(t *testing.T) {
	out, errOut, code := runCLI("rules", "check", "../../configs/rules")
	if code != 0 {
		t.Fatalf("demo rules fail their own check (exit %d):\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "0 failed; 0 warnings") {
		t.Errorf("summary = %q", out)
	}
}

func TestRulesCheckReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "rules"), 0o755)
	os.WriteFile(filepath.Join(dir, "features.yaml"), []byte("customer:\n  ltv: {type: number}\ncontext:\n  channel: {type: string, values: [web, app]}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "rules", "a.yaml"), []byte(`touchpoints:
  - id: t1
    kind: offer
rules:
  - id: r1
    when: customer.ltvv > 1
    offer: [t1, t2]
`), 0o644)
	out, _, code := runCLI("rules", "check", filepath.Join(dir, "rules"))
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{
		"a.yaml:6:20: rule r1.when: unknown feature customer.ltvv (did you mean ltv?)\n        when: customer.ltvv > 1\n                       ^",
		"a.yaml:7:17: rule r1 offers unknown touchpoint \"t2\" (did you mean t1?)",
		"2 errors; the ruleset does not load",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// Lint findings and failing fixtures fail the check too.
	os.WriteFile(filepath.Join(dir, "rules", "a.yaml"), []byte(`placements:
  - id: banner
touchpoints:
  - id: t1
    kind: offer
  - id: t2
    kind: coupon
rules:
  - id: r1
    when: customer.ltv > 100
    offer: [t1]
    tests:
      - name: big spenders get t1
        customer: {ltv: 50}
        context: {channel: web}
        expect: {banner: [t1]}
  - id: hold
    when: "false"
    suppress: ["kind:message"]
`), 0o644)
	out, _, code = runCLI("rules", "check", "--schema", filepath.Join(dir, "features.yaml"), filepath.Join(dir, "rules"))
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	for _, want := range []string{
		"a.yaml:13:9: rule r1, test \"big spenders get t1\": banner: expected [t1], got [] (t1: rule r1: condition false)",
		"a.yaml:17:5: rule hold: suppress matches no touchpoint",
		"a.yaml:17:5: rule hold has no tests",
		"a.yaml:6:5: touchpoint t2 is never offered by a rule nor used as a fallback",
		"0 tests passed, 1 failed; 3 warnings",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestCLIErrorsAreOneLine(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `touchpoint: unknown command "frobnicate"`},
		{[]string{"rules", "check", "/no/such/dir"}, "touchpoint: cannot check rules: rules directory \"/no/such/dir\" does not exist"},
		// The tests run in cmd/touchpoint, where the default paths (all
		// relative to the repository root) do not exist.
		{[]string{"serve"}, `touchpoint: cannot start: rules.dir (--rules) "configs/rules" does not exist in the working directory `},
		{[]string{"rules", "check", "rules"}, `touchpoint: cannot check rules: rules directory "rules" does not exist in the working directory `},
		{[]string{"loadtest", "--duration", "1s", "http://127.0.0.1:1"}, `touchpoint: --traffic "configs/loadtest/traffic.yaml" does not exist in the working directory `},
		{[]string{"demo-data", "--customers", "0"}, "touchpoint: --customers must be at least 1, got 0"},
		{[]string{"loadtest", "baseline", "--work", "-1us"}, "touchpoint: --work must be between 0 and 1s, got -1µs"},
		{[]string{"serve", "--config", "/no/such/config.yaml"}, `touchpoint: cannot load config from "/no/such/config.yaml"`},
	}
	for _, tc := range cases {
		_, errOut, code := runCLI(tc.args...)
		if code == 0 || !strings.HasPrefix(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want one line starting %q", tc.args, code, errOut, tc.want)
		}
	}
}

func TestConfigRejectsUnknownKeys(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(p, []byte("server:\n  adr: \":9090\"\n"), 0o644)
	_, err := loadConfig(p, true)
	if err == nil || !strings.Contains(err.Error(), "line 2: unknown key adr") {
		t.Fatalf("err = %v", err)
	}
	cfg, err := loadConfig("../../configs/touchpoint.yaml", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.validate(); err != nil {
		t.Errorf("shipped config is invalid: %v", err)
	}
}

func TestDemoDataIsReproducible(t *testing.T) {
	a, _, code := runCLI("demo-data", "--customers", "50", "--seed", "7")
	b, _, _ := runCLI("demo-data", "--customers", "50", "--seed", "7")
	c, _, _ := runCLI("demo-data", "--customers", "50", "--seed", "8")
	if code != 0 || a != b || a == c || strings.Count(a, "\n") != 50 {
		t.Errorf("demo-data: exit %d, %d lines, same seed equal %v, other seed differs %v", code, strings.Count(a, "\n"), a == b, a != c)
	}
}

// Every command's --help lists its flags, including the ones reached
// through a command group ("rules --help", "features --help").
func TestHelpListsFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"rules", "--help"}, "-schema"},
		{[]string{"rules", "check", "--help"}, "-schema"},
		{[]string{"features", "--help"}, "-checkpoint"},
		{[]string{"features", "import", "--help"}, "-merge"},
		{[]string{"serve", "--help"}, "-customers"},
		{[]string{"loadtest", "--help"}, "-find-max"},
	} {
		out, errOut, code := runCLI(c.args...)
		if all := out + errOut; code != 0 || !strings.Contains(all, "Flags:") || !strings.Contains(all, c.want) {
			t.Errorf("%v: exit %d, output\n%s\nwant the flags, %s among them", c.args, code, all, c.want)
		}
	}
}

// touchpoint version and --version name the build.
func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		out, err := exec.Command(binary, arg).CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "touchpoint ") || !strings.Contains(string(out), "\ncommit ") || !strings.Contains(string(out), runtime.Version()) {
			t.Errorf("%s: %v\n%s", arg, err, out)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"serve", "--help"}, {"rules", "check", "--help"}, {"demo-data", "-h"}} {
		cmd := exec.Command(binary, args...)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Usage") && !strings.Contains(string(out), "touchpoint serve") {
			t.Errorf("%v: %v\n%s", args, err, out)
		}
	}
}

// Serving from a directory without configs/ and without --config works
// with absolute paths, and says in the log that no config file was read.
func TestServeWithoutConfigFileSaysSo(t *testing.T) {
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	cmd := exec.Command(binary, "serve", "--addr", "127.0.0.1:0", "--rules", abs("../../configs/rules"),
		"--schema", abs("../../configs/features.yaml"), "--customers", abs("../../configs/demo/customers.jsonl"))
	cmd.Dir = t.TempDir()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	var logs strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		logs.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), `"message":"touchpoint serving"`) {
			break
		}
	}
	if !strings.Contains(logs.String(), `"message":"no config file; serving with the built-in defaults and flags"`) ||
		!strings.Contains(logs.String(), `"working_directory":"`+cmd.Dir+`"`) {
		t.Errorf("the log does not say that no config file was read:\n%s", logs.String())
	}
}
