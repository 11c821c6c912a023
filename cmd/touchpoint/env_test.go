package main

import (
	"bytes"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var updateREADME = flag.Bool("update-readme", false, "rewrite the environment table in README.md")

func mapLookup(env map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
}

// Every key of the configuration, at every depth, has exactly one
// variable, named from its path, and no two keys share one.
func TestEveryConfigKeyHasAVariable(t *testing.T) {
	var leaves []string
	var walk func(reflect.Type, string)
	walk = func(typ reflect.Type, path string) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			name := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if name == "" || name == "-" {
				continue
			}
			if path != "" {
				name = path + "." + name
			}
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]() {
				walk(f.Type, name)
				continue
			}
			leaves = append(leaves, name)
		}
	}
	walk(reflect.TypeFor[config](), "")
	vars := envVars()
	if len(vars) != len(leaves) {
		t.Fatalf("%d variables for %d keys", len(vars), len(leaves))
	}
	seen := map[string]string{}
	for _, n := range otherEnvNames() {
		seen[n] = "(read elsewhere)"
	}
	for i, v := range vars {
		if v.Key != leaves[i] {
			t.Errorf("variable %d is for %s, want %s", i, v.Key, leaves[i])
		}
		want := "TOUCHPOINT_" + strings.ToUpper(strings.ReplaceAll(v.Key, ".", "_"))
		if v.Name != want {
			t.Errorf("%s: variable %s, want %s", v.Key, v.Name, want)
		}
		if v.Type == envFileOnly {
			t.Errorf("%s cannot be set from the environment; give it a type applyEnv parses or document it", v.Key)
		}
		if other, dup := seen[v.Name]; dup && other != "server.admin_key" {
			t.Errorf("%s names both %s and %s", v.Name, v.Key, other)
		}
		seen[v.Name] = v.Key
	}
	for _, key := range []string{"server.addr", "redis.url", "features.cache.max_bytes", "redis.breaker.max_backoff", "decision_log.file.path"} {
		if _, ok := seen[envName(key)]; !ok {
			t.Errorf("no variable for %s", key)
		}
	}
}

func TestEnvSetsKeysByType(t *testing.T) {
	cfg := defaultConfig()
	err := applyEnv(&cfg, mapLookup(map[string]string{
		"TOUCHPOINT_SERVER_ADDR":                 "127.0.0.1:9090",
		"TOUCHPOINT_FEATURES_CACHE_MAX_BYTES":    "1048576",
		"TOUCHPOINT_DECISION_LOG_SAMPLE":         "0.25",
		"TOUCHPOINT_RULES_REQUIRE_PASSING_TESTS": "false",
		"TOUCHPOINT_REDIS_BREAKER_SPAN":          "2500ms",
		"TOUCHPOINT_SERVER_CORS_ALLOWED_ORIGINS": "https://a.example, https://b.example,",
		"TOUCHPOINT_RULES_RANDOM_SEED":           "7",
		"TOUCHPOINT_REDIS_URL":                   "",
		"TOUCHPOINT_LOG_LEVEL":                   "debug",
		"TOUCHPOINT_TRACING_HEADERS":             "x-api-key=k=1, x-team = growth,",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := defaultConfig()
	want.Server.Addr = "127.0.0.1:9090"
	want.Features.Cache.MaxBytes = 1 << 20
	want.DecisionLog.Sample = 0.25
	want.Rules.RequirePassingTests = false
	want.Redis.Breaker.Span = 2500 * time.Millisecond
	want.Server.CORS.AllowedOrigins = []string{"https://a.example", "https://b.example"}
	want.Rules.RandomSeed = 7
	want.Log.Level = "debug"
	want.Tracing.Headers = map[string]string{"x-api-key": "k=1", "x-team": "growth"}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
	}
}

// A bad value is an error naming the variable and its key; every bad
// value is reported, not just the first.
func TestEnvBadValuesNameTheVariable(t *testing.T) {
	bad := map[string]string{
		"TOUCHPOINT_SERVER_READ_TIMEOUT":           "5",
		"TOUCHPOINT_SERVER_MAX_BODY_BYTES":         "64k",
		"TOUCHPOINT_RULES_REQUIRE_PASSING_TESTS":   "yes please",
		"TOUCHPOINT_DECISION_LOG_SAMPLE":           "NaN",
		"TOUCHPOINT_RULES_RANDOM_SEED":             "-1",
		"TOUCHPOINT_DECISION_LOG_FILE_MAX_SIZE_MB": "99999999999999999999",
		"TOUCHPOINT_TRACING_HEADERS":               "x-api-key:secret",
	}
	cfg := defaultConfig()
	err := applyEnv(&cfg, mapLookup(bad))
	if err == nil {
		t.Fatal("bad values accepted")
	}
	for name := range bad {
		if !strings.Contains(err.Error(), name+" (") {
			t.Errorf("the error does not name %s: %v", name, err)
		}
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("the error repeats a header's value: %v", err)
	}
	if !strings.Contains(err.Error(), "server.read_timeout") {
		t.Errorf("the error does not name the key: %v", err)
	}
}

func TestAdminKeyAlias(t *testing.T) {
	const key = "alias-admin-key-0123456789"
	cfg := defaultConfig()
	if err := applyEnv(&cfg, mapLookup(map[string]string{"TOUCHPOINT_ADMIN_KEY": key})); err != nil || cfg.Server.AdminKey != key {
		t.Fatalf("TOUCHPOINT_ADMIN_KEY: admin key %q, err %v", cfg.Server.AdminKey, err)
	}
	cfg = defaultConfig()
	if err := applyEnv(&cfg, mapLookup(map[string]string{"TOUCHPOINT_ADMIN_KEY": key, "TOUCHPOINT_SERVER_ADMIN_KEY": key})); err != nil || cfg.Server.AdminKey != key {
		t.Fatalf("both, equal: admin key %q, err %v", cfg.Server.AdminKey, err)
	}
	cfg = defaultConfig()
	err := applyEnv(&cfg, mapLookup(map[string]string{"TOUCHPOINT_ADMIN_KEY": key, "TOUCHPOINT_SERVER_ADMIN_KEY": key + "x"}))
	if err == nil || !strings.Contains(err.Error(), "TOUCHPOINT_ADMIN_KEY and TOUCHPOINT_SERVER_ADMIN_KEY") {
		t.Fatalf("two different admin keys: %v", err)
	}
	if strings.Contains(err.Error(), key) {
		t.Errorf("the error shows the key: %v", err)
	}
}

// Variables override the file, and the file the defaults.
func TestEnvOverridesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "touchpoint.yaml")
	if err := os.WriteFile(path, []byte("server:\n  addr: \":7000\"\n  read_timeout: 3s\nlog:\n  level: warn\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfigEnv(path, true, mapLookup(map[string]string{"TOUCHPOINT_SERVER_ADDR": ":7001"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Addr != ":7001" || cfg.Server.ReadTimeout != 3*time.Second || cfg.Log.Level != "warn" ||
		cfg.Server.WriteTimeout != defaultConfig().Server.WriteTimeout {
		t.Errorf("addr %q, read_timeout %v, log.level %q, write_timeout %v", cfg.Server.Addr, cfg.Server.ReadTimeout, cfg.Log.Level, cfg.Server.WriteTimeout)
	}
	_, err = loadConfigEnv(path, true, mapLookup(map[string]string{"TOUCHPOINT_SERVER_WRITE_TIMEOUT": "soon"}))
	if err == nil || !strings.Contains(err.Error(), "invalid environment: TOUCHPOINT_SERVER_WRITE_TIMEOUT (server.write_timeout)") {
		t.Errorf("bad variable: %v", err)
	}
}

func TestUnknownEnvIsFound(t *testing.T) {
	got := unknownEnv([]string{"TOUCHPOINT_SERVER_ADRR=:1", "TOUCHPOINT_SERVER_ADDR=:2", "TOUCHPOINT_ADMIN_KEY=x",
		"TOUCHPOINT_DECISION_LOG_KEY=y", "TOUCHPOINT_WEBHOOK_SECRET=z", "HOME=/", "TOUCHPOINTX=1"},
		map[string]bool{"TOUCHPOINT_WEBHOOK_SECRET": true})
	if !reflect.DeepEqual(got, []string{"TOUCHPOINT_SERVER_ADRR"}) {
		t.Errorf("unknown = %v", got)
	}
}

// The table in README.md is the one config env --markdown writes, so the
// documentation lists every variable; go test -run TestREADMEListsEveryVariable
// -update-readme rewrites it.
func TestREADMEListsEveryVariable(t *testing.T) {
	const begin, end = "<!-- env table: touchpoint config env --markdown -->\n", "<!-- end of env table -->\n"
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	i, j := bytes.Index(readme, []byte(begin)), bytes.Index(readme, []byte(end))
	if i < 0 || j < i {
		t.Fatalf("README.md has no %q … %q section", strings.TrimSpace(begin), strings.TrimSpace(end))
	}
	var table bytes.Buffer
	writeEnvTable(&table)
	got := readme[i+len(begin) : j]
	if bytes.Equal(got, table.Bytes()) {
		return
	}
	if *updateREADME {
		out := append(append(append([]byte(nil), readme[:i+len(begin)]...), table.Bytes()...), readme[j:]...)
		if err := os.WriteFile("../../README.md", out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's variable table differs from touchpoint config env --markdown (rerun with -update-readme):\n%s", table.String())
}

func TestConfigEnvListsVariables(t *testing.T) {
	out, errOut, code := runCLI("config", "env")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, v := range envVars() {
		if !strings.Contains(out, v.Name+" ") || !strings.Contains(out, v.Key) {
			t.Errorf("config env does not list %s (%s)", v.Name, v.Key)
		}
	}
	if !strings.Contains(out, "TOUCHPOINT_SERVER_ADDR") || !strings.Contains(out, ":8080") {
		t.Errorf("config env does not show server.addr's default:\n%s", out)
	}
}

// The real binary: a variable sets a key (a small body limit answers 413),
// a flag overrides a variable (an address that cannot be listened on is
// replaced by --addr), and a bad variable stops the start naming itself.
func TestServeReadsTheEnvironment(t *testing.T) {
	dir := workspace(t)
	s := startServerEnv(t, dir, []string{"TOUCHPOINT_SERVER_MAX_BODY_BYTES=200", "TOUCHPOINT_SERVER_ADDR=not an address"})
	big := `{"customer_id":"c-000042","placements":[{"id":"cart_banner"}],"context":{"channel":"web","page":"/cart` + strings.Repeat("x", 300) + `"}}`
	resp, err := client.Post(s.base+"/v1/decide", "application/json", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a 300-byte body with TOUCHPOINT_SERVER_MAX_BODY_BYTES=200: status %d, want 413", resp.StatusCode)
	}
	if code, _, body, err := s.decide(`{"customer_id":"c-000042","placements":[{"id":"cart_banner"}],"context":{"channel":"web"}}`); err != nil || code != 200 {
		t.Errorf("small decide: %d %s %v", code, body, err)
	}

	// --log-level bogus keeps the command from serving should the variable
	// ever be ignored.
	t.Setenv("TOUCHPOINT_SERVER_READ_TIMEOUT", "5")
	_, errOut, code := runCLI("serve", "--log-level", "bogus", "--config", filepath.Join(dir, "none.yaml"), "--rules", filepath.Join(dir, "rules"),
		"--schema", filepath.Join(dir, "features.yaml"), "--customers", filepath.Join(dir, "customers.jsonl"))
	if code == 0 || !strings.Contains(errOut, "TOUCHPOINT_SERVER_READ_TIMEOUT (server.read_timeout)") {
		t.Errorf("a bad variable: exit %d, %s", code, errOut)
	}
}
