package redisstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/internal/redistest"
)

// A Redis that requires a password is reached with the password from the
// configuration (as the environment sets it) or from a file, and a wrong
// or missing password fails Ping with ErrAuth rather than looking like an
// outage.
func TestPasswordAuthenticates(t *testing.T) {
	const password = "s3cret pass:word/with@signs"
	srv := redistest.StartWithPassword(t, password)
	dir := t.TempDir()
	file := filepath.Join(dir, "redis-password")
	if err := os.WriteFile(file, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrongFile := filepath.Join(dir, "wrong-password")
	if err := os.WriteFile(wrongFile, []byte("not it\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, tc := range []struct {
		name     string
		password string
		file     string
		ok       bool
	}{
		{name: "password", password: password, ok: true},
		{name: "password file, trailing newline trimmed", file: file, ok: true},
		{name: "wrong password", password: "not it"},
		{name: "wrong password file", file: wrongFile},
		{name: "no password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(srv.URL())
			cfg.Password, cfg.PasswordFile = tc.password, tc.file
			s := openStore(t, cfg)
			err := s.Ping(ctx)
			if tc.ok {
				if err != nil {
					t.Fatalf("Ping: %v", err)
				}
				// Not only PING: the store works.
				if err := s.PutFeatures(ctx, "c-1", map[string]features.Value{"tier": features.String("gold")}); err != nil {
					t.Fatalf("PutFeatures: %v", err)
				}
				rec, err := s.Lookup(ctx, "c-1")
				if err != nil || rec == nil {
					t.Fatalf("Lookup: %+v %v", rec, err)
				}
				if tier, _ := rec.Values.Get("tier"); tier.Str != "gold" {
					t.Fatalf("Lookup: %+v %v", rec, err)
				}
				return
			}
			if !errors.Is(err, ErrAuth) {
				t.Fatalf("Ping = %v; want ErrAuth", err)
			}
			t.Logf("Ping: %v", err)
			if strings.Contains(err.Error(), password) || (tc.password != "" && strings.Contains(err.Error(), tc.password)) {
				t.Errorf("the error shows a password: %v", err)
			}
		})
	}

}

func TestPasswordSources(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 10000), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, url, password, file, want string
	}{
		{name: "URL and password", url: "redis://:inurl@h:6379/0", password: "p", want: "give it once"},
		{name: "URL and file", url: "redis://u:inurl@h:6379/0", file: empty, want: "give it once"},
		{name: "password and file", url: "redis://h:6379/0", password: "p", file: empty, want: "both set"},
		{name: "missing file", url: "redis://h:6379/0", file: filepath.Join(dir, "nope"), want: "redis.password_file"},
		{name: "empty file", url: "redis://h:6379/0", file: empty, want: "is empty"},
		{name: "large file", url: "redis://h:6379/0", file: big, want: "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.URL, cfg.Password, cfg.PasswordFile = tc.url, tc.password, tc.file
			_, err := Open(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open = %v; want an error saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "inurl") {
				t.Errorf("the error shows the URL's password: %v", err)
			}
		})
	}
	// A user name in the URL and the password separately is the way to
	// use an ACL user.
	cfg := DefaultConfig()
	cfg.URL, cfg.Password = "redis://app@h:6379/0", "p"
	tg, err := cfg.target()
	if err != nil || tg.username != "app" || tg.password != "p" {
		t.Errorf("user in the URL, password apart: %+v, %v", tg, err)
	}
}

// A URL that does not parse is reported without the password in it.
func TestURLErrorsHideThePassword(t *testing.T) {
	for _, raw := range []string{"redis://u:hunter2@h:99x/0", "redis://u:hunter2@h:1/zz", "redis://u:hunter2@h:1/1/2",
		"redis+cluster://u:hunter2@h1:1,h2:x"} {
		_, err := parseURL(raw)
		if err == nil {
			t.Errorf("parseURL(%q) succeeded", raw)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("parseURL(%q) = %v, which shows the password", raw, err)
		}
	}
}
