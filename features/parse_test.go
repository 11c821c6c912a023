package features

import (
	"bytes"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// sampleLine is a realistic record, shared by tests and benchmarks.
const sampleLine = `{"id":"c-000042","features":{"first_name":"Anna","language":"de","timezone":"Europe/Berlin",` +
	`"home_store":"s-berlin-01","preferred_channel":"app","app_installed":true,"interests":["running","outdoor","coffee"],` +
	`"signup_days":812,"stage":"loyalty","lifecycle":"active","tier":"gold","points":2410,"points_expiring":120,` +
	`"ltv":1200.5,"avg_basket":64.25,"orders_total":31,"orders_30d":2,"spend_30d":131.9,"days_since_last":6,` +
	`"cart_abandon_7d":0,"churn_risk":0.07,"coupon_propensity":0.41,"days_to_birthday":-1,"open_complaint":false,` +
	`"last_csat":5,"emotion":null,"risk_flag":false,"consent_marketing":true,"consent_email":true,"consent_sms":false}}`

func TestParseRecord(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Record
	}{
		{
			name: "every kind",
			in:   `{"id": "c-000001", "features": {"ltv": 1200.5, "stage": "loyalty", "consent_marketing": true, "interests": ["shoes","bags"]}}`,
			want: &Record{ID: "c-000001", Values: NewValues(map[string]Value{
				"ltv":               Number(1200.5),
				"stage":             String("loyalty"),
				"consent_marketing": Bool(true),
				"interests":         List("shoes", "bags"),
			})},
		},
		{
			name: "null is absent",
			in:   `{"id":"c-1","features":{"emotion":null,"risk_flag":false}}`,
			want: &Record{ID: "c-1", Values: NewValues(map[string]Value{"risk_flag": Bool(false)})},
		},
		{
			name: "empty features",
			in:   `{"id":"c-1","features":{}}`,
			want: &Record{ID: "c-1", Values: NewValues(map[string]Value{})},
		},
		{
			name: "empty list",
			in:   `{"id":"c-1","features":{"interests":[]}}`,
			want: &Record{ID: "c-1", Values: NewValues(map[string]Value{"interests": List()})},
		},
		{
			name: "number forms",
			in:   `{"id":"c-1","features":{"a":0,"b":-3,"c":1e3,"d":-2.5E-2,"e":9007199254740993}}`,
			want: &Record{ID: "c-1", Values: NewValues(map[string]Value{
				"a": Number(0), "b": Number(-3), "c": Number(1000), "d": Number(-0.025), "e": Number(9007199254740993),
			})},
		},
		{
			name: "escapes are decoded",
			in:   `{"id":"c-\u00e9","features":{"na\"me":"Zo\u00eb \\ \n","tags":["a\tb","\ud83d\ude00"]}}`,
			want: &Record{ID: "c-é", Values: NewValues(map[string]Value{
				`na"me`: String("Zoë \\ \n"),
				"tags":  List("a\tb", "😀"),
			})},
		},
		{
			name: "unknown top-level fields are ignored",
			in:   `{"updated_at":"2024-01-01","id":"c-1","features":{"x":1},"extra":{"nested":[1,2]}}`,
			want: &Record{ID: "c-1", Values: NewValues(map[string]Value{"x": Number(1)})},
		},
		{
			name: "surrounding whitespace",
			in:   " \t{ \"id\" : \"c-1\" , \"features\" : { \"x\" : true } }\r\n",
			want: &Record{ID: "c-1", Values: NewValues(map[string]Value{"x": Bool(true)})},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRecord([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParseRecord: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseRecord =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestParseRecordErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // the whole message, or its prefix when it ends in "..."
	}{
		{"empty", ``, `invalid JSON: ...`},
		{"truncated", `{"id":"c-1","features":{`, `invalid JSON: ...`},
		{"trailing garbage", `{"id":"c-1","features":{}} x`, `invalid JSON: ...`},
		{"two records on a line", `{"id":"c-1","features":{}}{"id":"c-2","features":{}}`, `invalid JSON: ...`},
		{"not an object", `["c-1"]`, `record must be a JSON object, got array`},
		{"missing id", `{"features":{}}`, `missing "id"`},
		{"id not a string", `{"id":42,"features":{}}`, `"id" must be a string, got number`},
		{"id null", `{"id":null,"features":{}}`, `"id" must be a string, got null`},
		{"empty id", `{"id":"","features":{}}`, `"id" is empty`},
		{"duplicate id field", `{"id":"a","id":"b","features":{}}`, `duplicate "id" field`},
		{"invalid UTF-8 id", "{\"id\":\"c-\xff\",\"features\":{}}", `"id" is not valid UTF-8`},
		{"missing features", `{"id":"c-1"}`, `missing "features"`},
		{"features not an object", `{"id":"c-1","features":[1]}`, `"features" must be an object, got array`},
		{"features null", `{"id":"c-1","features":null}`, `"features" must be an object, got null`},
		{"duplicate features field", `{"id":"c-1","features":{},"features":{}}`, `duplicate "features" field`},
		{"nested object", `{"id":"c-1","features":{"ltv":1,"address":{"city":"Berlin"}}}`, `feature "address": nested objects are not supported`},
		{"list of numbers", `{"id":"c-1","features":{"interests":["shoes",2]}}`, `feature "interests": list item 1 is a number; lists hold only strings`},
		{"list of lists", `{"id":"c-1","features":{"interests":[["shoes"]]}}`, `feature "interests": list item 0 is an array; lists hold only strings`},
		{"list with null", `{"id":"c-1","features":{"interests":[null]}}`, `feature "interests": list item 0 is a null; lists hold only strings`},
		{"list with bool", `{"id":"c-1","features":{"interests":[true]}}`, `feature "interests": list item 0 is a bool; lists hold only strings`},
		{"NaN", `{"id":"c-1","features":{"ltv":NaN}}`, `feature "ltv": number is not finite`},
		{"infinity", `{"id":"c-1","features":{"ltv":-Inf}}`, `feature "ltv": number is not finite`},
		{"overflow", `{"id":"c-1","features":{"ltv":1e999}}`, `feature "ltv": number is not finite`},
		{"bad number", `{"id":"c-1","features":{"ltv":1-2}}`, `feature "ltv": invalid number: ...`},
		{"duplicate feature", `{"id":"c-1","features":{"ltv":1,"stage":"use","ltv":2}}`, `duplicate feature "ltv"`},
		{"empty feature name", `{"id":"c-1","features":{"":1}}`, `feature with an empty name`},
		{"invalid UTF-8 name", "{\"id\":\"c-1\",\"features\":{\"a\xff\":1}}", `feature name "a\xff" is not valid UTF-8`},
		{"invalid UTF-8 string", "{\"id\":\"c-1\",\"features\":{\"stage\":\"\xfe\"}}", `feature "stage": string is not valid UTF-8`},
		{"invalid UTF-8 list item", "{\"id\":\"c-1\",\"features\":{\"tags\":[\"ok\",\"\xfe\"]}}", `feature "tags": list item 1 is not valid UTF-8`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := ParseRecord([]byte(tt.in))
			if err == nil {
				t.Fatalf("ParseRecord = %+v, want error %q", rec, tt.want)
			}
			assertMessage(t, err, tt.want)
		})
	}
}

// assertMessage checks err's message against want, which is either the whole
// message or a prefix followed by "...".
func assertMessage(t *testing.T, err error, want string) {
	t.Helper()
	if prefix, ok := strings.CutSuffix(want, "..."); ok {
		if !strings.HasPrefix(err.Error(), prefix) {
			t.Errorf("error = %q, want prefix %q", err, prefix)
		}
		return
	}
	if err.Error() != want {
		t.Errorf("error = %q\nwant    %q", err, want)
	}
}

// TestRecordParserReuse checks that records do not alias the parser's buffers,
// which fastjson reuses on the next parse.
func TestRecordParserReuse(t *testing.T) {
	var p RecordParser
	first, err := p.Parse([]byte(`{"id":"c-1","features":{"stage":"loyalty","tags":["a","b"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Parse([]byte(`{"id":"c-2","features":{"stage":"xxxxxxx","tags":["x","y"]}}`)); err != nil {
		t.Fatal(err)
	}
	want := &Record{ID: "c-1", Values: NewValues(map[string]Value{"stage": String("loyalty"), "tags": List("a", "b")})}
	if !reflect.DeepEqual(first, want) {
		t.Errorf("first record changed after reuse: %+v", first)
	}
}

func FuzzParseRecord(f *testing.F) {
	seeds := []string{
		sampleLine,
		`{"id": "c-000001", "features": {"ltv": 1200.5, "stage": "loyalty", "consent_marketing": true, "interests": ["shoes","bags"]}}`,
		`{"id":"c-1","features":{}}`,
		`{"id":"c-1","features":{"a":null,"b":[],"c":-0,"d":1e308,"e":4.9e-324,"f":9007199254740992}}`,
		`{"id":"c-\u00e9","features":{"na\"me":"Zo\u00eb \\ \n","tags":["a\tb","\ud83d\ude00","\ud800"]}}`,
		`{"id":"c-1","features":{"ltv":1,"ltv":2}}`,
		`{"id":"c-1","features":{"a":{"b":1}}}`,
		`{"id":"c-1","features":{"a":[1]}}`,
		`{"id":"c-1","features":{"a":NaN,"b":inf}}`,
		`{"id":"","features":{}}`,
		`{"features":{"x":1}}`,
		`[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]`,
		`{"id":"c-1","features":{"\u0000":"\u0000"}}`,
		"{\"id\":\"c-1\",\"features\":{\"s\":\"\xff\"}}",
		`"just a string"`,
		``,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	var p RecordParser
	f.Fuzz(func(t *testing.T, line []byte) {
		rec, err := p.Parse(line)
		if err != nil {
			if rec != nil {
				t.Fatalf("Parse returned both a record and error %v", err)
			}
		} else {
			checkRecord(t, rec)
		}

		// The embedded store validates and re-encodes records itself; it must
		// agree with the parser on every single-line input.
		if bytes.ContainsAny(line, "\n") || IsBlankLine(line) || !bytes.Equal(TrimBOM(line), line) {
			return
		}
		store, loadErr := LoadJSONL(bytes.NewReader(line), "fuzz.jsonl")
		if (err == nil) != (loadErr == nil) {
			t.Fatalf("ParseRecord error %v, but LoadJSONL error %v", err, loadErr)
		}
		if err != nil {
			return
		}
		got, err := store.Lookup(t.Context(), rec.ID)
		if err != nil {
			t.Fatalf("Lookup(%q): %v", rec.ID, err)
		}
		if !sameRecord(got, rec) {
			t.Fatalf("MemoryStore record\n%+v\ndiffers from parsed\n%+v", got, rec)
		}
	})
}

// checkRecord asserts the invariants every parsed record holds.
func checkRecord(t *testing.T, rec *Record) {
	t.Helper()
	if rec.ID == "" || !utf8.ValidString(rec.ID) {
		t.Fatalf("bad id %q", rec.ID)
	}
	for name, v := range rec.Values.All() {
		if name == "" || !utf8.ValidString(name) {
			t.Fatalf("bad feature name %q", name)
		}
		switch v.Kind {
		case KindNumber:
			if math.IsNaN(v.Num) || math.IsInf(v.Num, 0) {
				t.Fatalf("feature %q: non-finite number %v", name, v.Num)
			}
		case KindString:
			if !utf8.ValidString(v.Str) {
				t.Fatalf("feature %q: invalid UTF-8", name)
			}
		case KindBool:
		case KindList:
			for _, s := range v.List {
				if !utf8.ValidString(s) {
					t.Fatalf("feature %q: invalid UTF-8 list item", name)
				}
			}
		default:
			t.Fatalf("feature %q: kind %v", name, v.Kind)
		}
	}
}

// sameRecord compares records, treating numbers bit for bit so -0 and 0
// differ.
func sameRecord(a, b *Record) bool {
	if a.ID != b.ID || a.Values.Len() != b.Values.Len() {
		return false
	}
	for name, va := range a.Values.All() {
		vb, ok := b.Values.Get(name)
		if !ok || va.Kind != vb.Kind || va.Str != vb.Str || va.Bool != vb.Bool ||
			math.Float64bits(va.Num) != math.Float64bits(vb.Num) || !slices.Equal(va.List, vb.List) {
			return false
		}
	}
	return true
}

func BenchmarkParseRecord(b *testing.B) {
	line := []byte(sampleLine)
	var p RecordParser
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, err := p.Parse(line); err != nil {
			b.Fatal(err)
		}
	}
}
