// Package engine owns the decision path: it binds a customer's features and
// the request context, evaluates the compiled ruleset, arbitrates between
// eligible touchpoints per placement and renders their content. It also owns
// the live ruleset snapshot, swapped atomically on reload.
package engine

import (
	"context"
	"errors"

	"github.com/rs/zerolog"

	"github.com/touchpoint-dev/touchpoint/features"
)

// FeatureSource is all the engine needs from a feature store.
type FeatureSource interface {
	Lookup(ctx context.Context, customerID string) (*features.Record, error)
	Ping(ctx context.Context) error
}

// Config says where the ruleset comes from.
type Config struct {
	RulesDir   string `yaml:"dir"`
	SchemaPath string `yaml:"schema"`
}

// DefaultConfig serves the demo ruleset shipped in configs/.
func DefaultConfig() Config {
	return Config{RulesDir: "configs/rules", SchemaPath: "configs/features.yaml"}
}

// Validate reports a config that cannot work.
func (c Config) Validate() error {
	if c.RulesDir == "" {
		return errors.New("rules.dir must be set")
	}
	if c.SchemaPath == "" {
		return errors.New("rules.schema must be set")
	}
	return nil
}

// Engine decides. It is safe for concurrent use.
type Engine struct {
	cfg Config
	src FeatureSource
	log zerolog.Logger
}

// New loads the ruleset once; a broken ruleset at start is an error.
func New(cfg Config, src FeatureSource, log zerolog.Logger) (*Engine, error) {
	return nil, errors.New("engine: not implemented yet")
}

// Reload parses and compiles the ruleset again and swaps it in. On failure
// the old ruleset keeps serving and the error is kept for Status.
func (e *Engine) Reload() error { return errors.New("engine: not implemented yet") }

// Watch reloads when files in the rules directory or the schema change,
// until ctx is cancelled.
func (e *Engine) Watch(ctx context.Context) error { <-ctx.Done(); return nil }

// Status describes the ruleset being served.
func (e *Engine) Status() Status { return Status{} }

// Ready reports whether a ruleset is loaded and the feature store answers.
func (e *Engine) Ready(ctx context.Context) error { return errors.New("engine: not implemented yet") }

// RuleErrors counts run-time expression failures per rule.
func (e *Engine) RuleErrors() []RuleErrorCount { return nil }

// Decide answers req into d (reset first). A *RequestError reports a client
// mistake; no other error is returned for a well-formed request.
func (e *Engine) Decide(ctx context.Context, req *Request, d *Decision) error {
	return errors.New("engine: not implemented yet")
}

type scratch struct{}
