package features

import (
	"fmt"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"
)

func TestValuesRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]Value
	}{
		{"nil", nil},
		{"empty", map[string]Value{}},
		{"every kind", map[string]Value{
			"ltv": Number(-1200.5), "zero": Number(0), "stage": String("loyalty"), "empty": String(""),
			"flag": Bool(true), "off": Bool(false), "tags": List("a", "b", "c"), "none": List(),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, v := range []Values{NewValues(tt.in), NewLayouts().Pack(tt.in)} {
				if v.IsNil() != (tt.in == nil) || v.Len() != len(tt.in) {
					t.Fatalf("IsNil = %v, Len = %d for %v", v.IsNil(), v.Len(), tt.in)
				}
				if got := v.Map(); !reflect.DeepEqual(got, tt.in) {
					t.Errorf("Map() = %v, want %v", got, tt.in)
				}
				for name, want := range tt.in {
					if got, ok := v.Get(name); !ok || !reflect.DeepEqual(got, want) {
						t.Errorf("Get(%q) = %v, %v; want %v", name, got, ok, want)
					}
				}
				if _, ok := v.Get("absent"); ok {
					t.Error("Get(absent) found a value")
				}
			}
		})
	}
}

// TestValuesOwnTheirStrings: packing copies strings into one buffer of
// the record's own, so a record keeps one allocation alive rather than
// one per string, or the larger buffers they were cut from.
func TestValuesOwnTheirStrings(t *testing.T) {
	reply := strings.Repeat("x", 4096) + "gold" + "shoes"
	m := map[string]Value{"tier": String(reply[4096:4100]), "tags": List(reply[4100:])}
	v := NewLayouts().Pack(m)
	tier, _ := v.Get("tier")
	tags, _ := v.Get("tags")
	if tier.Str != "gold" || !reflect.DeepEqual(tags.List, []string{"shoes"}) {
		t.Fatalf("packed %v", v)
	}
	first := unsafe.StringData(v.strs[0])
	if unsafe.Pointer(unsafe.StringData(v.strs[1])) != unsafe.Add(unsafe.Pointer(first), len(v.strs[0])) {
		t.Error("the record's strings are not in one buffer")
	}
	if p := uintptr(unsafe.Pointer(first)); p >= uintptr(unsafe.Pointer(unsafe.StringData(reply))) && p < uintptr(unsafe.Pointer(unsafe.StringData(reply)))+uintptr(len(reply)) {
		t.Error("the record's strings point into the buffer they were cut from")
	}
}

func TestLayoutsShareAndBound(t *testing.T) {
	ls := NewLayouts()
	a := ls.Pack(map[string]Value{"x": Number(1), "s": String("a")})
	b := ls.Pack(map[string]Value{"s": String("b"), "x": Number(2)})
	c := ls.Pack(map[string]Value{"s": Number(3), "x": Number(2)}) // same names, another kind
	if a.Layout() != b.Layout() || !a.Layout().shared {
		t.Error("records with the same features do not share a layout")
	}
	if c.Layout() == a.Layout() {
		t.Error("records whose features differ in kind share a layout")
	}
	ls.max = 3
	for i := range 10 {
		v := ls.Pack(map[string]Value{fmt.Sprintf("f%d", i): Number(float64(i))})
		if got, ok := v.Get(fmt.Sprintf("f%d", i)); !ok || got.Num != float64(i) {
			t.Fatalf("record %d past the bound = %v", i, v)
		}
	}
	if len(ls.byKey) != 3 {
		t.Errorf("Layouts keeps %d layouts, bound 3", len(ls.byKey))
	}
}

func TestLayoutDerivedOncePerKey(t *testing.T) {
	v := NewLayouts().Pack(map[string]Value{"x": Number(1)})
	calls := 0
	build := func(key any, l *Layout) any { calls++; return fmt.Sprint(key, l.Name(0)) }
	for range 3 {
		if got := v.Layout().Derived("k1", build); got != "k1x" {
			t.Fatalf("Derived = %v", got)
		}
	}
	if got := v.Layout().Derived("k2", build); got != "k2x" || calls != 2 {
		t.Errorf("Derived = %v after %d builds, want k2x after 2", got, calls)
	}
}

// TestMemoryStoreManyLayouts loads customers who all have different
// features, more than the store shares layouts for: those past the bound
// decode with layouts of their own, and read the same.
func TestMemoryStoreManyLayouts(t *testing.T) {
	var b strings.Builder
	n := maxSharedLayouts + 50
	for i := range n {
		fmt.Fprintf(&b, `{"id":"c-%d","features":{"f%d":%d,"s":"v%d","l":["a","b%d"]}}`+"\n", i, i, i, i, i)
	}
	store, err := LoadJSONL(strings.NewReader(b.String()), "many.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(store.layouts) != maxSharedLayouts {
		t.Errorf("store shares %d layouts, bound %d", len(store.layouts), maxSharedLayouts)
	}
	for _, i := range []int{0, maxSharedLayouts - 1, maxSharedLayouts, n - 1} {
		rec, err := store.Lookup(t.Context(), fmt.Sprintf("c-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]Value{fmt.Sprintf("f%d", i): Number(float64(i)), "s": String(fmt.Sprintf("v%d", i)), "l": List("a", fmt.Sprintf("b%d", i))}
		if got := rec.Values.Map(); !maps.EqualFunc(got, want, func(a, b Value) bool { return reflect.DeepEqual(a, b) }) {
			t.Errorf("customer %d = %v, want %v", i, got, want)
		}
		if shared := rec.Values.Layout().shared; shared != (i < maxSharedLayouts) {
			t.Errorf("customer %d: shared layout = %v", i, shared)
		}
	}
}

// TestCacheUsage follows the entry count through sets, invalidation and
// eviction.
func TestCacheUsage(t *testing.T) {
	fake := &fakeStore{records: map[string]*Record{}}
	for i := range 500 {
		id := fmt.Sprintf("c-%d", i)
		fake.records[id] = &Record{ID: id, Values: NewValues(map[string]Value{"s": String(strings.Repeat("x", 100))})}
	}
	cost := recordCost(fake.records["c-0"])
	c := newTestCache(t, fake, CacheConfig{MaxBytes: 50 * cost, TTL: time.Hour, NegativeTTL: time.Hour})
	for i := range 10 {
		lookup(t, c, fmt.Sprintf("c-%d", i))
	}
	lookup(t, c, "nobody")
	c.Wait()
	if u := c.Usage(); u.Entries != 11 || u.Bytes < 10*cost || u.Bytes > 11*cost {
		t.Errorf("Usage = %+v after 10 records and one unknown id (a record costs %d)", u, cost)
	}
	c.Invalidate("c-3")
	c.Invalidate("c-404") // not cached: changes nothing
	c.Wait()
	if u := c.Usage(); u.Entries != 10 {
		t.Errorf("Usage = %+v after dropping one of 11", u)
	}
	for i := range 500 {
		lookup(t, c, fmt.Sprintf("c-%d", i))
		if i%50 == 49 {
			c.Wait()
		}
	}
	c.Wait()
	if u := c.Usage(); u.Entries > 51 || u.Bytes > 50*cost {
		t.Errorf("Usage = %+v past a budget of 50 records", u)
	}
	c.Invalidate("")
	if u := c.Usage(); u.Entries != 0 || u.Bytes != 0 {
		t.Errorf("Usage = %+v after dropping everything", u)
	}
}
