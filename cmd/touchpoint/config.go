package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"

	"github.com/touchpoint-dev/touchpoint/decisionlog"
	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/features/redisstore"
	"github.com/touchpoint-dev/touchpoint/internal/yamlalias"
	"github.com/touchpoint-dev/touchpoint/server"
	"github.com/touchpoint-dev/touchpoint/tracing"
	"github.com/touchpoint-dev/touchpoint/triggers"
)

const defaultConfigPath = "configs/touchpoint.yaml"

// config is configs/touchpoint.yaml: one section per package, each
// validated by the package that owns it.
type config struct {
	Server   server.Config  `yaml:"server"`
	Rules    engine.Config  `yaml:"rules"`
	Features featuresConfig `yaml:"features"`
	// Redis, when its url is set, replaces the embedded store: features,
	// counters, consent and budgets are shared by every node.
	Redis redisstore.Config `yaml:"redis"`
	// DecisionLog records decisions for evaluation and attribution; off
	// unless enabled.
	DecisionLog decisionlog.Config `yaml:"decision_log"`
	// Triggers tunes how due triggers are claimed and sent.
	Triggers triggers.Config `yaml:"triggers"`
	// Tracing sends OpenTelemetry spans of decides to a collector; off
	// unless enabled.
	Tracing tracing.Config `yaml:"tracing"`
	Log     logConfig      `yaml:"log"`
}

type featuresConfig struct {
	// Customers is the JSON Lines file the embedded store serves; empty
	// serves no known customers.
	Customers string               `yaml:"customers"`
	Cache     features.CacheConfig `yaml:"cache"`
	// Overlay bounds what the embedded store keeps of the API's writes
	// (event ids, features, consent, counters); Redis ignores it.
	Overlay features.OverlayConfig `yaml:"overlay"`
	// AnonymousPrefixes are customer id prefixes of visitors who cannot be
	// in the store; they are decided without a lookup.
	AnonymousPrefixes []string `yaml:"anonymous_prefixes"`
}

type logConfig struct {
	Level string `yaml:"level"`
}

func defaultConfig() config {
	return config{
		Server:      server.DefaultConfig(),
		Rules:       engine.DefaultConfig(),
		Features:    featuresConfig{Customers: "configs/demo/customers.jsonl", Cache: features.DefaultCacheConfig(), Overlay: features.DefaultOverlayConfig()},
		Redis:       embeddedByDefault(redisstore.DefaultConfig()),
		DecisionLog: decisionlog.DefaultConfig(),
		Triggers:    triggers.DefaultConfig(),
		Tracing:     tracing.DefaultConfig(),
		Log:         logConfig{Level: "info"},
	}
}

func (c config) validate() error {
	var errs []error
	if err := c.Server.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Triggers.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Rules.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Features.Cache.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Features.Overlay.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Redis.URL != "" {
		if err := c.Redis.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.DecisionLog.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Tracing.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.DecisionLog.Enabled && c.DecisionLog.RedisStream.Key != "" && c.Redis.URL == "" {
		errs = append(errs, errors.New("decision_log.redis_stream writes through the redis section: set redis.url (or --redis)"))
	}
	if _, err := zerolog.ParseLevel(c.Log.Level); err != nil || c.Log.Level == "" {
		errs = append(errs, fmt.Errorf("log.level must be one of debug, info, warn, error; got %q", c.Log.Level))
	}
	return errors.Join(errs...)
}

var unknownFieldRe = regexp.MustCompile(`field (\S+) not found in type (\S+)`)

// loadConfigEnv is loadConfig and then the environment variables that
// lookup finds, over the file (see applyEnv). Flags, applied by the
// caller, override both.
func loadConfigEnv(path string, required bool, lookup func(string) (string, bool)) (config, error) {
	cfg, err := loadConfig(path, required)
	if err != nil {
		return cfg, err
	}
	if err := applyEnv(&cfg, lookup); err != nil {
		return cfg, fmt.Errorf("invalid environment: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return cfg, nil
}

// loadConfig reads the file over the defaults, rejecting unknown keys so a
// typo is an error at start rather than a silent default.
func loadConfig(path string, required bool) (config, error) {
	cfg := defaultConfig()
	data, err := os.ReadFile(path)
	if err != nil {
		if !required && errors.Is(err, os.ErrNotExist) {
			return cfg, nil
		}
		return cfg, fmt.Errorf("cannot load config from %q: %w", path, err)
	}
	// Aliases first, on the node tree: decoding into structs would expand
	// them, and a few nested ones expand to gigabytes.
	if err := yamlalias.Check(path, data); err != nil {
		return cfg, fmt.Errorf("cannot load config from %q: %w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
		msg = unknownFieldRe.ReplaceAllString(msg, "unknown key $1 (in $2)")
		msg = strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", "; ")), " ")
		return cfg, fmt.Errorf("cannot load config from %q: %s", path, msg)
	}
	return cfg, nil
}

// embeddedByDefault keeps Redis's defaults for when a url is given but
// leaves the url empty, so the demo runs on the embedded store.
func embeddedByDefault(c redisstore.Config) redisstore.Config {
	c.URL = ""
	return c
}
