package server

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
}

func TestConfigYAML(t *testing.T) {
	const doc = `
addr: ":9090"
max_body_bytes: 32768
read_timeout: 2s
shutdown_grace: 15s
drain_delay: 5s
admin_key: "0123456789abcdef0123"
cors:
  allowed_origins: ["https://shop.example.com", "http://localhost:3000"]
  max_age: 5m
`
	cfg := DefaultConfig()
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	if cfg.Addr != ":9090" || cfg.MaxBodyBytes != 32768 || cfg.ReadTimeout != 2*time.Second ||
		cfg.ShutdownGrace != 15*time.Second || cfg.DrainDelay != 5*time.Second || cfg.CORS.MaxAge != 5*time.Minute ||
		len(cfg.CORS.AllowedOrigins) != 2 || cfg.AdminKey != "0123456789abcdef0123" {
		t.Errorf("cfg = %+v", cfg)
	}
	// Unset keys keep their defaults.
	if cfg.WriteTimeout != DefaultConfig().WriteTimeout || cfg.IdleTimeout != DefaultConfig().IdleTimeout {
		t.Errorf("defaults lost: %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no addr", func(c *Config) { c.Addr = "" }, "server.addr"},
		{"zero body", func(c *Config) { c.MaxBodyBytes = 0 }, "max_body_bytes"},
		{"huge body", func(c *Config) { c.MaxBodyBytes = 1 << 30 }, "max_body_bytes"},
		{"zero events body", func(c *Config) { c.MaxEventsBodyBytes = 0 }, "max_events_body_bytes"},
		{"huge events body", func(c *Config) { c.MaxEventsBodyBytes = 1 << 30 }, "max_events_body_bytes"},
		{"negative in-flight bound", func(c *Config) { c.MaxInflightDecides = -1 }, "max_inflight_decides"},
		{"huge in-flight bound", func(c *Config) { c.MaxInflightDecides = 1 << 30 }, "max_inflight_decides"},
		{"no read timeout", func(c *Config) { c.ReadTimeout = 0 }, "read_timeout"},
		{"negative grace", func(c *Config) { c.ShutdownGrace = -time.Second }, "shutdown_grace"},
		{"negative drain", func(c *Config) { c.DrainDelay = -time.Second }, "drain_delay"},
		{"short admin key", func(c *Config) { c.AdminKey = "secret" }, "admin_key"},
		{"origin with path", func(c *Config) { c.CORS.AllowedOrigins = []string{"https://shop.example.com/"} }, "allowed_origins[0]"},
		{"origin without scheme", func(c *Config) { c.CORS.AllowedOrigins = []string{"shop.example.com"} }, "allowed_origins[0]"},
		{"wildcard mixed", func(c *Config) { c.CORS.AllowedOrigins = []string{"*", "https://a.example"} }, `"*" must be the only entry`},
		{"max age", func(c *Config) { c.CORS.MaxAge = 48 * time.Hour }, "max_age"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mutate(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}

	// Every problem is reported at once.
	cfg := DefaultConfig()
	cfg.Addr, cfg.MaxBodyBytes = "", -1
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "addr") || !strings.Contains(err.Error(), "max_body_bytes") {
		t.Errorf("Validate() = %v, want both problems", err)
	}
}

// Zero in-flight bound means the default for this machine, never "refuse
// everything".
func TestInflightLimitDefault(t *testing.T) {
	cfg := DefaultConfig()
	if got, want := cfg.inflightLimit(), inflightPerProc*runtime.GOMAXPROCS(0); got != want {
		t.Errorf("inflightLimit() = %d, want %d", got, want)
	}
	cfg.MaxInflightDecides = 3
	if got := cfg.inflightLimit(); got != 3 {
		t.Errorf("inflightLimit() = %d, want 3", got)
	}
}
