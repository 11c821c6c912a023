package features

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestLoadJSONL(t *testing.T) {
	input := "\xEF\xBB\xBF" + // byte order mark
		`{"id":"c-1","features":{"ltv":1200.5,"stage":"loyalty","consent_marketing":true,"interests":["shoes","bags"]}}` + "\n" +
		"\n" +
		"   \t\r\n" +
		`{"id":"c-2","features":{"ltv":3,"emotion":null,"interests":[]}}` + "\r\n" +
		`{"id":"c-3","features":{}}` + "\n" +
		sampleLine // no trailing newline
	store, err := LoadJSONL(strings.NewReader(input), "customers.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := store.Len(), 4; got != want {
		t.Errorf("Len = %d, want %d", got, want)
	}
	if err := store.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}

	for line := range strings.Lines(input) {
		line = strings.TrimPrefix(line, "\xEF\xBB\xBF")
		if IsBlankLine([]byte(strings.TrimSuffix(line, "\n"))) {
			continue
		}
		want, err := ParseRecord([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		got, err := store.Lookup(t.Context(), want.ID)
		if err != nil {
			t.Fatalf("Lookup(%q): %v", want.ID, err)
		}
		if !sameRecord(got, want) {
			t.Errorf("Lookup(%q) =\n%+v\nwant\n%+v", want.ID, got, want)
		}
	}

	rec, err := store.Lookup(t.Context(), "c-404")
	if rec != nil || err != nil {
		t.Errorf("Lookup(unknown) = %+v, %v; want nil, nil", rec, err)
	}
}

func TestLoadJSONLEmpty(t *testing.T) {
	store, err := LoadJSONL(strings.NewReader("\n\n"), "empty.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if store.Len() != 0 {
		t.Errorf("Len = %d, want 0", store.Len())
	}
}

// TestMemoryStoreNumbers checks the compact number encoding round-trips every
// float exactly, including the integral values it stores as varints.
func TestMemoryStoreNumbers(t *testing.T) {
	nums := []string{
		"0", "-0", "1", "-1", "63", "64", "-65", "1200.5", "0.1", "-2.5e-3",
		"9007199254740991", "-9007199254740991", "9007199254740992", "9007199254740993",
		"1e300", "-1e300", "4.9e-324", "1.7976931348623157e308",
		"459.76", "-0.07", "0.91", "123456.789", "0.000001", "-0.0000015", "900719925474.0991", "0.1234567",
		"1e-7", "3.141592653589793", "2.5e15", "-1.5",
	}
	var b strings.Builder
	for i, n := range nums {
		fmt.Fprintf(&b, `{"id":"n%d","features":{"x":%s}}`+"\n", i, n)
	}
	store, err := LoadJSONL(strings.NewReader(b.String()), "numbers.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range nums {
		want, err := ParseRecord(fmt.Appendf(nil, `{"id":"n%d","features":{"x":%s}}`, i, n))
		if err != nil {
			t.Fatal(err)
		}
		got, err := store.Lookup(t.Context(), fmt.Sprintf("n%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if g, w := got.Values.Map()["x"].Num, want.Values.Map()["x"].Num; math.Float64bits(g) != math.Float64bits(w) {
			t.Errorf("%s: got %v (%#x), want %v (%#x)", n, g, math.Float64bits(g), w, math.Float64bits(w))
		}
	}
}

func TestLoadJSONLErrors(t *testing.T) {
	const ok = `{"id":"c-1","features":{"ltv":1}}` + "\n"
	tests := []struct {
		name string
		in   string
		line int
		want string
	}{
		{
			name: "bad JSON",
			in:   ok + "\n" + `{"id":"c-2","features":` + "\n",
			line: 3,
			want: `cannot load customers: customers.jsonl:3: invalid JSON: ...`,
		},
		{
			name: "duplicate id",
			in:   ok + `{"id":"c-2","features":{}}` + "\n" + `{"id":"c-1","features":{"ltv":2}}` + "\n",
			line: 3,
			want: `cannot load customers: customers.jsonl:3: duplicate id "c-1" (first seen on line 1)`,
		},
		{
			name: "bad value",
			in:   ok + `{"id":"c-2","features":{"interests":["a",{"b":1}]}}`,
			line: 2,
			want: `cannot load customers: customers.jsonl:2: feature "interests": list item 1 is an object; lists hold only strings`,
		},
		{
			name: "nested object",
			in:   `{"id":"c-2","features":{"address":{"city":"Berlin"}}}`,
			line: 1,
			want: `cannot load customers: customers.jsonl:1: feature "address": nested objects are not supported`,
		},
		{
			name: "duplicate feature in one record",
			in:   `{"id":"c-1","features":{"ltv":1,"x":1,"ltv":2}}`,
			line: 1,
			want: `cannot load customers: customers.jsonl:1: duplicate feature "ltv"`,
		},
		{
			name: "missing id",
			in:   ok + `{"features":{}}`,
			line: 2,
			want: `cannot load customers: customers.jsonl:2: missing "id"`,
		},
		{
			name: "empty id",
			in:   `{"id":"","features":{}}`,
			line: 1,
			want: `cannot load customers: customers.jsonl:1: "id" is empty`,
		},
		{
			name: "line too long",
			in:   ok + `{"id":"c-2","features":{}}` + "\n" + `{"id":"c-3","features":{"x":"` + strings.Repeat("x", maxLineBytes) + `"}}`,
			line: 3,
			want: `cannot load customers: customers.jsonl:3: line is longer than 16 MiB`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, err := LoadJSONL(strings.NewReader(tt.in), "customers.jsonl")
			if err == nil {
				t.Fatalf("LoadJSONL succeeded with %d customers, want error", store.Len())
			}
			assertMessage(t, err, tt.want)
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error %v is not a *LoadError", err)
			}
			if le.Path != "customers.jsonl" || le.Line != tt.line {
				t.Errorf("LoadError at %s:%d, want customers.jsonl:%d", le.Path, le.Line, tt.line)
			}
		})
	}
}

// TestLoadJSONLDuplicateFeatureAcrossRecords guards the stamp-based duplicate
// check: a name used by an earlier record is not a duplicate in a later one.
func TestLoadJSONLDuplicateFeatureAcrossRecords(t *testing.T) {
	var b strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&b, `{"id":"c-%d","features":{"a":%d,"b":"x","c":true}}`+"\n", i, i)
	}
	store, err := LoadJSONL(strings.NewReader(b.String()), "many.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if store.Len() != 1000 {
		t.Errorf("Len = %d, want 1000", store.Len())
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestLoadJSONLReadError(t *testing.T) {
	_, err := LoadJSONL(failingReader{}, "customers.jsonl")
	assertMessage(t, err, `cannot load customers from "customers.jsonl": disk on fire`)
}

func TestOpenJSONL(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "customers.jsonl")
	if err := os.WriteFile(path, []byte(sampleLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := OpenJSONL(path)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := store.Lookup(t.Context(), "c-000042")
	if err != nil || rec == nil {
		t.Fatalf("Lookup = %v, %v", rec, err)
	}
	if got := rec.Values.Map()["stage"]; !reflect.DeepEqual(got, String("loyalty")) {
		t.Errorf("stage = %+v", got)
	}

	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte(sampleLine+"\n"+sampleLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = OpenJSONL(bad)
	assertMessage(t, err, fmt.Sprintf(`cannot load customers: %s:2: duplicate id "c-000042" (first seen on line 1)`, bad))

	missing := filepath.Join(dir, "missing.jsonl")
	_, err = OpenJSONL(missing)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v does not wrap os.ErrNotExist", err)
	}
	assertMessage(t, err, fmt.Sprintf(`cannot load customers from %q: open %s: no such file or directory`, missing, missing))
}

func TestMemoryStoreDecodeCorrupt(t *testing.T) {
	store, err := LoadJSONL(strings.NewReader(`{"id":"c-1","features":{"s":"abc","l":["x"]}}`), "c.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	// Every truncation of a valid encoding must fail cleanly, never panic.
	full := store.chunks[0]
	for n := range len(full) {
		store.chunks[0] = full[:n]
		if _, err := store.Lookup(t.Context(), "c-1"); err == nil {
			t.Errorf("truncated to %d bytes: no error", n)
		}
	}
	store.chunks[0] = full
	store.strs = nil
	if _, err := store.Lookup(t.Context(), "c-1"); err == nil {
		t.Error("dangling interned string: no error")
	}
}

// TestMemoryStoreStrings covers both string encodings: interned until the
// table is full or the string is long, inline otherwise.
func TestMemoryStoreStrings(t *testing.T) {
	long := strings.Repeat("y", maxInternedLen+1)
	var b strings.Builder
	const n = maxInterned + 1000
	for i := range n {
		fmt.Fprintf(&b, `{"id":"c-%d","features":{"s":"v%d","stage":"loyalty","long":"%s%d","tags":["v%d","",%q]}}`+"\n",
			i, i, long, i, n-i, long)
	}
	store, err := LoadJSONL(strings.NewReader(b.String()), "strings.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(store.strs) != maxInterned {
		t.Errorf("interned %d strings, want the cap %d", len(store.strs), maxInterned)
	}
	for _, i := range []int{0, 1, maxInterned / 2, maxInterned, n - 1} {
		id := fmt.Sprintf("c-%d", i)
		got, err := store.Lookup(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		want := &Record{ID: id, Values: NewValues(map[string]Value{
			"s":     String(fmt.Sprintf("v%d", i)),
			"stage": String("loyalty"),
			"long":  String(fmt.Sprintf("%s%d", long, i)),
			"tags":  List(fmt.Sprintf("v%d", n-i), "", long),
		})}
		if !sameRecord(got, want) {
			t.Errorf("Lookup(%q) =\n%+v\nwant\n%+v", id, got, want)
		}
	}
}

// TestMemoryStoreChunks spreads customers over several chunks, including one
// larger than a chunk.
func TestMemoryStoreChunks(t *testing.T) {
	var b strings.Builder
	big := strings.Repeat("z", chunkSize+100)
	const n = 3000
	for i := range n {
		text := strings.Repeat(string(rune('a'+i%26)), 1000+i%7)
		if i == n/2 {
			text = big
		}
		fmt.Fprintf(&b, `{"id":"c-%d","features":{"text":%q,"n":%d}}`+"\n", i, text, i)
	}
	store, err := LoadJSONL(strings.NewReader(b.String()), "chunks.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(store.chunks) < 3 {
		t.Errorf("%d chunks, want several", len(store.chunks))
	}
	for line := range strings.Lines(b.String()) {
		want, err := ParseRecord([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		got, err := store.Lookup(t.Context(), want.ID)
		if err != nil || !sameRecord(got, want) {
			t.Fatalf("Lookup(%q) = %v; differs from parsed record", want.ID, err)
		}
	}
}

func TestMemoryStoreConcurrentLookup(t *testing.T) {
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, `{"id":"c-%d","features":{"n":%d,"tags":["t%d"]}}`+"\n", i, i, i)
	}
	store, err := LoadJSONL(strings.NewReader(b.String()), "c.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				id := fmt.Sprintf("c-%d", (i+g)%100)
				rec, err := store.Lookup(t.Context(), id)
				if err != nil || rec == nil || rec.Values.Map()["n"].Num != float64((i+g)%100) {
					t.Errorf("Lookup(%q) = %+v, %v", id, rec, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// syntheticCustomers renders n records shaped like sampleLine.
func syntheticCustomers(n int) string {
	var b strings.Builder
	for i := range n {
		line := strings.Replace(sampleLine, `"c-000042"`, fmt.Sprintf(`"c-%06d"`, i+1), 1)
		line = strings.Replace(line, `"points":2410`, fmt.Sprintf(`"points":%d`, i%5000), 1)
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

func BenchmarkMemoryStoreLookup(b *testing.B) {
	store, err := LoadJSONL(strings.NewReader(syntheticCustomers(1000)), "bench.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if rec, err := store.Lookup(ctx, "c-000500"); rec == nil || err != nil {
			b.Fatal(rec, err)
		}
	}
}

func BenchmarkLoadJSONL(b *testing.B) {
	data := syntheticCustomers(10000)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := LoadJSONL(strings.NewReader(data), "bench.jsonl"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAppendNumberTags(t *testing.T) {
	tests := []struct {
		n    float64
		tag  byte
		size int
	}{
		{0, tagInt, 2},
		{math.Copysign(0, -1), tagNumber, 9},
		{1200, tagInt, 3},
		{459.76, tagDecimal, 5},
		{0.07, tagDecimal, 3},
		{math.Pi, tagNumber, 9},
		{1e300, tagNumber, 9},
	}
	for _, tt := range tests {
		enc := appendNumber(nil, tt.n)
		if enc[0] != tt.tag || len(enc) != tt.size {
			t.Errorf("appendNumber(%v) = tag %d, %d bytes; want tag %d, %d bytes", tt.n, enc[0], len(enc), tt.tag, tt.size)
		}
	}
}
