package jsonw

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
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

// appendEscapedByByte is the plain one-byte-at-a-time escaper that
// AppendEscaped's word-at-a-time scan must agree with.
func appendEscapedByByte(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case plain[c]:
				dst = append(dst, c)
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, `\n`...)
			case c == '\r':
				dst = append(dst, `\r`...)
			case c == '\t':
				dst = append(dst, `\t`...)
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return dst
}

// TestAppendEscapedWordScan puts every byte value at every position of
// strings around the eight-byte word size, alone and next to others, so a
// byte the word test misses shows up as a difference.
func TestAppendEscapedWordScan(t *testing.T) {
	for n := 1; n <= 19; n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				b := []byte(strings.Repeat("abcdefgh", 3)[:n])
				b[pos] = byte(c)
				if pos+1 < n && c >= 0xc2 && c <= 0xdf {
					b[pos+1] = 0xa9 // completes a two-byte rune
				}
				s := string(b)
				got, want := string(AppendEscaped(nil, s)), string(appendEscapedByByte(nil, s))
				if got != want {
					t.Fatalf("AppendEscaped(%q) = %q, byte at a time %q", s, got, want)
				}
			}
		}
	}
	long := strings.Repeat("plain text ", 20) + "\u2028 snow ☃ " + strings.Repeat("x", 13) + "\"<\xff"
	if got, want := string(AppendEscaped(nil, long)), string(appendEscapedByByte(nil, long)); got != want {
		t.Fatalf("long string: %q, byte at a time %q", got, want)
	}
}

func FuzzAppendEscapedAgrees(f *testing.F) {
	for _, s := range []string{"", "abcdefgh<", "0123456789abcdef\"", "\u2028\u2029xxxxxxxx", "\xe2\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(AppendEscaped(nil, s)), string(appendEscapedByByte(nil, s)); got != want {
			t.Fatalf("AppendEscaped(%q) = %q, byte at a time %q", s, got, want)
		}
	})
}

func BenchmarkAppendEscaped(b *testing.B) {
	for _, bc := range []struct{ name, s string }{
		{"id", "cart_abandon_coupon"},
		{"text", "Mei, 10% off everything in your cart until Sunday"},
		{"escapes", `say "hi" <b> & \ bye`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			buf := make([]byte, 0, 256)
			b.SetBytes(int64(len(bc.s)))
			for b.Loop() {
				buf = AppendEscaped(buf[:0], bc.s)
			}
		})
		b.Run(bc.name+"/byte_at_a_time", func(b *testing.B) {
			buf := make([]byte, 0, 256)
			b.SetBytes(int64(len(bc.s)))
			for b.Loop() {
				buf = appendEscapedByByte(buf[:0], bc.s)
			}
		})
	}
}

// TestAppendFloatAgreesWithStrconv checks the short-decimal path against
// strconv's shortest form on values either side of its edges.
func TestAppendFloatAgreesWithStrconv(t *testing.T) {
	check := func(f float64) {
		t.Helper()
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return // written as 0; TestAppendFloat covers them
		}
		if got, want := string(AppendFloat(nil, f)), strconv.FormatFloat(f, 'f', -1, 64); got != want {
			t.Fatalf("AppendFloat(%v) = %s, strconv %s", f, got, want)
		}
	}
	for _, f := range []float64{1, -1, 0.5, 6.2, 0.1 + 0.2, 1e-6, 1e-7, 5e-7, 4.9999999e-7, 999999999.999999, 1e9, 1e15, 1e15 - 1, 1e16,
		123456789.123456, 0.123456, 0.1234567, 3.14159265358979, math.MaxInt64, math.SmallestNonzeroFloat64, math.MaxFloat64, math.Copysign(0, -1), 0} {
		check(f)
		check(-f)
		check(math.Nextafter(f, 0))
		check(math.Nextafter(f, math.Inf(1)))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		// Short decimals at every scale, and arbitrary doubles.
		check(float64(rng.Int64N(2e15)-1e15) / math.Pow10(rng.IntN(9)))
		check(math.Float64frombits(rng.Uint64()))
		check(rng.Float64())
	}
}

func FuzzAppendFloat(f *testing.F) {
	for _, v := range []float64{0, 6.2, 0.1 + 0.2, 1e15, -4.5e-7} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return
		}
		if got, want := string(AppendFloat(nil, v)), strconv.FormatFloat(v, 'f', -1, 64); got != want {
			t.Fatalf("AppendFloat(%v) = %s, strconv %s", v, got, want)
		}
	})
}

func BenchmarkAppendFloat(b *testing.B) {
	for _, bc := range []struct {
		name string
		f    float64
	}{{"short", 6.2}, {"model_output", 0.7310585786300049}} {
		b.Run(bc.name, func(b *testing.B) {
			buf := make([]byte, 0, 64)
			for b.Loop() {
				buf = AppendFloat(buf[:0], bc.f)
			}
		})
		b.Run(bc.name+"/strconv", func(b *testing.B) {
			buf := make([]byte, 0, 64)
			for b.Loop() {
				buf = strconv.AppendFloat(buf[:0], bc.f, 'f', -1, 64)
			}
		})
	}
}
