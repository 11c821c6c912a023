package features

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// OverlayConfig bounds the memory the embedded store's overlay keeps for
// what the API writes. Every bound drops the oldest first.
type OverlayConfig struct {
	// MaxEventIDs is how many event ids are remembered so a retried batch
	// counts once. Beyond it the oldest are forgotten: a batch retried after
	// that many newer events counts again. Ids are kept as 16-byte digests,
	// about 60 bytes each with the index.
	MaxEventIDs int `yaml:"max_event_ids"`
	// MaxBytes bounds the estimated memory of the customers written through
	// the API (features, consent, counters). Beyond it the customers written
	// least recently are dropped: a customer from the customers file goes
	// back to its file features, any other becomes unknown, and an erased
	// customer stays erased.
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxCountersPerCustomer bounds the event counters one customer keeps
	// (one per event type, subject and day). Beyond it the oldest day's
	// counters are dropped; counters for a day no newer than every kept one
	// are not counted.
	MaxCountersPerCustomer int `yaml:"max_counters_per_customer"`
}

// DefaultOverlayConfig returns the configuration used when none is given:
// about 60 MiB for event ids and 64 MiB for customers.
func DefaultOverlayConfig() OverlayConfig {
	return OverlayConfig{MaxEventIDs: 1_000_000, MaxBytes: 64 << 20, MaxCountersPerCustomer: 2048}
}

// Validate reports every invalid field, named as in the YAML configuration.
func (c OverlayConfig) Validate() error {
	var errs []error
	if c.MaxEventIDs <= 0 {
		errs = append(errs, fmt.Errorf("overlay.max_event_ids must be positive, got %d", c.MaxEventIDs))
	}
	if c.MaxBytes <= 0 {
		errs = append(errs, fmt.Errorf("overlay.max_bytes must be positive, got %d", c.MaxBytes))
	}
	if c.MaxCountersPerCustomer <= 0 {
		errs = append(errs, fmt.Errorf("overlay.max_counters_per_customer must be positive, got %d", c.MaxCountersPerCustomer))
	}
	return errors.Join(errs...)
}

// OverlayStats describes what an Overlay holds and what its bounds dropped.
type OverlayStats struct {
	Customers        int    // customers with something written through the API
	Bytes            int64  // their estimated memory, bounded by MaxBytes
	ErasedCustomers  int    // customers of the base store erased and kept hidden
	EventIDs         int    // event ids remembered
	EvictedCustomers uint64 // customers dropped to stay within MaxBytes
	EvictedEventIDs  uint64 // event ids forgotten before their time to stay within MaxEventIDs
	DroppedCounters  uint64 // counters dropped or not counted to stay within MaxCountersPerCustomer
}

// Overlay makes a read-only store writable in this process: features put
// through the API, consent, erasures and event counters are kept in memory
// on top of the base store. It is the embedded setting's system of record —
// one node, kept until restart — and implements Store, Writer and Budgets.
// Several nodes need a shared store (Redis) instead.
//
// Its memory is bounded (see OverlayConfig), so a stream of events for ever
// new ids cannot grow it without limit; erasures of base customers are kept
// regardless, which the base store's size bounds.
type Overlay struct {
	base     Store
	onChange func(customerID string)
	budgets  *MemoryBudgets
	cfg      OverlayConfig
	now      func() time.Time
	// layouts are shared by the merged records Lookup returns, whose
	// strings point into the overlay's and the base store's memory.
	layouts *Layouts

	mu        sync.RWMutex
	customers map[string]*overlayCustomer
	// lru links customers from the most (lru.next) to the least (lru.prev)
	// recently written; it is the list's sentinel.
	lru    overlayCustomer
	bytes  int64
	erased map[string]struct{} // base customers erased: their base record stays hidden
	events eventSet
	// dropped lists customers evicted under mu, for unlock to report.
	dropped []string
	// tallies are the shared counters by scope and field; their number is
	// bounded by the ruleset (arms of experiments and bandit placements).
	tallies map[string]map[string]float64

	evictedCustomers, droppedCounters atomic.Uint64
}

type overlayCustomer struct {
	id         string
	prev, next *overlayCustomer
	bytes      int64 // the estimate counted in Overlay.bytes
	// otherBytes and counterBytes() make up the estimate: counters change
	// one at a time and their subjects are summed as they do; the rest is
	// measured on change.
	otherBytes, subjectBytes int64
	// values holds features written through the API; KindMissing entries
	// hide a base feature that was deleted.
	values   map[string]Value
	counters map[counterKey]int64
	minDay   int32 // the oldest day in counters, when it is not empty
	consent  map[string]Consent
}

type counterKey struct {
	event, subject string
	day            int32
}

// eventMemory is how long an event id is remembered at most; a client
// retrying a batch later than that would be counted again.
const eventMemory = 24 * time.Hour

// NewOverlay wraps base with the default bounds. onChange, if not nil, is
// called with a customer's id after every write, and after the bounds
// dropped what was written for the customer, so caches can drop the old
// record.
func NewOverlay(base Store, onChange func(customerID string)) *Overlay {
	o, err := NewBoundedOverlay(base, onChange, DefaultOverlayConfig())
	if err != nil {
		panic(err) // the defaults are valid
	}
	return o
}

// NewBoundedOverlay wraps base with the bounds of cfg.
func NewBoundedOverlay(base Store, onChange func(customerID string), cfg OverlayConfig) (*Overlay, error) {
	if base == nil {
		return nil, errors.New("cannot create the overlay: base store is nil")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cannot create the overlay: %w", err)
	}
	o := &Overlay{
		base: base, onChange: onChange, budgets: NewMemoryBudgets(), cfg: cfg, now: time.Now,
		customers: map[string]*overlayCustomer{},
		erased:    map[string]struct{}{},
		events:    newEventSet(cfg.MaxEventIDs),
		layouts:   newLayouts(true),
	}
	o.lru.next, o.lru.prev = &o.lru, &o.lru
	return o, nil
}

// Stats reports what the overlay holds.
func (o *Overlay) Stats() OverlayStats {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return OverlayStats{
		Customers:        len(o.customers),
		Bytes:            o.bytes,
		ErasedCustomers:  len(o.erased),
		EventIDs:         o.events.n,
		EvictedCustomers: o.evictedCustomers.Load(),
		EvictedEventIDs:  o.events.evicted,
		DroppedCounters:  o.droppedCounters.Load(),
	}
}

// Lookup merges the overlay over the base record. A customer is known when
// the base store has them (and they were not erased) or features were put
// for them; events alone give an unknown customer counters, not features.
func (o *Overlay) Lookup(ctx context.Context, id string) (*Record, error) {
	o.mu.RLock()
	oc := o.customers[id]
	_, erased := o.erased[id]
	var rec *Record
	var values map[string]Value
	if oc != nil {
		rec = &Record{ID: id}
		if len(oc.values) > 0 {
			values = maps.Clone(oc.values) // with deletion markers, removed below
		}
		if len(oc.counters) > 0 {
			rec.Counters = make([]Counter, 0, len(oc.counters))
			for k, n := range oc.counters {
				rec.Counters = append(rec.Counters, Counter{Event: k.event, Subject: k.subject, Day: k.day, Count: n})
			}
		}
		if oc.consent != nil {
			rec.Consent = maps.Clone(oc.consent)
		}
	}
	o.mu.RUnlock()
	var base *Record
	if !erased {
		var err error
		if base, err = o.base.Lookup(ctx, id); err != nil || rec == nil {
			return base, err
		}
	}
	if rec == nil {
		return nil, nil
	}
	if base != nil && values == nil {
		values = make(map[string]Value, base.Values.Len())
	}
	if base != nil {
		for k, v := range base.Values.All() {
			if _, ok := values[k]; !ok {
				values[k] = v
			}
		}
	}
	for k, v := range values {
		if v.Kind == KindMissing {
			delete(values, k)
		}
	}
	if base == nil && len(values) == 0 {
		values = nil // only deleted features: nothing to know the customer by
	}
	rec.Values = o.layouts.Pack(values)
	return rec, nil
}

// Ping checks the base store.
func (o *Overlay) Ping(ctx context.Context) error { return o.base.Ping(ctx) }

// customer returns id's entry, created if needed, as the most recently
// written. Callers hold mu and call settle once done with it.
func (o *Overlay) customer(id string) *overlayCustomer {
	oc := o.customers[id]
	if oc == nil {
		oc = &overlayCustomer{id: id}
		oc.measure()
		o.customers[id] = oc
	} else {
		oc.prev.next, oc.next.prev = oc.next, oc.prev
	}
	oc.prev, oc.next = &o.lru, o.lru.next
	o.lru.next.prev = oc
	o.lru.next = oc
	return oc
}

// settle accounts for oc's new size and drops the least recently written
// customers while the overlay is over its bound. Callers hold mu.
func (o *Overlay) settle(oc *overlayCustomer) {
	size := oc.counterBytes() + oc.otherBytes
	o.bytes += size - oc.bytes
	oc.bytes = size
	for o.bytes > o.cfg.MaxBytes && o.lru.prev != &o.lru {
		if o.onChange != nil {
			o.dropped = append(o.dropped, o.lru.prev.id)
		}
		o.drop(o.lru.prev)
		o.evictedCustomers.Add(1)
	}
}

// unlock releases mu and reports the customers settle evicted meanwhile.
func (o *Overlay) unlock() {
	dropped := o.dropped
	o.dropped = nil
	o.mu.Unlock()
	for _, id := range dropped {
		o.changed(id)
	}
}

// drop forgets oc. An erased base customer stays erased: the erasure is
// kept apart from the entry. Callers hold mu.
func (o *Overlay) drop(oc *overlayCustomer) {
	oc.prev.next, oc.next.prev = oc.next, oc.prev
	oc.prev, oc.next = nil, nil
	delete(o.customers, oc.id)
	o.bytes -= oc.bytes
	oc.bytes = 0
}

func (o *Overlay) changed(id string) {
	if o.onChange != nil {
		o.onChange(id)
	}
}

// PutFeatures merges values over the customer's features; a KindMissing
// value deletes that feature.
func (o *Overlay) PutFeatures(_ context.Context, id string, values map[string]Value) error {
	if len(values) == 0 {
		return nil
	}
	o.mu.Lock()
	oc := o.customer(id)
	if oc.values == nil {
		oc.values = make(map[string]Value, len(values))
	}
	for name, v := range values {
		// Values are kept past this call: copy lists the caller may reuse.
		if v.Kind == KindList {
			v.List = append([]string(nil), v.List...)
		}
		oc.values[name] = v
	}
	oc.measure()
	o.settle(oc)
	o.unlock()
	o.changed(id)
	return nil
}

// PutConsent merges per-channel consent.
func (o *Overlay) PutConsent(_ context.Context, id string, consent map[string]Consent) error {
	if len(consent) == 0 {
		return nil
	}
	o.mu.Lock()
	oc := o.customer(id)
	if oc.consent == nil {
		oc.consent = make(map[string]Consent, len(consent))
	}
	maps.Copy(oc.consent, consent)
	oc.measure()
	o.settle(oc)
	o.unlock()
	o.changed(id)
	return nil
}

// baseHas reports whether the base store holds id.
func (o *Overlay) baseHas(ctx context.Context, id string) (bool, error) {
	if c, ok := o.base.(interface{ Contains(string) bool }); ok {
		return c.Contains(id), nil
	}
	rec, err := o.base.Lookup(ctx, id)
	return rec != nil, err
}

// Erase forgets the customer: everything the overlay held is dropped and a
// base record stays hidden, also once the overlay's bounds drop what is
// written for the customer later.
func (o *Overlay) Erase(ctx context.Context, id string) error {
	inBase, err := o.baseHas(ctx, id)
	if err != nil {
		return fmt.Errorf("cannot erase customer %q: %w", id, err)
	}
	o.mu.Lock()
	if oc := o.customers[id]; oc != nil {
		o.drop(oc)
	}
	if inBase {
		o.erased[id] = struct{}{}
	}
	o.mu.Unlock()
	o.changed(id)
	return nil
}

// ApplyEvents counts each event once per customer and event id, as long as
// the id is remembered (see OverlayConfig.MaxEventIDs), and applies a new
// behavioural event's feature updates with it.
func (o *Overlay) ApplyEvents(ctx context.Context, events []Event) (int, error) {
	now := o.now()
	keys := make([]eventKey, len(events))
	// An addition starts from the base record's number when the overlay
	// holds none; the base is read before the lock is taken.
	var bases map[string]*Record
	for i := range events {
		keys[i] = eventDigest(events[i].CustomerID, events[i].ID)
		id := events[i].CustomerID
		if _, done := bases[id]; done || !slices.ContainsFunc(events[i].Updates, func(u FeatureUpdate) bool { return u.Op == UpdateAdd }) {
			continue
		}
		rec, err := o.base.Lookup(ctx, id)
		if err != nil {
			return 0, fmt.Errorf("cannot apply events: reading customer %q: %w", id, err)
		}
		if bases == nil {
			bases = map[string]*Record{}
		}
		bases[id] = rec
	}
	applied := 0
	var touched []string
	o.mu.Lock()
	o.events.expire(now.Add(-eventMemory).Unix())
	for i := range events {
		ev := &events[i]
		ev.Applied = o.events.add(keys[i], now.Unix())
		if !ev.Applied {
			continue
		}
		oc := o.customer(ev.CustomerID)
		day := Day(ev.Time)
		for _, subject := range Subjects(ev.Touchpoint, ev.Kind, ev.Rule, ev.Channel) {
			o.count(oc, counterKey{ev.Type, subject, day})
		}
		if len(ev.Updates) > 0 {
			base := bases[ev.CustomerID]
			if _, erased := o.erased[ev.CustomerID]; erased {
				base = nil
			}
			oc.update(ev.Updates, base)
		}
		o.addTallies(ev.Tallies)
		o.settle(oc)
		applied++
		if len(touched) == 0 || touched[len(touched)-1] != ev.CustomerID {
			touched = append(touched, ev.CustomerID)
		}
	}
	o.unlock()
	for _, id := range touched {
		o.changed(id)
	}
	return applied, nil
}

// count adds one to a counter of oc within MaxCountersPerCustomer: a new
// counter takes the place of the oldest day's when the customer is full,
// and is not counted if no kept day is older than its own. Callers hold mu.
func (o *Overlay) count(oc *overlayCustomer, k counterKey) bool {
	if oc.counters == nil {
		oc.counters = map[counterKey]int64{}
	}
	if _, ok := oc.counters[k]; ok {
		oc.counters[k]++
		return true
	}
	if len(oc.counters) >= o.cfg.MaxCountersPerCustomer {
		if oc.minDay >= k.day {
			o.droppedCounters.Add(1)
			return false
		}
		o.dropDay(oc, oc.minDay)
	}
	if len(oc.counters) == 0 || k.day < oc.minDay {
		oc.minDay = k.day
	}
	oc.counters[k] = 1
	oc.subjectBytes += int64(len(k.subject))
	return true
}

// dropDay deletes oc's counters of day and finds the new oldest day.
func (o *Overlay) dropDay(oc *overlayCustomer, day int32) {
	oldest := int32(0)
	first := true
	for k := range oc.counters {
		if k.day == day {
			delete(oc.counters, k)
			oc.subjectBytes -= int64(len(k.subject))
			o.droppedCounters.Add(1)
			continue
		}
		if first || k.day < oldest {
			oldest, first = k.day, false
		}
	}
	oc.minDay = oldest
}

// ReserveDecisions counts a decision for every limit if all have room.
func (o *Overlay) ReserveDecisions(_ context.Context, id string, day int32, limits []DecisionLimit) (bool, error) {
	o.mu.Lock()
	if oc := o.customers[id]; oc != nil {
		for _, l := range limits {
			var n int64
			for d := day - int32(l.Days) + 1; d <= day; d++ {
				n += oc.counters[counterKey{EventDecision, l.Subject, d}]
			}
			if n >= l.Count {
				o.unlock()
				return false, nil
			}
		}
	}
	oc := o.customer(id)
	for _, l := range limits {
		o.count(oc, counterKey{EventDecision, l.Subject, day})
	}
	o.settle(oc)
	o.unlock()
	o.changed(id)
	return true, nil
}

// Consume draws on in-process budgets.
func (o *Overlay) Consume(ctx context.Context, touchpoint string, day int32, total, perDay int64) (bool, error) {
	return o.budgets.Consume(ctx, touchpoint, day, total, perDay)
}

// Size estimates for an overlay customer. Like recordCost's, they need to
// be proportional to the heap held rather than exact; mapCost estimates
// each map from its number of entries.
const (
	overlayCustomerBytes = int64(unsafe.Sizeof(overlayCustomer{})) +
		(int64(unsafe.Sizeof("")+unsafe.Sizeof(&overlayCustomer{}))*3)/2 // its slot in Overlay.customers
	counterSlotBytes = int64(unsafe.Sizeof(counterKey{}) + 8)
	consentSlotBytes = int64(unsafe.Sizeof("") + unsafe.Sizeof(Consent{}))
)

// measure estimates the bytes oc keeps alive besides its counters.
// update applies a behavioural event's feature updates; an addition adds
// to the overlay's number, else base's, else the update's Base. A sum that
// is not finite leaves the feature as it was. Callers hold mu.
func (oc *overlayCustomer) update(updates []FeatureUpdate, base *Record) {
	if oc.values == nil {
		oc.values = make(map[string]Value, len(updates))
	}
	for _, u := range updates {
		switch u.Op {
		case UpdateSet:
			v := u.Value
			if v.Kind == KindList {
				v.List = append([]string(nil), v.List...)
			}
			oc.values[u.Feature] = v
		case UpdateAdd:
			cur := u.Base
			if v, ok := oc.values[u.Feature]; ok {
				if v.Kind == KindNumber {
					cur = v.Num
				}
			} else if base != nil {
				if v, ok := base.Values.Get(u.Feature); ok && v.Kind == KindNumber {
					cur = v.Num
				}
			}
			if sum := cur + u.Value.Num; !math.IsInf(sum, 0) && !math.IsNaN(sum) {
				oc.values[u.Feature] = Number(sum)
			}
		}
	}
	oc.measure()
}

func (oc *overlayCustomer) measure() {
	n := overlayCustomerBytes + int64(len(oc.id))
	if oc.values != nil {
		n += mapBytes(len(oc.values))
		for name, v := range oc.values {
			n += int64(len(name) + len(v.Str))
			for _, s := range v.List {
				n += stringBytes + int64(len(s))
			}
		}
	}
	if oc.consent != nil {
		n += mapCost(len(oc.consent), consentSlotBytes)
		for channel := range oc.consent {
			n += int64(len(channel))
		}
	}
	oc.otherBytes = n
}

// counterBytes estimates the bytes of oc's counters: the map, and the
// subjects, which are built per event (event types are a few shared
// constants).
func (oc *overlayCustomer) counterBytes() int64 {
	if oc.counters == nil {
		return 0
	}
	return mapCost(len(oc.counters), counterSlotBytes) + oc.subjectBytes
}

// eventKey is the digest of a customer id and event id: fixed-size, so a
// remembered id costs the same however long the client made it.
type eventKey [16]byte

// eventDigest is the first 16 bytes of SHA-256 over the length-prefixed
// customer id and the event id, so no two pairs share an input and a client
// cannot craft two ids that collide.
func eventDigest(customerID, eventID string) eventKey {
	var buf [256]byte
	b := binary.AppendUvarint(buf[:0], uint64(len(customerID)))
	b = append(b, customerID...)
	b = append(b, eventID...)
	sum := sha256.Sum256(b)
	return eventKey(sum[:16])
}

// eventSet remembers event digests oldest first, up to max of them: a ring
// that grows as needed up to max entries, then drops its oldest entry for
// each new one.
type eventSet struct {
	max     int
	index   map[eventKey]struct{}
	ring    []eventEntry // ring[head], ring[head+1], … (mod len) are live, oldest first
	head, n int
	evicted uint64 // entries dropped for room, not for age
}

type eventEntry struct {
	key eventKey
	at  int64 // unix seconds it was added
}

func newEventSet(max int) eventSet {
	return eventSet{max: max, index: map[eventKey]struct{}{}}
}

// add remembers k and reports whether it was new.
func (s *eventSet) add(k eventKey, at int64) bool {
	if _, dup := s.index[k]; dup {
		return false
	}
	if s.n == len(s.ring) {
		if len(s.ring) < s.max {
			s.grow()
		} else {
			s.pop()
			s.evicted++
		}
	}
	s.ring[(s.head+s.n)%len(s.ring)] = eventEntry{key: k, at: at}
	s.n++
	s.index[k] = struct{}{}
	return true
}

// expire forgets entries added at or before cutoff.
func (s *eventSet) expire(cutoff int64) {
	for s.n > 0 && s.ring[s.head].at <= cutoff {
		s.pop()
	}
}

func (s *eventSet) pop() {
	delete(s.index, s.ring[s.head].key)
	s.head = (s.head + 1) % len(s.ring)
	s.n--
}

// grow enlarges a full ring, at most to max entries.
func (s *eventSet) grow() {
	ring := make([]eventEntry, min(max(2*len(s.ring), 1024), s.max))
	k := copy(ring, s.ring[s.head:])
	copy(ring[k:], s.ring[:s.head])
	s.ring, s.head = ring, 0
}

// AddTallies adds to the shared counters; in one process they are shared
// by construction.
func (o *Overlay) AddTallies(_ context.Context, tallies []Tally) error {
	o.mu.Lock()
	o.addTallies(tallies)
	o.mu.Unlock()
	return nil
}

// addTallies adds tallies; callers hold mu.
func (o *Overlay) addTallies(tallies []Tally) {
	for _, t := range tallies {
		if o.tallies == nil {
			o.tallies = map[string]map[string]float64{}
		}
		scope := o.tallies[t.Scope]
		if scope == nil {
			scope = map[string]float64{}
			o.tallies[t.Scope] = scope
		}
		scope[t.Field] += t.Delta
	}
}

// ReadTallies returns a copy of a scope's counters.
func (o *Overlay) ReadTallies(_ context.Context, scope string) (map[string]float64, error) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	out := make(map[string]float64, len(o.tallies[scope]))
	for k, v := range o.tallies[scope] {
		out[k] = v
	}
	return out, nil
}
