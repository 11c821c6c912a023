package server

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/workbench"
)

const sampleRequest = `{"customer_id": "c-000042", "placements": [{"id": "cart_banner", "count": 1}, "home_hero"],
 "context": {"channel": "web", "page": "/cart", "device": "mobile", "cart_items": 3, "logged_in": true, "tags": ["sale", "summer"]},
 "explain": false}`

func TestDecodeRequestFields(t *testing.T) {
	var st decodeState
	if e := st.decode([]byte(sampleRequest)); e != nil {
		t.Fatalf("decode: %+v", e)
	}
	req := &st.req
	if req.CustomerID != "c-000042" || req.Explain {
		t.Errorf("customer %q explain %v", req.CustomerID, req.Explain)
	}
	wantPlacements := []engine.PlacementRequest{{ID: "cart_banner", Count: 1}, {ID: "home_hero"}}
	if !slices.Equal(req.Placements, wantPlacements) {
		t.Errorf("placements = %+v", req.Placements)
	}
	want := map[string]features.Value{
		"channel":    features.String("web"),
		"page":       features.String("/cart"),
		"device":     features.String("mobile"),
		"cart_items": features.Number(3),
		"logged_in":  features.Bool(true),
		"tags":       features.List("sale", "summer"),
	}
	if len(req.Context) != len(want) {
		t.Fatalf("context = %+v", req.Context)
	}
	for _, f := range req.Context {
		w, ok := want[f.Name]
		if !ok || w.Kind != f.Value.Kind || w.Str != f.Value.Str || w.Num != f.Value.Num || w.Bool != f.Value.Bool || !slices.Equal(w.List, f.Value.List) {
			t.Errorf("context %s = %+v, want %+v", f.Name, f.Value, w)
		}
	}

	// Reuse: a second, smaller request leaves nothing of the first behind,
	// and escapes in strings are decoded.
	if e := st.decode([]byte(`{"customer_id":"c-\u00e9\"1","placements":["a"],"explain":true,"context":null}`)); e != nil {
		t.Fatalf("decode: %+v", e)
	}
	if req.CustomerID != "c-é\"1" || len(req.Placements) != 1 || len(req.Context) != 0 || !req.Explain {
		t.Errorf("second request = %+v", *req)
	}
}

func TestLocateSyntaxError(t *testing.T) {
	tests := []struct {
		in     string
		offset int
		field  string
	}{
		{`{"a":1,}`, 7, ""},
		{`{"a" 1}`, 5, ""},
		{`[1,2`, 4, "[1]"},
		{`{"a":"b`, 7, "a"},
		{`{"a":01}`, 6, "a"},
		{`{"a":tru}`, 8, "a"},
		{"{\"a\":\"\x01\"}", 6, "a"},
		{`{"a":"\x"}`, 7, "a"},
		{`{"a":"\u12"}`, 10, "a"},
		{`{} {}`, 3, ""},
		{"{\"events\":[{\"event_id\":\"e\n1\"}]}", 25, "events[0].event_id"},
		{"{\"b\":[],\"context\":{\"pa\x01ge\":1}}", 22, "context"},
		{`{"a\"b":[1,{"c":{}},x]}`, 20, `a\"b[2]`},
		{"\n\n  {\"a\": }", 10, "a"},
		{`{"a":"b" "c":1}`, 9, ""},
		{`{"a":{"b":[true x]}}`, 16, "a.b"},
		{`{"a":{"b":[{} x]}}`, 14, "a.b"},
		{`{"a":{"b":[{},x]}}`, 14, "a.b[1]"},
		{`[[1],2 3]`, 7, ""},
	}
	for _, tc := range tests {
		off, reason, found := locateSyntaxError([]byte(tc.in))
		if !found || off != tc.offset || reason == "" {
			t.Errorf("locateSyntaxError(%q) = %d, %q, %v; want offset %d", tc.in, off, reason, found, tc.offset)
			continue
		}
		if field := fieldAt([]byte(tc.in), off); field != tc.field {
			t.Errorf("fieldAt(%q, %d) = %q, want %q", tc.in, off, field, tc.field)
		}
	}
	for _, ok := range []string{`{}`, ` [1, -0.5e+3, "x\u00e9\n", true, false, null] `, sampleRequest} {
		if off, reason, found := locateSyntaxError([]byte(ok)); found {
			t.Errorf("locateSyntaxError(%q) found %q at %d in valid JSON", ok, reason, off)
		}
	}
}

// The message names the place by offset, line and column, and the field.
func TestJSONErrorMessage(t *testing.T) {
	body := "{\n  \"customer_id\": \"c-1\",\n  \"placements\": [\"a\", tru]\n}"
	e := jsonError([]byte(body), errors.New("fastjson"))
	want := `request body is not valid JSON: invalid character ']' in literal true (expecting 'e') in placements[1] at offset 51 (line 3, column 26)`
	if e.code != codeInvalidJSON || e.field != "placements[1]" || e.message != want {
		t.Errorf("jsonError = %+v,\nwant message %s", e, want)
	}
}

func FuzzDecodeDecideRequest(f *testing.F) {
	seeds := []string{
		sampleRequest,
		`{"customer_id":"c-1","placements":["a"]}`,
		`{"customer_id":"c-1","placements":["a","b",{"id":"c","count":2}],"explain":true}`,
		`{"customer_id":"c-1","placements":[{"id":"a","count":1.5}]}`,
		`{"customer_id":"c-1","placements":["a"],"context":{"x":NaN,"y":[1]}}`,
		`{"customer_id":"\u2028<script>","placements":["\ud83d\ude00"]}`,
		`{"customer_id":"c-1","placements":["a","a"]}`,
		`{"customer_id":1}`,
		`{"customer_id":"c-1","placements":[],"extra":{}}`,
		`[[[[[[[[]]]]]]]]`,
		`{"a":`,
		`{"customer_id":"c-1","placements":["a"],"what_if":{"features":{"tier":"gold","tags":["a"]},"consent":{"email":false},"history":"none"}}`,
		`{"customer_id":"c-1","placements":["a"],"what_if":{"consent":{"":true},"history":null}}`,
		``,
		"\xff\xfe",
		`null`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	// The codes decode may answer with.
	validCodes := []string{codeInvalidJSON, codeMissingField, codeInvalidField, codeUnknownField}
	f.Fuzz(func(t *testing.T, body []byte) {
		var st decodeState
		e := st.decode(body)
		if e != nil {
			if e.status != 400 || !slices.Contains(validCodes, e.code) || e.message == "" {
				t.Fatalf("bad error %+v", e)
			}
			if b := appendError(nil, e.code, e.field, e.message); !json.Valid(b) {
				t.Fatalf("error body is not JSON: %s", b)
			}
			return
		}
		req := &st.req
		if req.CustomerID == "" || len(req.CustomerID) > maxIDBytes {
			t.Fatalf("accepted customer_id %q", req.CustomerID)
		}
		if len(req.Placements) == 0 || len(req.Placements) > maxPlacements {
			t.Fatalf("accepted %d placements", len(req.Placements))
		}
		if req.WhatIf != nil {
			if !req.Preview {
				t.Fatal("accepted what_if without making the request a preview")
			}
			for ch := range req.WhatIf.Consent {
				if ch == "" || len(ch) > maxChannelBytes {
					t.Fatalf("accepted consent channel %q", ch)
				}
			}
		}
		seen := map[string]bool{}
		for _, p := range req.Placements {
			if p.ID == "" || len(p.ID) > maxIDBytes || p.Count < 0 || p.Count > maxPlacementCount || seen[p.ID] {
				t.Fatalf("accepted placement %+v", p)
			}
			seen[p.ID] = true
		}
		// Whatever was accepted encodes to valid JSON.
		d := engine.Decision{ID: "d", CustomerID: req.CustomerID, Ruleset: "r"}
		for _, p := range req.Placements {
			d.Placements = append(d.Placements, engine.PlacementResult{ID: p.ID, Items: []engine.Item{{Touchpoint: p.ID, Kind: req.CustomerID, Rule: p.ID, Content: []byte(`{"t":"<&>"}`)}}})
		}
		out := appendDecision(nil, req, &d)
		if !json.Valid(out) {
			t.Fatalf("decision is not JSON: %s", out)
		}
		if strings.ContainsAny(string(out), "<>&\u2028\u2029") {
			t.Fatalf("decision has unescaped HTML-sensitive characters: %s", out)
		}
	})
}

// FuzzDecodeDraft: any body is a draft of valid paths or a 400 naming
// the problem, never a panic.
func FuzzDecodeDraft(f *testing.F) {
	for _, s := range []string{
		`{"files":{"cart.yaml":"rules: []"}}`,
		`{"files":{"a/b.yml":"x"},"limit":10}`,
		`{"files":{"../x.yaml":""}}`,
		`{"files":{"a.yaml":1}}`,
		`{"files":{},"limit":-1}`,
		`{"files":{"a.yaml":"\u0000"}}`,
		`{"files":`,
		`[]`,
	} {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, replaying bool) {
		var p fastjson.Parser
		draft, limit, e := decodeDraft(&p, body, replaying)
		if e != nil {
			if e.status != 400 || e.message == "" || !json.Valid(appendError(nil, e.code, e.field, e.message)) {
				t.Fatalf("bad error %+v", e)
			}
			return
		}
		if err := draft.Validate(); err != nil {
			t.Fatalf("accepted an invalid draft: %v", err)
		}
		if limit < 1 || limit > workbench.MaxReplay {
			t.Fatalf("accepted limit %d", limit)
		}
	})
}

func BenchmarkDecodeRequest(b *testing.B) {
	body := []byte(sampleRequest)
	var st decodeState
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if e := st.decode(body); e != nil {
			b.Fatalf("decode: %+v", e)
		}
	}
}

// BenchmarkStringCheck measures what refusing raw control characters in
// strings adds to decoding a decide body: the word-at-a-time scan alone for
// compact JSON, and the closer byte scan that pretty-printed JSON needs.
func BenchmarkStringCheck(b *testing.B) {
	compact := []byte(`{"customer_id":"c-000042","placements":[{"id":"cart_banner","count":1},"home_hero"],"context":{"channel":"web","page":"/cart","device":"mobile","cart_items":3,"logged_in":true,"tags":["sale","summer"]},"explain":false}`)
	for _, bc := range []struct {
		name string
		body []byte
	}{{"compact", compact}, {"pretty", []byte(sampleRequest)}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.body)))
			for b.Loop() {
				if badStringByte(bc.body) >= 0 {
					b.Fatal("valid body refused")
				}
			}
		})
	}
}

func TestBadStringByte(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{`{"a":"b"}`, -1},
		{"{\n  \"a\": \"b\",\r\n\t\"c\": [1, 2]\n}", -1},
		{`{"a":"\n\t\u0001\"\\\/"}`, -1},
		{"{\"a\":\"b\nc\"}", 7},
		{"{\"a\":\"b\tc\"}", 7},
		{"{\"a\x00\":1}", 3},
		{"{\"customer_id\":\"c-1\",\n\"page\":\"\x1f\"}", 30},
		{`{"a":"\x"}`, 6},
		{`{"a":"\u12"}`, 6},
		{`{"a":"\\"}`, -1},
		{"{\"a\":\"\\\\\",\"b\":\"\n\"}", 15},
		{"[\"aaaaaaaaaaaaaaaaaaaa\",\n\"bbbbbbbbbbbbbbbbbbbbbbbbb\x7f\",\"c\x01\"]", 56},
	}
	for _, tc := range tests {
		if got := badStringByte([]byte(tc.in)); got != tc.want {
			t.Errorf("badStringByte(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// The word-at-a-time scan agrees with reading one byte at a time, on any
// input.
func FuzzBadStringByte(f *testing.F) {
	for _, s := range []string{sampleRequest, "{\"a\":\"b\nc\"}", `{"a":"\\","b":"\u0001"}`, "\"\x00\"", `"\"` + "\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := badStringByte(b), badStringByteSlow(b, 0, false); got != want {
			t.Fatalf("badStringByte(%q) = %d, byte by byte %d", b, got, want)
		}
	})
}
