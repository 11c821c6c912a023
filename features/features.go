// Package features owns customer feature records: the Store interface the
// engine reads through, an embedded in-memory store loaded from JSON Lines,
// and the ristretto cache that fronts any store.
package features

import "context"

// Kind is the type of a feature value.
type Kind uint8

// Feature value kinds. They mirror the schema types number, string, bool and list.
const (
	KindMissing Kind = iota
	KindNumber
	KindString
	KindBool
	KindList
)

func (k Kind) String() string {
	switch k {
	case KindNumber:
		return "number"
	case KindString:
		return "string"
	case KindBool:
		return "bool"
	case KindList:
		return "list"
	}
	return "missing"
}

// Value is one typed feature value. Only the field selected by Kind is meaningful.
type Value struct {
	Kind Kind
	Num  float64
	Str  string
	Bool bool
	List []string
}

// Interface is the value as float64, string, bool or []string (nil for a
// value of no kind), for encoding outside the hot path.
func (v Value) Interface() any {
	switch v.Kind {
	case KindNumber:
		return v.Num
	case KindString:
		return v.Str
	case KindBool:
		return v.Bool
	case KindList:
		if v.List == nil {
			return []string{}
		}
		return v.List
	}
	return nil
}

// Number, String, Bool and List build values of each kind.
func Number(v float64) Value { return Value{Kind: KindNumber, Num: v} }
func String(v string) Value  { return Value{Kind: KindString, Str: v} }
func Bool(v bool) Value      { return Value{Kind: KindBool, Bool: v} }
func List(v ...string) Value { return Value{Kind: KindList, List: v} }

// Record is one customer's features. Records handed out by a Store are shared
// and must be treated as read-only.
//
// A store may return a Record without features (Values nil) for an id it
// keeps only counters or consent for: events can be reported for any id, and
// for a customer erased since. Such a customer is not known; see Known.
type Record struct {
	ID string
	// Values holds the customer's features; nil Values means the store has
	// none (empty, non-nil Values is a known customer with no features).
	Values Values
	// Counters and Consent come from the feedback loop (events, consent
	// updates); stores without one leave them empty.
	Counters []Counter
	Consent  map[string]Consent
}

// Known reports whether the store has features for the customer: a nil
// record (an id the store has nothing for) and one holding only counters or
// consent are not known. Counters and consent still apply to an unknown
// customer; "known" is what decisions report and what decision caps need.
func (r *Record) Known() bool { return r != nil && !r.Values.IsNil() }

// Store looks customers up by id. Lookup answers (nil, nil) for an unknown customer.
type Store interface {
	Lookup(ctx context.Context, customerID string) (*Record, error)
	Ping(ctx context.Context) error
}
