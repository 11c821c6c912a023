package jsonw

import (
	"encoding/json"
	"math"
	"testing"
)

func TestAppendStringRoundTrips(t *testing.T) {
	cases := []string{"", "plain", `quote " and \ backslash`, "line\nbreak\ttab\r", "<script>&</script>", "ctrl \x01\x1f", "snow ☃ and \u2028 sep", "bad \xff utf8"}
	for _, in := range cases {
		out := AppendString(nil, in)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("AppendString(%q) = %s, not valid JSON: %v", in, out, err)
		}
		want := in
		if in == "bad \xff utf8" {
			want = "bad \ufffd utf8"
		}
		if back != want {
			t.Errorf("AppendString(%q) round-trips to %q", in, back)
		}
	}
	if got := string(AppendString(nil, "<a>&\u2028")); got != `"\u003ca\u003e\u0026\u2028"` {
		t.Errorf("HTML-sensitive characters not escaped: %s", got)
	}
}

func TestAppendFloat(t *testing.T) {
	cases := map[float64]string{8: "8", 0.1: "0.1", 1200.5: "1200.5", math.NaN(): "0", math.Inf(1): "0", -2.25: "-2.25"}
	for in, want := range cases {
		if got := string(AppendFloat(nil, in)); got != want {
			t.Errorf("AppendFloat(%v) = %s, want %s", in, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\u2028", "\xff\xfe", "<>&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var back string
		if err := json.Unmarshal(AppendString(nil, s), &back); err != nil {
			t.Fatalf("invalid JSON for %q: %v", s, err)
		}
	})
}
