package features

import (
	"context"
	"maps"
	"sync"
	"time"
)

// Overlay makes a read-only store writable in this process: features put
// through the API, consent, erasures and event counters are kept in memory
// on top of the base store. It is the embedded setting's system of record —
// one node, kept until restart — and implements Store, Writer and Budgets.
// Several nodes need a shared store (Redis) instead.
type Overlay struct {
	base     Store
	onChange func(customerID string)
	budgets  *MemoryBudgets

	mu        sync.RWMutex
	customers map[string]*overlayCustomer
	seen      map[string]time.Time // event ids already counted, for idempotency
	seenLimit int
}

type overlayCustomer struct {
	erased   bool
	values   map[string]Value
	counters map[counterKey]int64
	consent  map[string]Consent
}

type counterKey struct {
	event, subject string
	day            int32
}

// eventMemory is how long an event id is remembered; a client retrying a
// batch later than that would be counted again.
const eventMemory = 24 * time.Hour

// NewOverlay wraps base. onChange, if not nil, is called after every write
// with the customer's id, so caches can drop the old record.
func NewOverlay(base Store, onChange func(customerID string)) *Overlay {
	return &Overlay{base: base, onChange: onChange, budgets: NewMemoryBudgets(),
		customers: map[string]*overlayCustomer{}, seen: map[string]time.Time{}, seenLimit: 1 << 20}
}

// Lookup merges the overlay over the base record.
func (o *Overlay) Lookup(ctx context.Context, id string) (*Record, error) {
	o.mu.RLock()
	oc := o.customers[id]
	var rec *Record
	if oc != nil {
		if oc.erased && oc.values == nil && len(oc.counters) == 0 && oc.consent == nil {
			o.mu.RUnlock()
			return nil, nil
		}
		rec = &Record{ID: id, Values: map[string]Value{}}
		maps.Copy(rec.Values, oc.values)
		for k, n := range oc.counters {
			rec.Counters = append(rec.Counters, Counter{Event: k.event, Subject: k.subject, Day: k.day, Count: n})
		}
		if oc.consent != nil {
			rec.Consent = maps.Clone(oc.consent)
		}
	}
	erased := oc != nil && oc.erased
	o.mu.RUnlock()
	if erased {
		return rec, nil
	}
	base, err := o.base.Lookup(ctx, id)
	if err != nil || rec == nil {
		return base, err
	}
	if base != nil {
		for k, v := range base.Values {
			if _, ok := rec.Values[k]; !ok {
				rec.Values[k] = v
			}
		}
	}
	return rec, nil
}

// Ping checks the base store.
func (o *Overlay) Ping(ctx context.Context) error { return o.base.Ping(ctx) }

func (o *Overlay) customer(id string) *overlayCustomer {
	oc := o.customers[id]
	if oc == nil {
		oc = &overlayCustomer{}
		o.customers[id] = oc
	}
	return oc
}

func (o *Overlay) changed(id string) {
	if o.onChange != nil {
		o.onChange(id)
	}
}

// PutFeatures merges values over the customer's features.
func (o *Overlay) PutFeatures(_ context.Context, id string, values map[string]Value) error {
	o.mu.Lock()
	oc := o.customer(id)
	if oc.values == nil {
		oc.values = map[string]Value{}
	}
	maps.Copy(oc.values, values)
	o.mu.Unlock()
	o.changed(id)
	return nil
}

// PutConsent merges per-channel consent.
func (o *Overlay) PutConsent(_ context.Context, id string, consent map[string]Consent) error {
	o.mu.Lock()
	oc := o.customer(id)
	if oc.consent == nil {
		oc.consent = map[string]Consent{}
	}
	maps.Copy(oc.consent, consent)
	o.mu.Unlock()
	o.changed(id)
	return nil
}

// Erase forgets the customer: the base record is hidden and everything the
// overlay held is dropped.
func (o *Overlay) Erase(_ context.Context, id string) error {
	o.mu.Lock()
	o.customers[id] = &overlayCustomer{erased: true}
	o.mu.Unlock()
	o.changed(id)
	return nil
}

// ApplyEvents counts each event id once.
func (o *Overlay) ApplyEvents(_ context.Context, events []Event) (int, error) {
	now := time.Now()
	applied := 0
	touched := map[string]bool{}
	o.mu.Lock()
	if len(o.seen)+len(events) > o.seenLimit {
		for id, at := range o.seen {
			if now.Sub(at) > eventMemory {
				delete(o.seen, id)
			}
		}
	}
	for _, ev := range events {
		if _, dup := o.seen[ev.ID]; dup {
			continue
		}
		o.seen[ev.ID] = now
		oc := o.customer(ev.CustomerID)
		if oc.counters == nil {
			oc.counters = map[counterKey]int64{}
		}
		day := Day(ev.Time)
		for _, subject := range Subjects(ev.Touchpoint, ev.Kind, ev.Rule, ev.Channel) {
			oc.counters[counterKey{ev.Type, subject, day}]++
		}
		applied++
		touched[ev.CustomerID] = true
	}
	o.mu.Unlock()
	for id := range touched {
		o.changed(id)
	}
	return applied, nil
}

// ReserveDecisions counts a decision for every limit if all have room.
func (o *Overlay) ReserveDecisions(_ context.Context, id string, day int32, limits []DecisionLimit) (bool, error) {
	o.mu.Lock()
	oc := o.customer(id)
	if oc.counters == nil {
		oc.counters = map[counterKey]int64{}
	}
	for _, l := range limits {
		var n int64
		for d := day - int32(l.Days) + 1; d <= day; d++ {
			n += oc.counters[counterKey{EventDecision, l.Subject, d}]
		}
		if n >= l.Count {
			o.mu.Unlock()
			return false, nil
		}
	}
	for _, l := range limits {
		oc.counters[counterKey{EventDecision, l.Subject, day}]++
	}
	o.mu.Unlock()
	o.changed(id)
	return true, nil
}

// Consume draws on in-process budgets.
func (o *Overlay) Consume(ctx context.Context, touchpoint string, day int32, total, perDay int64) (bool, error) {
	return o.budgets.Consume(ctx, touchpoint, day, total, perDay)
}
