package features

import (
	"context"
	"errors"
	"time"
)

// ErrNotApplied marks a failed write that the store knows changed nothing:
// the call was refused before it reached the store (a circuit breaker was
// open, no connection could be made). Stores wrap it into such errors; any
// other write error means the outcome is unknown, since the store may have
// applied the change before the answer was lost. Every Writer method is
// safe to retry either way (events count once per event id).
var ErrNotApplied = errors.New("nothing was applied")

// Event types a customer's feedback can carry, and the one a decision
// itself counts as when a cap counts decisions.
const (
	EventImpression = "impression"
	EventClick      = "click"
	EventConversion = "conversion"
	EventDismiss    = "dismiss"
	EventDecision   = "decision"
)

// Counter is how many events of one type a customer had about one subject
// on one day. Subjects are "tp:<touchpoint>", "rule:<rule>", "kind:<kind>",
// "channel:<channel>" and "all" (every touchpoint), so caps at each level
// read one counter series.
type Counter struct {
	Event   string
	Subject string
	Day     int32 // days since 1970-01-01 in UTC
	Count   int64
}

// Day returns the counter day of t.
func Day(t time.Time) int32 { return int32(t.UTC().Unix() / 86400) }

// Consent is a customer's answer for one channel, and when it was given.
type Consent struct {
	Granted bool
	At      time.Time
}

// Event is one validated feedback event. Kind, Rule and Channel are the
// subjects it also counts for besides its touchpoint; empty ones are skipped.
// A behavioural event (a cart update, a checkout) counts under its name for
// "all" and its channel, and changes features (Updates).
type Event struct {
	ID         string
	DecisionID string
	CustomerID string
	Touchpoint string
	Kind       string
	Rule       string
	Channel    string
	Type       string
	Value      float64
	Time       time.Time
	// Tallies are the shared counters the event adds to when it is new:
	// the experiment arm or bandit arm its decision attributed it to.
	Tallies []Tally
	// Updates are the feature changes of a behavioural event (Type is
	// then the event's name, and Touchpoint is empty), applied with the
	// event, atomically, when it is new.
	Updates []FeatureUpdate
	// Applied is set by Writer.ApplyEvents on the events it applied now,
	// not on those it had seen before: what follows from an event (a
	// trigger's start) must happen once, however often a batch is retried.
	Applied bool
}

// UpdateOp is how a behavioural event changes a feature.
type UpdateOp uint8

const (
	// UpdateSet sets the feature to Value.
	UpdateSet UpdateOp = iota + 1
	// UpdateAdd adds Value.Num to the feature's number, or to Base when
	// the customer has no number for it.
	UpdateAdd
)

// FeatureUpdate is one change a behavioural event makes to a feature.
type FeatureUpdate struct {
	Feature string
	Op      UpdateOp
	Value   Value
	// Base is what UpdateAdd adds to when the customer has no number for
	// the feature: the schema's default.
	Base float64
}

// Subjects lists the counter subjects an event or decision about a
// touchpoint counts for.
func Subjects(touchpoint, kind, rule, channel string) []string {
	out := []string{"all"}
	if touchpoint != "" {
		// Behavioural events are about no touchpoint.
		out = append(out, "tp:"+touchpoint)
	}
	if kind != "" {
		out = append(out, "kind:"+kind)
	}
	if rule != "" {
		out = append(out, "rule:"+rule)
	}
	if channel != "" {
		out = append(out, "channel:"+channel)
	}
	return out
}

// Writer changes customer state in the system of record. Every change
// reaches every node's cache (see Invalidator).
type Writer interface {
	// PutFeatures merges values into the customer's features, creating the
	// customer if needed.
	PutFeatures(ctx context.Context, customerID string, values map[string]Value) error
	// PutConsent merges per-channel consent.
	PutConsent(ctx context.Context, customerID string, consent map[string]Consent) error
	// Erase removes the customer's features, counters and consent.
	Erase(ctx context.Context, customerID string) error
	// ApplyEvents counts events, once per event ID however often a batch
	// is retried, and reports how many were new, marking them Applied (so
	// concurrent calls must not share a slice).
	ApplyEvents(ctx context.Context, events []Event) (applied int, err error)
	// ReserveDecisions is how caps that count decisions stay exact when
	// several nodes decide for one customer at once: it checks every limit
	// against the customer's decision counters and, only if all have room,
	// counts one decision for each of their subjects on day, atomically.
	ReserveDecisions(ctx context.Context, customerID string, day int32, limits []DecisionLimit) (bool, error)
}

// DecisionLimit is one cap counted on decisions: at most Count decisions
// about Subject within the Days days ending on the reserving day.
type DecisionLimit struct {
	Subject string
	Days    int
	Count   int64
}

// Budgets hands out a limited number of something (coupons) across every
// node: Consume succeeds at most total times ever and perDay times per day
// (zero means no limit of that kind).
type Budgets interface {
	Consume(ctx context.Context, touchpoint string, day int32, total, perDay int64) (bool, error)
}

// Invalidating wraps a Writer so that every successful write also drops
// the changed customers from this node's cache at once; stores notify the
// other nodes themselves, and this node would otherwise serve its own
// stale record until that notification arrives.
func Invalidating(w Writer, invalidate func(customerID string)) Writer {
	return &invalidating{Writer: w, invalidate: invalidate}
}

type invalidating struct {
	Writer
	invalidate func(string)
}

func (w *invalidating) PutFeatures(ctx context.Context, id string, values map[string]Value) error {
	err := w.Writer.PutFeatures(ctx, id, values)
	w.invalidate(id)
	return err
}

func (w *invalidating) PutConsent(ctx context.Context, id string, consent map[string]Consent) error {
	err := w.Writer.PutConsent(ctx, id, consent)
	w.invalidate(id)
	return err
}

func (w *invalidating) Erase(ctx context.Context, id string) error {
	err := w.Writer.Erase(ctx, id)
	w.invalidate(id)
	return err
}

func (w *invalidating) ApplyEvents(ctx context.Context, events []Event) (int, error) {
	n, err := w.Writer.ApplyEvents(ctx, events)
	for i := range events {
		w.invalidate(events[i].CustomerID)
	}
	return n, err
}

func (w *invalidating) ReserveDecisions(ctx context.Context, id string, day int32, limits []DecisionLimit) (bool, error) {
	ok, err := w.Writer.ReserveDecisions(ctx, id, day, limits)
	if ok {
		w.invalidate(id)
	}
	return ok, err
}
