package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/touchpoint-dev/touchpoint/internal/redistest"
)

// A Redis that requires a password: serve reaches it with the URL and the
// password from the environment, or the password from a file, and refuses
// to start with a wrong one, saying why.
func TestServeAuthenticatesToRedis(t *testing.T) {
	const password = "e2e-redis-password-0123456789"
	redis := redistest.StartWithPassword(t, password)
	dir := budgetWorkspace(t)

	s := startServerEnv(t, dir, []string{"TOUCHPOINT_REDIS_URL=" + redis.URL(), "TOUCHPOINT_REDIS_PASSWORD=" + password})
	if !strings.Contains(s.logs.String(), `"store":"redis"`) {
		t.Fatalf("not serving from Redis:\n%s", s.logs.String())
	}
	code, d, body, err := s.decide(`{"customer_id":"c-1","placements":[{"id":"banner"}],"context":{"channel":"web"}}`)
	if err != nil || code != 200 || len(d.Placements["banner"]) != 1 || d.Placements["banner"][0].Touchpoint != "coupon" {
		t.Fatalf("decide: %d %s %v", code, body, err)
	}
	// The budget was consumed in Redis, so the password was used.
	if got, err := redis.Do("GET", "tp:budget:{coupon}"); err != nil || got != "1" {
		t.Errorf("the coupon's budget in Redis: %q, %v; want 1", got, err)
	}
	if strings.Contains(s.logs.String(), password) {
		t.Error("the log shows the Redis password")
	}

	file := filepath.Join(t.TempDir(), "redis-password")
	if err := os.WriteFile(file, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	startServerEnv(t, dir, []string{"TOUCHPOINT_REDIS_URL=" + redis.URL(), "TOUCHPOINT_REDIS_PASSWORD_FILE=" + file})

	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"wrong password", []string{"TOUCHPOINT_REDIS_PASSWORD=not-the-password"}, "refused the credentials"},
		{"no password", nil, "refused the credentials"},
		{"password in the URL and apart", []string{"TOUCHPOINT_REDIS_URL=redis://:" + password + "@" + redis.Addr() + "/0",
			"TOUCHPOINT_REDIS_PASSWORD=" + password}, "give it once"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Should serve start after all, the context ends it.
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary, "serve", "--config", filepath.Join(dir, "none.yaml"), "--addr", "127.0.0.1:0",
				"--rules", filepath.Join(dir, "rules"), "--schema", filepath.Join(dir, "features.yaml"))
			cmd.Env = append(os.Environ(), "TOUCHPOINT_REDIS_URL="+redis.URL())
			cmd.Env = append(cmd.Env, tc.env...)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("serve started:\n%s", out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("serve's error does not say %q:\n%s", tc.want, out)
			}
			if strings.Contains(string(out), password) {
				t.Errorf("the output shows the password:\n%s", out)
			}
		})
	}
}
