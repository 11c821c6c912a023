package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// aliasBomb nests levels of width YAML aliases: a few hundred bytes that
// expand to width^(levels-1) strings.
func aliasBomb(levels, width int) string {
	var b strings.Builder
	b.WriteString("touchpoints:\n  - id: bomb\n    kind: content\n    content:\n      l0: &l0 \"lol\"\n")
	for l := 1; l < levels; l++ {
		refs := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d,", l-1), width), ",")
		fmt.Fprintf(&b, "      l%d: &l%d [%s]\n", l, l, refs)
	}
	return b.String()
}

// TestHostileRuleFileIsRefused saves the alias bomb into the rules
// of a running server: the reload is refused at the alias, the server
// keeps deciding with the rules it had, and its memory never grows by the
// bomb's expansion. A SIGHUP that reloads it again says so in the log.
func TestHostileRuleFileIsRefused(t *testing.T) {
	dir := workspace(t)
	s := startServer(t, dir)
	before := s.status(t)
	if err := os.WriteFile(filepath.Join(dir, "rules", "bomb.yaml"), []byte(aliasBomb(7, 10)), 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the hostile file to be refused", func() bool { return s.status(t).FailedLoads > before.FailedLoads })
	st := s.status(t)
	if !strings.Contains(st.LastError, "bomb.yaml:6:16: YAML alias *l0 is not allowed (and 59 more in this file)") || st.Version != before.Version {
		t.Errorf("status after the hostile file = %+v", st)
	}
	code, d, raw, err := s.decide(cartRequest)
	if err != nil || code != 200 || d.Ruleset != before.Version {
		t.Errorf("decide after the hostile file: %d %v %s", code, err, raw)
	}

	failed := st.FailedLoads
	s.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, "the SIGHUP reload", func() bool { return s.status(t).FailedLoads > failed })
	if !strings.Contains(s.logs.String(), `"message":"reload requested by SIGHUP"`) {
		t.Errorf("no log line says SIGHUP asked for the reload:\n%s", s.logs.String())
	}

	// Expanded, the bomb is a million strings, hundreds of megabytes.
	if peak, ok := peakRSS(s.cmd.Process.Pid); ok && peak > 150<<20 {
		t.Errorf("peak RSS %d MiB after refusing the hostile file", peak>>20)
	}
}

// peakRSS reads a process's peak resident set size on Linux.
func peakRSS(pid int) (int64, bool) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

func TestConfigRefusesAliases(t *testing.T) {
	cases := []struct {
		name, config, want string
	}{
		{"an alias", "log: &l {level: info}\nserver:\n  cors: *l\n", "c.yaml:3:9: YAML alias *l is not allowed"},
		{"the bomb", "features:\n  anonymous_prefixes: &a [\"x\", \"y\"]\n  customers: *a\n" +
			strings.ReplaceAll(aliasBomb(7, 10), "touchpoints:", "redis:"), "c.yaml:3:14: YAML alias *a is not allowed (and 60 more in this file)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(p, []byte(tc.config), 0o644)
			_, err := loadConfig(p, true)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	cfg, err := loadConfig("../../configs/touchpoint.yaml", true)
	if err != nil || cfg.Rules.DecideDeadline <= 0 {
		t.Errorf("shipped config: decide_deadline %v, err %v", cfg.Rules.DecideDeadline, err)
	}
}
