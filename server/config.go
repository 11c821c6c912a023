package server

import (
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"time"
)

// Config is the HTTP server section of the service configuration.
type Config struct {
	// Addr is the TCP address to listen on.
	Addr string `yaml:"addr"`
	// MaxBodyBytes caps a decide request body; larger bodies get 413.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// MaxEventsBodyBytes caps a POST /v1/events body; larger bodies get
	// 413. The default holds a batch of 1,000 events several times over.
	MaxEventsBodyBytes int `yaml:"max_events_body_bytes"`
	// MaxInflightDecides bounds the decides in flight: those being served
	// and the requests waiting for a CPU (see admission). A decide beyond
	// it is answered 503 overloaded at once, before its body is decoded.
	// Zero means 32 per GOMAXPROCS, resolved when the server starts.
	MaxInflightDecides int `yaml:"max_inflight_decides"`
	// ReadTimeout bounds reading one request (headers and body).
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing one response.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout is how long a keep-alive connection may wait for its next request.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// ShutdownGrace is how long in-flight requests may take to finish once
	// the listener is closed.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// DrainDelay keeps accepting requests for this long after shutdown starts,
	// with /readyz answering 503, so load balancers stop routing here before
	// the listener closes. Zero closes the listener at once.
	DrainDelay time.Duration `yaml:"drain_delay"`
	// AdminKey is the bearer token for /admin/; empty disables the admin API.
	AdminKey string `yaml:"admin_key"`
	// CORS says which browser origins may call /v1/decide.
	CORS CORSConfig `yaml:"cors"`
}

// CORSConfig is the cross-origin policy for /v1/decide.
type CORSConfig struct {
	// AllowedOrigins lists origins such as "https://shop.example.com", or is
	// exactly ["*"] to allow any origin.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// MaxAge is how long browsers may cache a preflight answer.
	MaxAge time.Duration `yaml:"max_age"`
}

// Limits that Validate enforces. They guard against configurations that
// would let one request hold large amounts of memory or that browsers ignore.
const (
	minAdminKeyLen        = 16
	maxBodyBytesCap       = 8 << 20
	maxCORSMaxAge         = 24 * time.Hour
	maxInflightDecidesCap = 1 << 20
	// inflightPerProc sizes the default in-flight bound. Requests waiting
	// for a CPU count, so the bound is also how many decides' worth of
	// queueing an admitted decide may meet per CPU: 32 keeps that to a few
	// milliseconds with a ruleset of 1,000 rules, and lets a decide waiting
	// on a shared store share the CPU with as many others (README,
	// Overload).
	inflightPerProc = 32
)

// DefaultConfig returns settings suited to a decide API answering in well
// under a millisecond: short read/write timeouts, long keep-alives.
func DefaultConfig() Config {
	return Config{
		Addr:               ":8080",
		MaxBodyBytes:       64 << 10,
		MaxEventsBodyBytes: 1 << 20,
		ReadTimeout:        5 * time.Second,
		WriteTimeout:       5 * time.Second,
		IdleTimeout:        90 * time.Second,
		ShutdownGrace:      10 * time.Second,
		CORS:               CORSConfig{MaxAge: 10 * time.Minute},
	}
}

// inflightLimit is MaxInflightDecides with zero resolved to its default for
// this process.
func (c Config) inflightLimit() int {
	if c.MaxInflightDecides > 0 {
		return c.MaxInflightDecides
	}
	return inflightPerProc * runtime.GOMAXPROCS(0)
}

// Validate reports every setting that cannot work, joined into one error.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if strings.TrimSpace(c.Addr) == "" {
		bad("server.addr must be set")
	}
	if c.MaxBodyBytes <= 0 || c.MaxBodyBytes > maxBodyBytesCap {
		bad("server.max_body_bytes must be between 1 and %d, got %d", maxBodyBytesCap, c.MaxBodyBytes)
	}
	if c.MaxEventsBodyBytes <= 0 || c.MaxEventsBodyBytes > maxBodyBytesCap {
		bad("server.max_events_body_bytes must be between 1 and %d, got %d", maxBodyBytesCap, c.MaxEventsBodyBytes)
	}
	if c.MaxInflightDecides < 0 || c.MaxInflightDecides > maxInflightDecidesCap {
		bad("server.max_inflight_decides must be between 1 and %d, or 0 for %d per GOMAXPROCS; got %d",
			maxInflightDecidesCap, inflightPerProc, c.MaxInflightDecides)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"read_timeout", c.ReadTimeout},
		{"write_timeout", c.WriteTimeout},
		{"idle_timeout", c.IdleTimeout},
		{"shutdown_grace", c.ShutdownGrace},
	} {
		if d.v <= 0 {
			bad("server.%s must be positive, got %s", d.name, d.v)
		}
	}
	if c.DrainDelay < 0 {
		bad("server.drain_delay must not be negative, got %s", c.DrainDelay)
	}
	if c.AdminKey != "" {
		if len(c.AdminKey) < minAdminKeyLen {
			bad("server.admin_key must be at least %d characters (or empty to disable the admin API)", minAdminKeyLen)
		}
		if strings.ContainsAny(c.AdminKey, " \t\r\n") {
			bad("server.admin_key must not contain whitespace")
		}
	}
	if err := c.CORS.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c CORSConfig) validate() error {
	var errs []error
	if c.MaxAge < 0 || c.MaxAge > maxCORSMaxAge {
		errs = append(errs, fmt.Errorf("server.cors.max_age must be between 0 and %s, got %s", maxCORSMaxAge, c.MaxAge))
	}
	for i, o := range c.AllowedOrigins {
		if o == "*" {
			if len(c.AllowedOrigins) != 1 {
				errs = append(errs, errors.New(`server.cors.allowed_origins: "*" must be the only entry`))
			}
			continue
		}
		if err := validateOrigin(o); err != nil {
			errs = append(errs, fmt.Errorf("server.cors.allowed_origins[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// validateOrigin accepts what a browser sends in the Origin header:
// scheme://host[:port] and nothing else, so that exact matching works.
func validateOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil {
		return fmt.Errorf("origin %q: %w", o, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("origin %q must start with http:// or https://", o)
	}
	if u.Host == "" || u.User != nil {
		return fmt.Errorf("origin %q must be scheme://host[:port]", o)
	}
	if u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return fmt.Errorf("origin %q must not have a path, query or fragment (drop any trailing slash)", o)
	}
	return nil
}
