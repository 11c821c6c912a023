package features

import (
	"context"
	"time"
)

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
}

// Subjects lists the counter subjects an event or decision about a
// touchpoint counts for.
func Subjects(touchpoint, kind, rule, channel string) []string {
	out := []string{"all", "tp:" + touchpoint}
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
	// is retried, and reports how many were new.
	ApplyEvents(ctx context.Context, events []Event) (applied int, err error)
	// CountDecisions counts a decision that issued touchpoints, for caps
	// that count decisions rather than impressions.
	CountDecisions(ctx context.Context, customerID string, subjects []string, at time.Time) error
}

// Budgets hands out a limited number of something (coupons) across every
// node: Consume succeeds at most total times ever and perDay times per day
// (zero means no limit of that kind).
type Budgets interface {
	Consume(ctx context.Context, touchpoint string, day int32, total, perDay int64) (bool, error)
}
