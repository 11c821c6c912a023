package features

import (
	"encoding/binary"
	"fmt"
	"iter"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Values is one customer's features in the compact form records are cached
// in. A node caches millions of records, so a record keeps no map: the
// feature names and kinds live in a Layout that every record with the same
// features shares, and the record keeps one word per feature (a number's
// bits, a bool, or where its strings are) and one slice of strings (string
// values and list items).
//
// The zero Values is nil: the store has no features for the customer. A
// Values is immutable and cheap to copy; copies share their memory.
type Values struct {
	layout *Layout
	words  []uint64 // by layout index; see Values.At
	strs   []string // string values and list items, in layout order
}

// Layout is the names and kinds of a set of features. Stores share one
// Layout among all records with the same features, so that what depends
// only on them, such as where each feature goes in a schema's layout, is
// computed once (Derived). A Layout is immutable apart from Derived's
// memo, and safe for concurrent use.
type Layout struct {
	names []string
	kinds []Kind
	// shared is set on layouts a store hands to many records; the cache
	// charges an unshared layout to its one record.
	shared bool
	// aliased is set when records of this layout point their strings into
	// memory their store keeps anyway (the embedded store's data), so a
	// cached record does not own them.
	aliased bool
	derived atomic.Pointer[derived]
}

type derived struct {
	key   any
	value any
}

// Len is how many features the layout has.
func (l *Layout) Len() int { return len(l.names) }

// Name and Kind describe feature i.
func (l *Layout) Name(i int) string { return l.names[i] }
func (l *Layout) Kind(i int) Kind   { return l.kinds[i] }

// Derived returns what build computes from the layout, computing it once per
// key: the engine uses it to place a layout's features in its schema once
// rather than per request. A new key (a reloaded schema) replaces the old
// value.
func (l *Layout) Derived(key any, build func(key any, l *Layout) any) any {
	if d := l.derived.Load(); d != nil && d.key == key {
		return d.value
	}
	v := build(key, l)
	l.derived.Store(&derived{key: key, value: v})
	return v
}

// find returns the index of name, or -1.
func (l *Layout) find(name string) int {
	for i, n := range l.names {
		if n == name {
			return i
		}
	}
	return -1
}

// NewValues packs m; a nil map gives nil Values, an empty one a known
// customer with no features. The layout is the record's own; stores that
// pack many records use Layouts so records share theirs.
func NewValues(m map[string]Value) Values {
	if m == nil {
		return Values{}
	}
	names := slices.Sorted(maps.Keys(m))
	kinds := make([]Kind, len(names))
	for i, name := range names {
		kinds[i] = m[name].Kind
	}
	return pack(&Layout{names: names, kinds: kinds}, m)
}

// pack lays m out as l says; l has exactly m's names and kinds. Unless the
// layout's strings are aliased, they are copied into one buffer the record
// owns, so that it keeps one allocation alive rather than one per string
// (or a larger buffer they were cut from).
func pack(l *Layout, m map[string]Value) Values {
	v := Values{layout: l, words: make([]uint64, len(l.names))}
	n, size := 0, 0
	for i, name := range l.names {
		switch val := m[name]; l.kinds[i] {
		case KindString:
			n++
			size += len(val.Str)
		case KindList:
			n += len(val.List)
			for _, s := range val.List {
				size += len(s)
			}
		}
	}
	if n > 0 {
		v.strs = make([]string, 0, n)
	}
	var text textArena
	if !l.aliased {
		text.Grow(size)
	}
	for i, name := range l.names {
		val := m[name]
		switch l.kinds[i] {
		case KindNumber:
			v.words[i] = math.Float64bits(val.Num)
		case KindBool:
			if val.Bool {
				v.words[i] = 1
			}
		case KindString:
			v.words[i] = uint64(len(v.strs))
			v.strs = append(v.strs, val.Str)
		case KindList:
			v.words[i] = uint64(len(v.strs))<<32 | uint64(len(val.List))
			v.strs = append(v.strs, val.List...)
		}
	}
	if !l.aliased {
		for i, s := range v.strs {
			v.strs[i] = text.addString(s)
		}
	}
	return v
}

// IsNil reports whether the store has no features for the customer.
func (v Values) IsNil() bool { return v.layout == nil }

// Len is how many features there are.
func (v Values) Len() int { return len(v.words) }

// Layout returns the features' names and kinds (nil for nil Values).
func (v Values) Layout() *Layout { return v.layout }

// At returns feature i of the layout. It does not allocate: strings and
// lists share the record's memory and must not be changed.
func (v Values) At(i int) Value {
	w := v.words[i]
	switch v.layout.kinds[i] {
	case KindNumber:
		return Value{Kind: KindNumber, Num: math.Float64frombits(w)}
	case KindBool:
		return Value{Kind: KindBool, Bool: w != 0}
	case KindString:
		return Value{Kind: KindString, Str: v.strs[w]}
	case KindList:
		start, n := w>>32, w&math.MaxUint32
		if n == 0 {
			return Value{Kind: KindList}
		}
		return Value{Kind: KindList, List: v.strs[start : start+n : start+n]}
	}
	return Value{}
}

// Get returns the feature called name.
func (v Values) Get(name string) (Value, bool) {
	if v.layout == nil {
		return Value{}, false
	}
	i := v.layout.find(name)
	if i < 0 {
		return Value{}, false
	}
	return v.At(i), true
}

// All yields every feature, in layout order.
func (v Values) All() iter.Seq2[string, Value] {
	return func(yield func(string, Value) bool) {
		for i := range v.words {
			if !yield(v.layout.names[i], v.At(i)) {
				return
			}
		}
	}
}

// String formats the features as a map, for messages and tests.
func (v Values) String() string { return fmt.Sprint(v.Map()) }

// Map returns the features as a new map the caller owns (nil for nil
// Values), for code off the request path that edits or encodes them.
func (v Values) Map() map[string]Value {
	if v.layout == nil {
		return nil
	}
	m := make(map[string]Value, len(v.words))
	for name, val := range v.All() {
		m[name] = val
	}
	return m
}

// Layouts hands out shared Layouts, so that a store's records with the same
// features share one. It keeps at most a bounded number: records whose
// features no kept layout fits (a store whose customers all have different
// features) get a layout of their own, which costs them memory but not
// correctness. Safe for concurrent use.
type Layouts struct {
	mu      sync.RWMutex
	byKey   map[string]*Layout
	max     int
	aliased bool // see Layout.aliased
}

// maxSharedLayouts bounds how many layouts one store shares. Real data has
// a handful (customers with and without some optional features); the bound
// keeps records written with arbitrary feature names from growing it.
const maxSharedLayouts = 4096

// NewLayouts returns an empty set of shared layouts.
func NewLayouts() *Layouts { return newLayouts(false) }

func newLayouts(aliased bool) *Layouts {
	return &Layouts{byKey: make(map[string]*Layout), max: maxSharedLayouts, aliased: aliased}
}

// Pack packs m like NewValues, with a shared layout where there is room.
func (ls *Layouts) Pack(m map[string]Value) Values {
	if m == nil {
		return Values{}
	}
	names := slices.Sorted(maps.Keys(m))
	var key []byte
	for _, name := range names {
		key = binary.AppendUvarint(key, uint64(len(name)))
		key = append(key, name...)
		key = append(key, byte(m[name].Kind))
	}
	l := ls.layout(key, func() *Layout {
		kinds := make([]Kind, len(names))
		for i, name := range names {
			// A shared layout must not keep alive the buffer its first
			// record's names were cut from.
			names[i] = strings.Clone(name)
			kinds[i] = m[name].Kind
		}
		return &Layout{names: names, kinds: kinds, aliased: ls.aliased}
	})
	return pack(l, m)
}

// layout returns the shared layout for key, making it with build if there
// is none and room for one; otherwise build's layout is not shared.
func (ls *Layouts) layout(key []byte, build func() *Layout) *Layout {
	ls.mu.RLock()
	l, ok := ls.byKey[string(key)]
	ls.mu.RUnlock()
	if ok {
		return l
	}
	l = build()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if old, ok := ls.byKey[string(key)]; ok {
		return old
	}
	if len(ls.byKey) < ls.max {
		l.shared = true
		ls.byKey[string(key)] = l
	}
	return l
}
