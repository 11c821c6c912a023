package redisstore

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config configures a Store. Field names in errors are the YAML keys under
// "redis".
type Config struct {
	// URL names the Redis deployment:
	//
	//	redis://[user:password@]host:6379[/db]       standalone
	//	rediss://…                                    the same over TLS
	//	redis+cluster://host1:7000,host2:7001          Cluster (rediss+cluster:// for TLS)
	//	host1:7000,host2:7001                         an address list: Cluster when more than one
	//
	// A URL with several hosts is a Cluster whatever its scheme. A missing
	// port means 6379. Query parameters are not accepted; use the fields
	// below. Give the password in Password or PasswordFile rather than in
	// the URL, which ends up in logs, process lists and manifests; a
	// password in both places is an error.
	URL string `yaml:"url"`
	// Password authenticates to Redis (AUTH, as the URL's user or the
	// default user). Set it from the environment, TOUCHPOINT_REDIS_PASSWORD,
	// rather than in a config file.
	Password string `yaml:"password"`
	// PasswordFile is a file holding the password, read once when the
	// store opens; a trailing newline is not part of it. For secrets
	// mounted as files.
	PasswordFile string `yaml:"password_file"`
	// LookupTimeout bounds one Lookup, the round trip on the decision path.
	LookupTimeout time.Duration `yaml:"lookup_timeout"`
	// WriteTimeout bounds every other call (writes, budgets, Ping) and is the
	// socket timeout for calls without a deadline of their own.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// DialTimeout bounds opening one connection.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// PoolSize is the number of connections per Redis node; zero means ten
	// per CPU.
	PoolSize int `yaml:"pool_size"`
	// MinIdleConns keeps this many connections per node open, so a lookup
	// after a quiet spell does not pay for a dial.
	MinIdleConns int `yaml:"min_idle_conns"`
	// EventTTL is how long an event id is remembered; a batch retried later
	// than that counts again.
	EventTTL time.Duration `yaml:"event_ttl"`
	// CounterDays is how many days of counters are kept.
	CounterDays int `yaml:"counter_days"`
	// InvalidationChannel is the pub/sub channel writes announce changed
	// customers on. Every node sharing the data must use the same one.
	InvalidationChannel string `yaml:"invalidation_channel"`
	// Breaker configures the circuit breaker around Redis calls.
	Breaker BreakerConfig `yaml:"breaker"`
}

// BreakerConfig configures the circuit breakers, one for lookups and one
// for writes, so a lookup timeout cannot refuse writes that would succeed.
type BreakerConfig struct {
	// Failures is how many calls in a row must fail to open a breaker.
	// Connection failures (refused, reset, no connection to be had) and
	// replies that Redis cannot serve open it by their number alone.
	Failures int `yaml:"failures"`
	// Span is how long calls must have kept failing, without one success,
	// before timeouts open a breaker: a single slow lookup only degrades
	// its own decision, and a stall of this process that times out every
	// call in flight at once is not an outage.
	Span time.Duration `yaml:"span"`
	// Backoff is how long the breaker stays open before it lets one probe
	// through; each failed probe doubles it, up to MaxBackoff.
	Backoff    time.Duration `yaml:"backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// DefaultConfig returns the configuration used when none is given, for a
// Redis on localhost.
func DefaultConfig() Config {
	return Config{
		URL:                 "redis://localhost:6379/0",
		LookupTimeout:       5 * time.Millisecond,
		WriteTimeout:        time.Second,
		DialTimeout:         time.Second,
		MinIdleConns:        4,
		EventTTL:            30 * 24 * time.Hour,
		CounterDays:         400,
		InvalidationChannel: "tp:invalidate",
		Breaker: BreakerConfig{
			Failures:   5,
			Span:       time.Second,
			Backoff:    500 * time.Millisecond,
			MaxBackoff: 30 * time.Second,
		},
	}
}

// Validate reports every invalid field, named as in the YAML configuration.
func (c Config) Validate() error {
	var errs []error
	if t, err := parseURL(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("redis.url: %w", err))
	} else if t.password != "" && (c.Password != "" || c.PasswordFile != "") {
		errs = append(errs, errors.New("redis.url holds a password and redis.password or redis.password_file gives one too; give it once, preferably not in the URL"))
	}
	if c.Password != "" && c.PasswordFile != "" {
		errs = append(errs, errors.New("redis.password and redis.password_file are both set; give one"))
	}
	positive := func(name string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("redis.%s must be positive, got %v", name, d))
		}
	}
	positive("lookup_timeout", c.LookupTimeout)
	positive("write_timeout", c.WriteTimeout)
	positive("dial_timeout", c.DialTimeout)
	if c.EventTTL < time.Second {
		errs = append(errs, fmt.Errorf("redis.event_ttl must be at least 1s, got %v", c.EventTTL))
	}
	if c.PoolSize < 0 {
		errs = append(errs, fmt.Errorf("redis.pool_size must not be negative, got %d", c.PoolSize))
	}
	if c.MinIdleConns < 0 {
		errs = append(errs, fmt.Errorf("redis.min_idle_conns must not be negative, got %d", c.MinIdleConns))
	}
	if c.CounterDays <= 0 {
		errs = append(errs, fmt.Errorf("redis.counter_days must be positive, got %d", c.CounterDays))
	}
	if c.InvalidationChannel == "" {
		errs = append(errs, errors.New("redis.invalidation_channel must not be empty"))
	}
	if c.Breaker.Failures <= 0 {
		errs = append(errs, fmt.Errorf("redis.breaker.failures must be positive, got %d", c.Breaker.Failures))
	}
	positive("breaker.span", c.Breaker.Span)
	positive("breaker.backoff", c.Breaker.Backoff)
	if c.Breaker.MaxBackoff < c.Breaker.Backoff {
		errs = append(errs, fmt.Errorf("redis.breaker.max_backoff must be at least redis.breaker.backoff (%v), got %v",
			c.Breaker.Backoff, c.Breaker.MaxBackoff))
	}
	return errors.Join(errs...)
}

// maxPasswordFile bounds what PasswordFile may hold: a password, not a
// file named by mistake.
const maxPasswordFile = 4 << 10

// target parses URL and adds the password from Password or PasswordFile.
func (c Config) target() (target, error) {
	t, err := parseURL(c.URL)
	if err != nil {
		return t, fmt.Errorf("redis.url: %w", err)
	}
	switch {
	case c.Password != "":
		t.password = c.Password
	case c.PasswordFile != "":
		f, err := os.Open(c.PasswordFile)
		if err != nil {
			return t, fmt.Errorf("redis.password_file: %w", err)
		}
		defer f.Close()
		b := make([]byte, maxPasswordFile+1)
		n, err := io.ReadFull(f, b)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return t, fmt.Errorf("redis.password_file: %w", err)
		}
		if n > maxPasswordFile {
			return t, fmt.Errorf("redis.password_file: %s holds more than %d bytes; is it the password?", c.PasswordFile, maxPasswordFile)
		}
		t.password = strings.TrimRight(string(b[:n]), "\r\n")
		if t.password == "" {
			return t, fmt.Errorf("redis.password_file: %s is empty", c.PasswordFile)
		}
	}
	return t, nil
}

// RedactedURL is URL with any password replaced, for logs.
func (c Config) RedactedURL() string {
	scheme, rest, ok := strings.Cut(c.URL, "://")
	if !ok {
		return c.URL
	}
	authority, _, _ := strings.Cut(rest, "/")
	at := strings.LastIndexByte(authority, '@')
	if at < 0 {
		return c.URL
	}
	user, _, hasPassword := strings.Cut(authority[:at], ":")
	if !hasPassword {
		return c.URL
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}

// target is a parsed URL, with the password the configuration gives.
type target struct {
	addrs              []string
	cluster            bool
	tls                *tls.Config
	username, password string
	db                 int
}

// parseURL reads the forms Config.URL documents. go-redis parses each
// URL (ParseURL, and ParseClusterURL for a Cluster); what is ours is the
// list of hosts, which net/url cannot hold, and the +cluster schemes.
// Errors never repeat the URL, which may hold a password.
func parseURL(raw string) (target, error) {
	var t target
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return t, errors.New("is required")
	}
	scheme, rest, hasScheme := strings.Cut(raw, "://")
	if !hasScheme {
		scheme, rest = "redis", raw
	}
	switch scheme {
	case "redis", "rediss":
	case "redis+cluster", "rediss+cluster":
		t.cluster = true
		scheme = strings.TrimSuffix(scheme, "+cluster")
	default:
		return t, fmt.Errorf("unsupported scheme %q (want redis, rediss, redis+cluster or rediss+cluster)", scheme)
	}
	if strings.ContainsAny(rest, "?#") {
		return t, errors.New("query parameters and fragments are not supported; set the redis.* fields instead")
	}
	authority, path, _ := strings.Cut(rest, "/")
	userinfo := ""
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		userinfo, authority = authority[:at+1], authority[at+1:]
	}
	var hosts []string
	for h := range strings.SplitSeq(authority, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			return t, fmt.Errorf("empty host in %q", authority)
		}
		// go-redis would take a missing host for localhost; a typo
		// should not connect somewhere.
		host, _, _ := strings.Cut(h, ":")
		if strings.HasPrefix(h, "[") {
			host, _, _ = strings.Cut(h[1:], "]")
		}
		if host == "" {
			return t, fmt.Errorf("missing host in %q", h)
		}
		o, err := redis.ParseURL(scheme + "://" + h)
		if err != nil {
			return t, urlError(err)
		}
		if _, port, err := net.SplitHostPort(o.Addr); err != nil {
			return t, fmt.Errorf("invalid host %q", h)
		} else if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
			return t, fmt.Errorf("invalid port in %q", h)
		}
		hosts = append(hosts, o.Addr)
	}
	if len(hosts) > 1 {
		t.cluster = true
	}
	if !t.cluster {
		o, err := redis.ParseURL(scheme + "://" + userinfo + hosts[0] + "/" + path)
		if err != nil {
			return t, urlError(err)
		}
		if o.DB < 0 {
			return t, fmt.Errorf("invalid database number %d", o.DB)
		}
		t.addrs, t.username, t.password, t.db = []string{o.Addr}, o.Username, o.Password, o.DB
		if o.TLSConfig != nil {
			t.tls = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.TLSConfig.ServerName}
		}
		return t, nil
	}
	if path != "" && path != "0" {
		if db, err := strconv.Atoi(path); err != nil || db < 0 {
			return t, fmt.Errorf("invalid database number %q", path)
		}
		return t, fmt.Errorf("a Cluster has only database 0, got %s", path)
	}
	q := url.Values{"addr": hosts[1:]}
	o, err := redis.ParseClusterURL(scheme + "://" + userinfo + hosts[0] + "?" + q.Encode())
	if err != nil {
		return t, urlError(err)
	}
	t.addrs, t.username, t.password = o.Addrs, o.Username, o.Password
	if scheme == "rediss" {
		// Each node is verified against the host name it is dialled by.
		t.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return t, nil
}

// urlError is a parse error without the URL, which may hold a password.
func urlError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("invalid URL: %s", strings.TrimPrefix(ue.Err.Error(), "net/url: "))
	}
	return errors.New(strings.TrimPrefix(err.Error(), "redis: "))
}
