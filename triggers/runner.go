package triggers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/touchpoint-dev/touchpoint/delivery"
	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/rules"
)

// Config tunes how due firings are claimed and sent.
type Config struct {
	// Every is how often a node looks for due firings.
	Every time.Duration `yaml:"every"`
	// Lease is how long a claimed firing is this node's; one not done by
	// then (the node died) comes due again. It must outlast a delivery's
	// retries.
	Lease time.Duration `yaml:"lease"`
	// Workers decide and deliver firings at once, each one at a time.
	Workers int `yaml:"workers"`
	// TimeScale divides every trigger's delay, for demos and tests: 60
	// makes two hours two minutes. 1 is real time.
	TimeScale float64 `yaml:"time_scale"`
}

// DefaultConfig looks for due firings ten times a second, so a node's
// firings come in small batches rather than a burst each second, with four
// workers.
func DefaultConfig() Config {
	return Config{Every: 100 * time.Millisecond, Lease: 5 * time.Minute, Workers: 4, TimeScale: 1}
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.Every < time.Millisecond || c.Every > time.Minute {
		errs = append(errs, fmt.Errorf("triggers.every must be from 1ms to 1m, got %s", c.Every))
	}
	if c.Lease < time.Second || c.Lease > time.Hour {
		errs = append(errs, fmt.Errorf("triggers.lease must be from 1s to 1h, got %s", c.Lease))
	}
	if c.Workers < 1 || c.Workers > 256 {
		errs = append(errs, fmt.Errorf("triggers.workers must be from 1 to 256, got %d", c.Workers))
	}
	if c.TimeScale < 1 || c.TimeScale > 1e6 {
		errs = append(errs, fmt.Errorf("triggers.time_scale must be from 1 to 1000000, got %g", c.TimeScale))
	}
	return errors.Join(errs...)
}

// Decider is what the runner needs from the engine; *engine.Engine is one.
type Decider interface {
	Fire(ctx context.Context, trigger, customerID string, now time.Time, log bool, d *engine.Decision) (engine.Fired, error)
	Ruleset() *rules.Ruleset
}

// DecisionLog records the decisions triggers make, as it does decides';
// *decisionlog.Logger is one.
type DecisionLog interface {
	Log(req *engine.Request, d *engine.Decision, now time.Time) bool
}

// Deliverers gives the deliverer of a ruleset's delivery; the runner
// asks again when the delivery's settings change.
type Deliverers func(d rules.Delivery) (delivery.Deliverer, error)

// Stats counts what the runner did since it started.
type Stats struct {
	Scheduled, Cancelled, Fired, Delivered, Failed, Deferred uint64
	// Held counts firings that sent nothing, by engine.Held* reason.
	Held map[string]uint64
	// ScheduleFailures counts events whose triggers could not be queued.
	ScheduleFailures uint64
}

// Runner starts, cancels and fires triggers. Create it with New; Observe
// is called with every batch of applied events, and Run fires due
// triggers until its context ends.
type Runner struct {
	cfg        Config
	queue      Queue
	eng        Decider
	deliverers Deliverers
	dlog       DecisionLog
	log        zerolog.Logger
	now        func() time.Time

	mu     sync.Mutex
	cached map[string]cachedDeliverer

	scheduled, cancelled, fired, delivered, failed, deferred, scheduleFailures atomic.Uint64
	// rounds counts the times Run looked for due firings, for tests that
	// need to know it looked.
	rounds atomic.Uint64
	heldMu sync.Mutex
	held   map[string]uint64
}

type cachedDeliverer struct {
	def rules.Delivery
	d   delivery.Deliverer
}

// Option configures a Runner.
type Option func(*Runner)

// WithDecisionLog logs every decision a trigger makes.
func WithDecisionLog(l DecisionLog) Option { return func(r *Runner) { r.dlog = l } }

// WithClock replaces time.Now, for tests that move time themselves.
func WithClock(now func() time.Time) Option { return func(r *Runner) { r.now = now } }

// New returns a runner; cfg should have passed Validate.
func New(cfg Config, q Queue, eng Decider, deliverers Deliverers, log zerolog.Logger, opts ...Option) *Runner {
	r := &Runner{cfg: cfg, queue: q, eng: eng, deliverers: deliverers, now: time.Now,
		log: log.With().Str("component", "triggers").Logger(), cached: map[string]cachedDeliverer{}, held: map[string]uint64{}}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Observe starts and cancels triggers for the events ApplyEvents applied
// (Event.Applied): a retried event was observed the first time, and must
// not restart a trigger that may have fired since. Every event is tried;
// the error reports how many could not be queued.
func (r *Runner) Observe(ctx context.Context, events []features.Event) error {
	rs := r.eng.Ruleset()
	if len(rs.Triggers) == 0 {
		return nil
	}
	failures := 0
	var first error
	for i := range events {
		ev := &events[i]
		if !ev.Applied || ev.Touchpoint != "" {
			continue
		}
		starts, cancels := rs.TriggersOn(ev.Type)
		for _, ti := range cancels {
			if err := r.queue.Cancel(ctx, Key(rs.Triggers[ti].ID, ev.CustomerID)); err != nil {
				failures, first = failures+1, cmpErr(first, err)
				continue
			}
			r.cancelled.Add(1)
		}
		for _, ti := range starts {
			t := &rs.Triggers[ti]
			due := ev.Time.Add(time.Duration(float64(t.Delay) / r.cfg.TimeScale))
			if err := r.queue.Schedule(ctx, Key(t.ID, ev.CustomerID), due); err != nil {
				failures, first = failures+1, cmpErr(first, err)
				continue
			}
			r.scheduled.Add(1)
		}
	}
	if failures > 0 {
		r.scheduleFailures.Add(uint64(failures))
		return fmt.Errorf("cannot queue %d trigger changes: %w", failures, first)
	}
	return nil
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// Run fires due triggers until ctx is done, then waits for the firings in
// hand to finish or give up (their leases bring them back).
func (r *Runner) Run(ctx context.Context) error {
	work := make(chan Claim)
	var wg sync.WaitGroup
	for range r.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var d engine.Decision
			for c := range work {
				r.handle(ctx, c, &d)
			}
		}()
	}
	defer func() {
		close(work)
		wg.Wait()
	}()
	tick := time.NewTicker(r.cfg.Every)
	defer tick.Stop()
	for {
		claims, err := r.queue.Claim(ctx, r.now(), r.cfg.Lease, r.cfg.Workers*4)
		r.rounds.Add(1)
		if err != nil && ctx.Err() == nil {
			r.log.Warn().Err(err).Msg("cannot claim due triggers; trying again")
		}
		for _, c := range claims {
			select {
			case work <- c:
			case <-ctx.Done():
				return nil // the rest come due again when their leases end
			}
		}
		if len(claims) == r.cfg.Workers*4 {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// handle fires one claimed firing. A panic is a bug reached by some
// rule or delivery; it is logged and the firing left to its lease.
func (r *Runner) handle(ctx context.Context, c Claim, d *engine.Decision) {
	defer func() {
		if v := recover(); v != nil {
			r.failed.Add(1)
			r.log.Error().Str("firing", c.Key).Interface("panic", v).Str("stack", string(debug.Stack())).Msg("firing a trigger panicked")
		}
	}()
	trigger, customer, ok := strings.Cut(c.Key, "|")
	if !ok {
		r.queue.Done(ctx, c)
		return
	}
	now := r.now()
	fired, err := r.eng.Fire(ctx, trigger, customer, now, r.dlog != nil, d)
	if err != nil {
		r.failed.Add(1)
		r.log.Warn().Err(err).Str("trigger", trigger).Msg("cannot decide a trigger; it comes due again when its lease ends")
		return
	}
	r.fired.Add(1)
	if r.dlog != nil && fired.Held != engine.HeldUnknownTrigger {
		r.dlog.Log(&fired.Request, d, now)
	}
	switch fired.Held {
	case "":
	case engine.HeldQuietHours:
		if err := r.queue.Defer(ctx, c, fired.QuietUntil); err != nil {
			r.log.Warn().Err(err).Str("trigger", trigger).Msg("cannot defer a trigger past quiet hours")
			return
		}
		r.deferred.Add(1)
		return
	default:
		r.heldMu.Lock()
		r.held[fired.Held]++
		r.heldMu.Unlock()
		r.done(ctx, c)
		return
	}
	dv, err := r.deliverer(fired.Delivery)
	if err != nil {
		r.failed.Add(1)
		r.log.Error().Err(err).Str("trigger", trigger).Msg("cannot deliver a trigger")
		return
	}
	id := FiringID(c)
	body, err := message(id, trigger, fired, d, now)
	if err != nil {
		r.failed.Add(1)
		r.log.Error().Err(err).Str("trigger", trigger).Msg("cannot encode a triggered message")
		r.done(ctx, c)
		return
	}
	switch err := dv.Deliver(ctx, id, body); {
	case err == nil:
		r.delivered.Add(1)
	case errors.Is(err, delivery.ErrDeadLettered):
		r.failed.Add(1) // kept in the dead letters; sending it again is an operator's call
	default:
		// Stopped before it was accepted or dead-lettered: the lease
		// brings the firing back.
		r.failed.Add(1)
		return
	}
	r.done(ctx, c)
}

func (r *Runner) done(ctx context.Context, c Claim) {
	if err := r.queue.Done(ctx, c); err != nil {
		r.log.Warn().Err(err).Str("firing", c.Key).Msg("cannot mark a trigger done; it may fire again when its lease ends")
	}
}

// deliverer returns the deliverer of def, made again when its settings
// changed in a reload.
func (r *Runner) deliverer(def rules.Delivery) (delivery.Deliverer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.cached[def.ID]; ok && sameDelivery(c.def, def) {
		return c.d, nil
	}
	d, err := r.deliverers(def)
	if err != nil {
		return nil, fmt.Errorf("cannot set up delivery %s: %w", def.ID, err)
	}
	r.cached[def.ID] = cachedDeliverer{def: def, d: d}
	return d, nil
}

func sameDelivery(a, b rules.Delivery) bool {
	switch {
	case a.Webhook != nil && b.Webhook != nil:
		return *a.Webhook == *b.Webhook
	case a.Stream != nil && b.Stream != nil:
		return *a.Stream == *b.Stream
	}
	return false
}

// FiringID names a firing for the receiver to deduplicate by: the same
// trigger, customer and due time give the same id on every node and try.
func FiringID(c Claim) string {
	h := sha256.Sum256([]byte(c.Key + "|" + strconv.FormatInt(c.Due.UnixMilli(), 10)))
	return hex.EncodeToString(h[:12])
}

// Message is what a delivery receives.
type Message struct {
	ID         string        `json:"id"`
	Trigger    string        `json:"trigger"`
	CustomerID string        `json:"customer_id"`
	DecisionID string        `json:"decision_id"`
	Ruleset    string        `json:"ruleset"`
	Placement  string        `json:"placement"`
	Channel    string        `json:"channel"`
	FiredAt    time.Time     `json:"fired_at"`
	Items      []MessageItem `json:"items"`
}

// MessageItem is one touchpoint to send, with its rendered content.
type MessageItem struct {
	Touchpoint string          `json:"touchpoint"`
	Kind       string          `json:"kind"`
	Rule       string          `json:"rule"`
	Experiment string          `json:"experiment,omitempty"`
	Variant    string          `json:"variant,omitempty"`
	Content    json.RawMessage `json:"content"`
}

func message(id, trigger string, fired engine.Fired, d *engine.Decision, now time.Time) ([]byte, error) {
	m := Message{ID: id, Trigger: trigger, CustomerID: d.CustomerID, DecisionID: d.ID, Ruleset: d.Ruleset,
		Placement: fired.Placement, Channel: fired.Channel, FiredAt: now.UTC()}
	for _, it := range engine.SendItems(d) {
		m.Items = append(m.Items, MessageItem{Touchpoint: it.Touchpoint, Kind: it.Kind, Rule: it.Rule,
			Experiment: it.Experiment, Variant: it.Variant, Content: json.RawMessage(it.Content)})
	}
	return json.Marshal(m)
}

// Stats reports the runner's counters.
func (r *Runner) Stats() Stats {
	s := Stats{Scheduled: r.scheduled.Load(), Cancelled: r.cancelled.Load(), Fired: r.fired.Load(),
		Delivered: r.delivered.Load(), Failed: r.failed.Load(), Deferred: r.deferred.Load(),
		ScheduleFailures: r.scheduleFailures.Load(), Held: map[string]uint64{}}
	r.heldMu.Lock()
	for k, v := range r.held {
		s.Held[k] = v
	}
	r.heldMu.Unlock()
	return s
}

// Prepare makes the deliverer of every delivery the ruleset being served
// names, so that a delivery that cannot work stops the start rather than
// the first firing; the runner then uses those deliverers.
func (r *Runner) Prepare() error {
	for _, d := range r.eng.Ruleset().Deliveries {
		if _, err := r.deliverer(d); err != nil {
			return err
		}
	}
	return nil
}

// Pending counts firings waiting or claimed in the queue.
func (r *Runner) Pending(ctx context.Context) (int64, error) { return r.queue.Pending(ctx) }
