package delivery

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// WebhookConfig is a webhook delivery's section of the configuration.
// Errors from Validate name its keys as webhook.<key>; the caller adds
// where the section sits (which trigger).
type WebhookConfig struct {
	// URL receives every message as a POST; http or https.
	URL string `yaml:"url"`
	// Secret signs every message (see Sign). The caller resolves it from
	// the environment variable named by the secret_env key, so it never
	// sits in a configuration file.
	Secret Secret `yaml:"-" json:"-"`
	// Timeout bounds one attempt, from dialling to reading the response.
	Timeout time.Duration `yaml:"timeout"`
	// MaxAttempts is how many times a message is sent before it is
	// dead-lettered, the first included.
	MaxAttempts int `yaml:"max_attempts"`
	// BackoffBase and BackoffMax shape the wait before each retry: a random
	// time up to BackoffBase·2ⁿ before retry n (from 0), never above
	// BackoffMax, which also caps a receiver's Retry-After.
	BackoffBase time.Duration `yaml:"backoff_base"`
	BackoffMax  time.Duration `yaml:"backoff_max"`
}

// Secret is key material that prints as a placeholder, so logging a
// configuration does not leak it. A []byte converts to it implicitly.
type Secret []byte

// String hides the secret from %v, %s, %x and %q.
func (Secret) String() string { return "[secret]" }

// GoString hides the secret from %#v.
func (Secret) GoString() string { return "delivery.Secret(redacted)" }

// Limits Validate enforces.
const (
	// MinSecretBytes is the shortest webhook secret accepted: shorter keys
	// make the signature guessable.
	MinSecretBytes = 16

	minTimeout     = time.Millisecond
	maxTimeout     = time.Minute
	maxAttempts    = 20
	minBackoffBase = time.Millisecond
	// A wait longer than an hour is beyond any lease a firing would hold,
	// so it would only delay a duplicate.
	maxBackoff = time.Hour
)

// DefaultWebhookConfig returns the settings used for keys left out; URL
// and Secret have no default.
func DefaultWebhookConfig() WebhookConfig {
	return WebhookConfig{
		Timeout:     2 * time.Second,
		MaxAttempts: 6,
		BackoffBase: 200 * time.Millisecond,
		BackoffMax:  30 * time.Second,
	}
}

// Validate reports every setting that cannot work, joined into one error.
func (c WebhookConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := checkURL(c.URL); err != nil {
		bad("webhook.url %w", err)
	}
	if len(c.Secret) < MinSecretBytes {
		// Never the secret itself, only its length.
		bad("webhook.secret_env must give a secret of at least %d bytes (a webhook is always signed), got %d",
			MinSecretBytes, len(c.Secret))
	}
	if c.Timeout < minTimeout || c.Timeout > maxTimeout {
		bad("webhook.timeout must be between %s and %s, got %s", minTimeout, maxTimeout, c.Timeout)
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > maxAttempts {
		bad("webhook.max_attempts must be between 1 and %d, got %d", maxAttempts, c.MaxAttempts)
	}
	if c.BackoffBase < minBackoffBase || c.BackoffBase > maxBackoff {
		bad("webhook.backoff_base must be between %s and %s, got %s", minBackoffBase, maxBackoff, c.BackoffBase)
	}
	if c.BackoffMax < c.BackoffBase || c.BackoffMax > maxBackoff {
		bad("webhook.backoff_max must be between webhook.backoff_base (%s) and %s, got %s",
			c.BackoffBase, maxBackoff, c.BackoffMax)
	}
	return errors.Join(errs...)
}

// checkURL says what is wrong with a webhook URL, phrased to follow its
// key.
func checkURL(raw string) error {
	if raw == "" {
		return errors.New("is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("is not a URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("must be an absolute http or https URL, got %q", u.Redacted())
	}
	if u.Hostname() == "" {
		return fmt.Errorf("must name a host, got %q", u.Redacted())
	}
	return nil
}

// MaxDuration is the longest one Deliver can take when every attempt
// times out and every wait is the longest allowed, not counting the
// dead-letter sink. A firing's lease shorter than this may see the
// message sent again by another node while this one still retries.
func (c WebhookConfig) MaxDuration() time.Duration {
	if c.MaxAttempts < 1 {
		return 0
	}
	return time.Duration(c.MaxAttempts)*c.Timeout + time.Duration(c.MaxAttempts-1)*c.BackoffMax
}

// backoffCap is the longest wait before retry n (0 for the first):
// BackoffBase·2ⁿ, at most BackoffMax.
func (c WebhookConfig) backoffCap(n int) time.Duration {
	d := c.BackoffBase
	for range n {
		// Doubling stops at BackoffMax, so it cannot overflow.
		if d >= c.BackoffMax/2 {
			return c.BackoffMax
		}
		d *= 2
	}
	return min(d, c.BackoffMax)
}
