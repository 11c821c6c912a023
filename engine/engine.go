// Package engine owns the decision path: it binds a customer's features and
// the request context, evaluates the compiled ruleset, arbitrates between
// eligible touchpoints per placement and renders their content. It also owns
// the live ruleset snapshot, swapped atomically on reload, and the learning
// loop: experiment exposures and bandit posteriors kept in the store's
// tallies, and the decision id tags that attribute events to them.
package engine

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/rules"
)

// FeatureSource is all the engine needs from a feature store.
type FeatureSource interface {
	Lookup(ctx context.Context, customerID string) (*features.Record, error)
	Ping(ctx context.Context) error
}

// Tracer traces the stages of a decision: the feature lookup
// ("features.lookup") and the rules ("rules.evaluate", with the budget and
// cap writes they make). The engine calls it only when one was given
// (WithTracer), so an untraced decision pays a nil check. tracing.Tracer
// satisfies it.
type Tracer interface {
	// Start starts the stage's span as a child of the span in ctx and
	// returns ctx carrying it (or ctx itself, when nothing is recorded).
	Start(ctx context.Context, stage string) context.Context
	// End ends the span Start put in ctx; failed marks it failed.
	End(ctx context.Context, failed bool)
}

// Span names of the stages the engine traces.
const (
	StageFeatureLookup = "features.lookup"
	StageRules         = "rules.evaluate"
)

// Config says where the ruleset comes from and how long rules may run.
type Config struct {
	RulesDir   string `yaml:"dir"`
	SchemaPath string `yaml:"schema"`
	// DecideDeadline bounds the time one decision spends evaluating rules,
	// from the end of the feature lookup. Past it the remaining rules are
	// skipped and the answer is degraded (rule_deadline); if a suppress
	// rule was among them, nothing is offered. Zero means no deadline.
	DecideDeadline time.Duration `yaml:"decide_deadline"`
	// LearnEvery is how often experiment exposures are written to the
	// store and bandit posteriors read back from it.
	LearnEvery time.Duration `yaml:"learn_every"`
	// RequirePassingTests refuses a ruleset whose fixtures fail, at start
	// and on reload, as it refuses one that does not compile: marketers
	// rely on their tests.
	RequirePassingTests bool `yaml:"require_passing_tests"`
	// RandomSeed, when not 0, makes bandits choose reproducibly: each
	// decision draws from the seed and its sequence number on this node.
	// It is for simulations and tests; in production every node would
	// make the same choices in the same order.
	RandomSeed uint64 `yaml:"random_seed"`
}

// DefaultDecideDeadline is far above what rules normally take (the demo
// decides in microseconds, a 10,000-rule ruleset in milliseconds) and
// below the timeouts clients usually give a decide call, so it only cuts
// off rules gone wrong, even on a busy machine.
const DefaultDecideDeadline = 100 * time.Millisecond

// DefaultConfig serves the demo ruleset shipped in configs/.
func DefaultConfig() Config {
	return Config{RulesDir: "configs/rules", SchemaPath: "configs/features.yaml", DecideDeadline: DefaultDecideDeadline,
		LearnEvery: time.Second, RequirePassingTests: true}
}

// Validate reports a config that cannot work.
func (c Config) Validate() error {
	if c.RulesDir == "" {
		return errors.New("rules.dir must be set")
	}
	if c.SchemaPath == "" {
		return errors.New("rules.schema must be set")
	}
	if c.LearnEvery != 0 && (c.LearnEvery < 10*time.Millisecond || c.LearnEvery > time.Minute) {
		return fmt.Errorf("rules.learn_every must be between 10ms and 1m, got %s", c.LearnEvery)
	}
	if c.DecideDeadline < 0 {
		return fmt.Errorf("rules.decide_deadline must not be negative (0 means none), got %s", c.DecideDeadline)
	}
	return nil
}

// snapshot is what one request sees: a ruleset and the error counters of its
// rules. It is replaced whole on reload, never mutated.
type snapshot struct {
	rs         *rules.Ruleset
	ruleErrors []*atomic.Uint64 // aligned with rs.Rules
	learn      *learning
}

// Engine decides. It is safe for concurrent use.
type Engine struct {
	cfg     Config
	src     FeatureSource
	log     zerolog.Logger
	ids     idGenerator
	budgets features.Budgets // nil: budgeted touchpoints are never shown
	writer  features.Writer  // nil: decisions are not counted
	tracer  Tracer           // nil: decisions are not traced
	tallies features.Tallies // nil: experiments and bandits do not learn
	// anonymous holds id prefixes decided as unknown without a lookup.
	anonymous []string

	current atomic.Pointer[snapshot]

	// load compiles the ruleset; rules.Load except in tests.
	load func(dir, schemaPath string) (*rules.Ruleset, error)
	// costs counts what the limits on a decision's cost cut off.
	costs costs

	mu          sync.Mutex // serialises reloads and guards the fields below
	errCounters map[string]*atomic.Uint64
	lastError   string
	lastErrorAt time.Time
	reloads     uint64
	failed      uint64

	// learnMu guards retired, the replaced snapshots whose experiment
	// exposures Learn still flushes; learnNow asks Learn to read the
	// posteriors of a new snapshot at once.
	learnMu    sync.Mutex
	retired    []retiredSnapshot
	learnNow   chan struct{}
	learnStats struct{ flushed, flushFailures, refreshFailures atomic.Uint64 }
	// seed, when set, makes every random choice reproducible (tests,
	// simulations); seeds counts the generators made from it, and
	// sequence the decisions that drew from it.
	seed       uint64
	seeds      atomic.Uint64
	noLearning bool
	sequence   atomic.Uint64
}

// Option configures an Engine.
type Option func(*Engine)

// WithBudgets gives the engine the shared budgets that budgeted touchpoints
// draw on. Without it they are never shown.
func WithBudgets(b features.Budgets) Option { return func(e *Engine) { e.budgets = b } }

// WithAnonymousPrefixes names id prefixes that sites give visitors who are
// not customers (a cookie id such as "visitor-…"). Such ids are decided as
// unknown without a feature lookup: they cannot be in the store, and on a
// busy site they are most page views, so looking them up would only spend
// store round trips and cache room.
func WithAnonymousPrefixes(prefixes ...string) Option {
	return func(e *Engine) { e.anonymous = prefixes }
}

func (e *Engine) isAnonymous(id string) bool {
	for _, p := range e.anonymous {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}

// WithTallies gives the engine the shared counters its experiments and
// bandit placements learn from (see Learn).
func WithTallies(t features.Tallies) Option { return func(e *Engine) { e.tallies = t } }

// WithoutLearning decides as fixtures do, for replays of past traffic:
// no exposures are counted, decision ids carry no tags, and bandit
// placements rank by score rather than sample.
func WithoutLearning() Option { return func(e *Engine) { e.noLearning = true } }

// WithRandSeed makes the engine's random choices (bandits' sampling and
// their propensity estimates) reproducible, as Config.RandomSeed does.
func WithRandSeed(seed uint64) Option { return func(e *Engine) { e.seed = seed } }

// WithTracer traces every decision's stages with t.
func WithTracer(t Tracer) Option { return func(e *Engine) { e.tracer = t } }

// WithWriter lets the engine count decisions for caps that count decisions.
func WithWriter(w features.Writer) Option { return func(e *Engine) { e.writer = w } }

// withLoader replaces rules.Load, for tests that need loading to fail in
// ways real files cannot make it.
func withLoader(load func(dir, schemaPath string) (*rules.Ruleset, error)) Option {
	return func(e *Engine) { e.load = load }
}

// NewPreview returns an engine that decides with rs alone, as replays
// do (WithoutLearning), with no budgets and no writes: for comparing a
// draft with the ruleset being served. It never reloads.
func NewPreview(rs *rules.Ruleset, src FeatureSource, opts ...Option) *Engine {
	e := &Engine{
		cfg:         DefaultConfig(),
		src:         src,
		log:         zerolog.Nop(),
		errCounters: map[string]*atomic.Uint64{},
		load: func(string, string) (*rules.Ruleset, error) {
			return nil, errors.New("a preview engine decides with one ruleset and does not reload")
		},
		learnNow:   make(chan struct{}, 1),
		noLearning: true,
	}
	for _, o := range opts {
		o(e)
	}
	e.ids.init()
	e.install(rs)
	return e
}

// New loads the ruleset once; a broken ruleset at start is an error.
func New(cfg Config, src FeatureSource, log zerolog.Logger, opts ...Option) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:         cfg,
		src:         src,
		log:         log.With().Str("component", "engine").Logger(),
		errCounters: map[string]*atomic.Uint64{},
		load:        rules.Load,
		learnNow:    make(chan struct{}, 1),
		seed:        cfg.RandomSeed,
	}
	for _, o := range opts {
		o(e)
	}
	e.ids.init()
	rs, err := e.loadRules()
	if err != nil {
		var p *compilePanic
		if errors.As(err, &p) {
			e.logFailure(err, "cannot load the rules")
		}
		return nil, fmt.Errorf("cannot load rules from %q: %w", cfg.RulesDir, err)
	}
	e.install(rs)
	return e, nil
}

// loadRules compiles the ruleset, turning a panic into a *compilePanic
// error: rule files are written by people, and no mistake in them may
// take the server down.
func (e *Engine) loadRules() (rs *rules.Ruleset, err error) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		p := &compilePanic{value: v, stack: debug.Stack()}
		if wp, ok := v.(*rules.WorkerPanic); ok {
			p.value, p.stack = wp.Value, wp.Stack // where it happened, not where it was raised again
		}
		rs, err = nil, p
	}()
	rs, err = e.load(e.cfg.RulesDir, e.cfg.SchemaPath)
	if err != nil || !e.cfg.RequirePassingTests {
		return rs, err
	}
	return rs, failedFixtures(rs)
}

// failedFixtures is the ruleset's failing fixtures as load errors, or nil.
func failedFixtures(rs *rules.Ruleset) error {
	var list rules.ErrorList
	for _, r := range RunFixtures(rs) {
		if !r.Passed {
			f := r.Fixture
			owner := fixtureOwnerName(f)
			list = append(list, &rules.Error{File: f.File, Line: f.Line, Col: f.Col,
				Message: fmt.Sprintf("%s, test %q failed: %s (rules.require_passing_tests keeps a ruleset with failing tests from going live)", owner, f.Name, r.Problem)})
		}
	}
	if len(list) == 0 {
		return nil
	}
	return list
}

// compilePanic is a panic while compiling the rules: a bug in touchpoint
// that some rule file reached. Its stack goes to the log once.
type compilePanic struct {
	value any
	stack []byte
}

func (p *compilePanic) Error() string {
	return fmt.Sprintf("compiling the rules panicked: %v (a bug in touchpoint; the stack is in the log)", p.value)
}

// logFailure logs a failed load once, with the stack when it panicked.
func (e *Engine) logFailure(err error, msg string) {
	ev := e.log.Error().Str("error", err.Error())
	var p *compilePanic
	if errors.As(err, &p) {
		ev = ev.Str("stack", string(p.stack))
	}
	if cur := e.current.Load(); cur != nil {
		ev = ev.Str("serving", cur.rs.Version)
	}
	ev.Msg(msg)
}

// install swaps in a ruleset; the caller holds e.mu or is New.
func (e *Engine) install(rs *rules.Ruleset) {
	snap := &snapshot{rs: rs, ruleErrors: make([]*atomic.Uint64, len(rs.Rules)), learn: newLearning(rs, e.rand)}
	for i, r := range rs.Rules {
		c, ok := e.errCounters[r.ID]
		if !ok {
			c = new(atomic.Uint64)
			e.errCounters[r.ID] = c
		}
		snap.ruleErrors[i] = c
	}
	if old := e.current.Swap(snap); old != nil {
		e.retire(old)
	}
	e.log.Info().Str("ruleset", rs.Version).Int("rules", len(rs.Rules)).Int("touchpoints", len(rs.Touchpoints)).
		Int("warnings", len(rs.Warnings)).Msg("ruleset loaded")
	for _, w := range rs.Warnings {
		e.log.Warn().Str("ruleset", rs.Version).Msg(w.Error())
	}
}

// Reload parses and compiles the ruleset again and swaps it in. On failure
// the old ruleset keeps serving and the error is kept for Status.
func (e *Engine) Reload() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	rs, err := e.loadNoting()
	if err != nil {
		return fmt.Errorf("cannot load rules from %q: %w", e.cfg.RulesDir, err)
	}
	e.reloads++
	if e.current.Load().rs.Version == rs.Version {
		return nil // nothing changed; keep the warm snapshot
	}
	e.install(rs)
	return nil
}

// catchUp loads the rules once more and installs them if they changed
// since the ruleset being served was loaded. Watch calls it once its
// watches are in place: a change made between the first load and then
// sends no event the watcher sees, and would otherwise wait for the next.
func (e *Engine) catchUp() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if rs, err := e.loadNoting(); err == nil && e.current.Load().rs.Version != rs.Version {
		e.reloads++
		e.install(rs)
	}
}

// loadNoting loads the rules for a reload and keeps the outcome for
// Status: a failure is counted, logged and kept; a success clears it. The
// caller holds e.mu.
func (e *Engine) loadNoting() (*rules.Ruleset, error) {
	rs, err := e.loadRules()
	if err != nil {
		e.failed++
		e.lastError = err.Error()
		e.lastErrorAt = time.Now()
		e.logFailure(err, "ruleset reload failed; the previous ruleset keeps serving")
		return nil, err
	}
	e.lastError, e.lastErrorAt = "", time.Time{}
	return rs, nil
}

// Ruleset returns the ruleset being served.
func (e *Engine) Ruleset() *rules.Ruleset { return e.current.Load().rs }

// Status describes the ruleset being served.
func (e *Engine) Status() Status {
	rs := e.current.Load().rs
	e.mu.Lock()
	defer e.mu.Unlock()
	st := Status{
		Version:     rs.Version,
		LoadedAt:    rs.LoadedAt,
		Files:       rs.Files,
		Rules:       len(rs.Rules),
		Touchpoints: len(rs.Touchpoints),
		Placements:  len(rs.Placements),
		LastError:   e.lastError,
		LastErrorAt: e.lastErrorAt,
		Reloads:     e.reloads,
		FailedLoads: e.failed,

		ListsTruncated:   e.costs.listsTruncated.Load(),
		DeadlineExceeded: e.costs.deadlineExceeded.Load(),
		ExposuresFlushed: e.learnStats.flushed.Load(),
		FlushFailures:    e.learnStats.flushFailures.Load(),
		RefreshFailures:  e.learnStats.refreshFailures.Load(),
	}
	for _, w := range rs.Warnings {
		st.Warnings = append(st.Warnings, w.Error())
	}
	for _, m := range rs.Models {
		st.Models = append(st.Models, ModelStatus{ID: m.ID, Type: m.Type, Objective: m.Model.Objective, File: m.Path,
			Trees: m.Model.Trees, Inputs: len(m.Inputs), PerCandidate: m.PerCandidate})
	}
	return st
}

// Ready reports whether the engine can decide: a ruleset is loaded. A
// failing feature store does not make it unready, because decisions then
// degrade to context alone instead of failing.
func (e *Engine) Ready(ctx context.Context) error {
	if e.current.Load() == nil {
		return errors.New("no ruleset loaded")
	}
	return nil
}

// RuleErrors counts run-time expression failures per rule.
func (e *Engine) RuleErrors() []RuleErrorCount {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]RuleErrorCount, 0, len(e.errCounters))
	for id, c := range e.errCounters {
		if n := c.Load(); n > 0 {
			out = append(out, RuleErrorCount{Rule: id, Count: n})
		}
	}
	return out
}

// Decide answers req into d (reset first). A *RequestError reports a client
// mistake; no other error is returned for a well-formed request.
func (e *Engine) Decide(ctx context.Context, req *Request, d *Decision) error {
	snap := e.current.Load()
	rs := snap.rs
	if err := validate(rs, req); err != nil {
		return err
	}
	s := d.prepare(rs)
	var rec *features.Record
	if !e.isAnonymous(req.CustomerID) {
		var err error
		if e.tracer != nil {
			lctx := e.tracer.Start(ctx, StageFeatureLookup)
			rec, err = e.src.Lookup(lctx, req.CustomerID)
			e.tracer.End(lctx, err != nil)
		} else {
			rec, err = e.src.Lookup(ctx, req.CustomerID)
		}
		if err != nil {
			// Decide on context alone rather than fail the page view.
			rec = nil
			d.degrade(DegradedFeatureStore)
			e.log.Debug().Err(err).Msg("feature lookup failed; deciding on context alone")
		}
	}
	if req.Preview && req.WhatIf != nil {
		rec = req.WhatIf.apply(rs, req.CustomerID, rec)
	}
	d.ID = e.ids.next(&s.idBuf, req.arrival())
	if s.rng == nil {
		s.pcg = new(mrand.PCG)
		s.rng = mrand.New(s.pcg)
		e.seedRand(s.pcg, 0)
	}
	if e.seed != 0 {
		// Each decision's draws follow from the seed and its sequence
		// number, whichever buffers serve it.
		s.pcg.Seed(e.seed, e.sequence.Add(1))
	}
	s.effects = effects{ctx: ctx, budgets: e.budgets, writer: e.writer, learn: snap.learn}
	if e.noLearning || req.Preview {
		s.effects.learn = nil
	}
	s.effects.preview = req.Preview
	s.costs, s.deadline = &e.costs, e.cfg.DecideDeadline
	rulesDone := false
	if e.tracer != nil {
		// The rules' budget and cap writes are children of this span. It
		// ends however the rules end: after a panic in them, which the
		// server recovers, as failed.
		s.effects.ctx = e.tracer.Start(ctx, StageRules)
		defer func() { e.tracer.End(s.effects.ctx, !rulesDone) }()
	}
	run(rs, snap.ruleErrors, rec, req, d, &s.effects)
	s.finishLearning(d)
	rulesDone = true
	return nil
}

// costs counts what the limits on a decision's cost cut off.
type costs struct {
	listsTruncated   atomic.Uint64
	deadlineExceeded atomic.Uint64
}
