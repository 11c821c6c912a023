package delivery_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/touchpoint-dev/touchpoint/delivery"
)

const testSecret = "0123456789abcdef-test-secret"

func validWebhookConfig() delivery.WebhookConfig {
	c := delivery.DefaultWebhookConfig()
	c.URL = "https://hooks.example.com/touchpoint"
	c.Secret = []byte(testSecret)
	return c
}

func TestDefaultWebhookConfigNeedsOnlyURLAndSecret(t *testing.T) {
	if err := validWebhookConfig().Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	err := delivery.DefaultWebhookConfig().Validate()
	for _, key := range []string{"webhook.url", "webhook.secret_env"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("DefaultWebhookConfig().Validate() = %v, want it to name %s", err, key)
		}
	}
}

func TestWebhookConfigYAML(t *testing.T) {
	const doc = `
url: http://localhost:9000/hook
timeout: 500ms
max_attempts: 3
backoff_base: 50ms
`
	cfg := delivery.DefaultWebhookConfig()
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("decode: %v", err)
	}
	want := delivery.DefaultWebhookConfig()
	want.URL, want.Timeout, want.MaxAttempts, want.BackoffBase = "http://localhost:9000/hook", 500*time.Millisecond, 3, 50*time.Millisecond
	if cfg.URL != want.URL || cfg.Timeout != want.Timeout || cfg.MaxAttempts != want.MaxAttempts ||
		cfg.BackoffBase != want.BackoffBase || cfg.BackoffMax != want.BackoffMax {
		t.Errorf("decoded %+v, want %+v", cfg, want)
	}
	// The secret comes from the environment, never from the file.
	dec = yaml.NewDecoder(strings.NewReader("secret: hunter2hunter2hunter2\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err == nil {
		t.Error("a secret in the YAML was accepted")
	}
}

func TestWebhookConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*delivery.WebhookConfig)
		want   string // in the error; empty for valid
	}{
		{"valid", func(*delivery.WebhookConfig) {}, ""},
		{"plain http", func(c *delivery.WebhookConfig) { c.URL = "http://10.0.0.7:8080/x?token=1" }, ""},
		{"no url", func(c *delivery.WebhookConfig) { c.URL = "" }, "webhook.url is required"},
		{"relative url", func(c *delivery.WebhookConfig) { c.URL = "/hooks/x" }, "webhook.url must be an absolute http or https URL"},
		{"other scheme", func(c *delivery.WebhookConfig) { c.URL = "ftp://example.com/x" }, "webhook.url must be an absolute http or https URL"},
		{"no host", func(c *delivery.WebhookConfig) { c.URL = "https:///x" }, "webhook.url must name a host"},
		{"port only", func(c *delivery.WebhookConfig) { c.URL = "http://:8080/x" }, "webhook.url must name a host"},
		{"opaque", func(c *delivery.WebhookConfig) { c.URL = "http:example.com" }, "webhook.url must name a host"},
		{"unparsable", func(c *delivery.WebhookConfig) { c.URL = "http://exa mple.com/" }, "webhook.url is not a URL"},
		{"no secret", func(c *delivery.WebhookConfig) { c.Secret = nil }, "webhook.secret_env must give a secret of at least 16 bytes"},
		{"short secret", func(c *delivery.WebhookConfig) { c.Secret = []byte("0123456789abcde") }, "got 15"},
		{"16-byte secret", func(c *delivery.WebhookConfig) { c.Secret = []byte("0123456789abcdef") }, ""},
		{"zero timeout", func(c *delivery.WebhookConfig) { c.Timeout = 0 }, "webhook.timeout must be between 1ms and 1m0s, got 0s"},
		{"sub-ms timeout", func(c *delivery.WebhookConfig) { c.Timeout = time.Microsecond }, "webhook.timeout"},
		{"1ms timeout", func(c *delivery.WebhookConfig) { c.Timeout = time.Millisecond }, ""},
		{"60s timeout", func(c *delivery.WebhookConfig) { c.Timeout = time.Minute }, ""},
		{"long timeout", func(c *delivery.WebhookConfig) { c.Timeout = time.Minute + time.Millisecond }, "webhook.timeout"},
		{"no attempts", func(c *delivery.WebhookConfig) { c.MaxAttempts = 0 }, "webhook.max_attempts must be between 1 and 20, got 0"},
		{"one attempt", func(c *delivery.WebhookConfig) { c.MaxAttempts = 1 }, ""},
		{"20 attempts", func(c *delivery.WebhookConfig) { c.MaxAttempts = 20 }, ""},
		{"21 attempts", func(c *delivery.WebhookConfig) { c.MaxAttempts = 21 }, "webhook.max_attempts"},
		{"zero base", func(c *delivery.WebhookConfig) { c.BackoffBase = 0 }, "webhook.backoff_base"},
		{"negative base", func(c *delivery.WebhookConfig) { c.BackoffBase = -time.Second }, "webhook.backoff_base"},
		{"max below base", func(c *delivery.WebhookConfig) { c.BackoffMax = 100 * time.Millisecond }, "webhook.backoff_max must be between webhook.backoff_base (200ms)"},
		{"max equals base", func(c *delivery.WebhookConfig) { c.BackoffMax = c.BackoffBase }, ""},
		{"huge max", func(c *delivery.WebhookConfig) { c.BackoffMax = 2 * time.Hour }, "webhook.backoff_max"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validWebhookConfig()
			tc.mutate(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestWebhookConfigValidateReportsEveryKey(t *testing.T) {
	err := delivery.WebhookConfig{URL: "nope", BackoffBase: time.Second}.Validate()
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	for _, key := range []string{"url", "secret_env", "timeout", "max_attempts", "backoff_max"} {
		if !strings.Contains(err.Error(), "webhook."+key) {
			t.Errorf("error does not name webhook.%s:\n%v", key, err)
		}
	}
}

func TestWebhookConfigHidesSecret(t *testing.T) {
	c := validWebhookConfig()
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		if out := strings.ToLower(fmt.Sprintf(format, c) + fmt.Sprintf(format, c.Secret)); strings.Contains(out, "test-secret") ||
			strings.Contains(out, "746573742d736563726574") { // hex of "test-secret"
			t.Errorf("%s prints the secret: %s", format, out)
		}
	}
}

func TestWebhookConfigURLErrorHidesPassword(t *testing.T) {
	c := validWebhookConfig()
	c.URL = "ftp://user:pa55word@example.com/"
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), "pa55word") {
		t.Errorf("Validate() = %v, want an error without the password", err)
	}
}

func TestBackoffCapDoublesUpToMax(t *testing.T) {
	c := validWebhookConfig()
	c.BackoffBase, c.BackoffMax = 200*time.Millisecond, 30*time.Second
	want := []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, 6400 * time.Millisecond, 12800 * time.Millisecond,
		25600 * time.Millisecond, 30 * time.Second, 30 * time.Second}
	for n, w := range want {
		if got := delivery.BackoffCap(c, n); got != w {
			t.Errorf("cap before retry %d = %s, want %s", n, got, w)
		}
	}
	// Far past the point where doubling would overflow.
	if got := delivery.BackoffCap(c, 200); got != c.BackoffMax {
		t.Errorf("cap before retry 200 = %s, want %s", got, c.BackoffMax)
	}
	c.BackoffMax = time.Hour
	if got := delivery.BackoffCap(c, 19); got != time.Hour {
		t.Errorf("cap before retry 19 with a 1h max = %s, want 1h", got)
	}
}

func TestMaxDuration(t *testing.T) {
	c := validWebhookConfig() // 6 attempts of 2s, 5 waits of at most 30s
	if got, want := c.MaxDuration(), 6*2*time.Second+5*30*time.Second; got != want {
		t.Errorf("MaxDuration() = %s, want %s", got, want)
	}
}
