package tracing

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Config configures tracing. Field names in errors are the YAML keys under
// "tracing".
type Config struct {
	// Enabled turns tracing on. Off, nothing is traced and the decide path
	// pays one nil check.
	Enabled bool `yaml:"enabled"`
	// Endpoint is the OTLP/HTTP collector URL spans are posted to, as
	// protobuf. A URL without a path gets the standard /v1/traces.
	Endpoint string `yaml:"endpoint"`
	// SampleRatio is the share of new traces recorded, from 0 to 1. A
	// request that carries a traceparent follows its caller's decision
	// instead, so a trace sampled upstream is never cut in the middle.
	SampleRatio float64 `yaml:"sample_ratio"`
	// ServiceName names this service in the spans' resource.
	ServiceName string `yaml:"service_name"`
	// Headers are sent with every export, typically a collector's API key.
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds one export, and the flush of spans still queued when
	// the server stops.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultConfig is off, and when turned on posts one trace in a hundred to
// a collector on this host.
func DefaultConfig() Config {
	return Config{
		Endpoint:    "http://localhost:4318/v1/traces",
		SampleRatio: 0.01,
		ServiceName: "touchpoint",
		Timeout:     5 * time.Second,
	}
}

// Validate reports a config that cannot work. A disabled config is not
// checked beyond its types, so the section can be kept filled in and
// turned off.
func (c Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	var errs []error
	if _, err := c.endpointURL(); err != nil {
		errs = append(errs, err)
	}
	if !(c.SampleRatio >= 0 && c.SampleRatio <= 1) {
		errs = append(errs, fmt.Errorf("tracing.sample_ratio must be between 0 and 1, got %v", c.SampleRatio))
	}
	if strings.TrimSpace(c.ServiceName) == "" {
		errs = append(errs, errors.New("tracing.service_name must be set"))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("tracing.timeout must be positive, got %s", c.Timeout))
	}
	for k, v := range c.Headers {
		if k == "" || strings.ContainsAny(k, " \t\r\n:") {
			errs = append(errs, fmt.Errorf("tracing.headers: %q is not a header name", k))
		}
		if strings.ContainsAny(v, "\r\n") {
			errs = append(errs, fmt.Errorf("tracing.headers.%s: a value may not contain a line break", k))
		}
	}
	return errors.Join(errs...)
}

// endpointURL parses Endpoint, adding the standard path when it has none.
func (c Config) endpointURL() (string, error) {
	u, err := url.Parse(c.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("tracing.endpoint must be an http:// or https:// URL such as http://localhost:4318/v1/traces, got %q", c.Endpoint)
	}
	if u.User != nil {
		// Not echoed: the URL holds a secret.
		return "", errors.New("tracing.endpoint must not carry credentials; send them in tracing.headers")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("tracing.endpoint must not carry a query or fragment, got %q", c.Endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String(), nil
}
