// Package jsonw appends JSON values to byte slices without reflection, for
// the paths that write JSON on every request.
package jsonw

import (
	"math"
	"strconv"
	"unicode/utf8"
)

const hex = "0123456789abcdef"

// AppendString appends s as a JSON string. Besides what JSON requires it
// escapes <, >, & and U+2028/U+2029 so the output is safe to embed in HTML
// and JavaScript; invalid UTF-8 becomes U+FFFD.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = AppendEscaped(dst, s)
	return append(dst, '"')
}

// plain marks the ASCII bytes a JSON string holds as they are; one table
// lookup per byte is cheaper than the six comparisons it stands for.
var plain = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// AppendEscaped appends the body of a JSON string for s, without quotes, so
// callers can build one string from several pieces.
//
// Most strings written per request (ids, names, content) need no escaping,
// so the scan skips eight bytes at a time while none of them needs a look
// (see special), and falls back to one byte at a time around those that do.
func AppendEscaped(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) && !special(load64(s, i)) {
			i += 8
			continue
		}
		// A word that needs a look, or the tail: byte by byte to its end
		// (a rune may carry i a little past it).
		for end := min(i+8, len(s)); i < end; {
			c := s[i]
			if c < utf8.RuneSelf {
				if plain[c] {
					i++
					continue
				}
				dst = append(dst, s[start:i]...)
				switch c {
				case '"', '\\':
					dst = append(dst, '\\', c)
				case '\n':
					dst = append(dst, '\\', 'n')
				case '\r':
					dst = append(dst, '\\', 'r')
				case '\t':
					dst = append(dst, '\\', 't')
				default:
					dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
				}
				i++
				start = i
				continue
			}
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, s[start:i]...)
				dst = append(dst, `\ufffd`...)
				i += size
				start = i
				continue
			}
			if r == '\u2028' || r == '\u2029' {
				dst = append(dst, s[start:i]...)
				dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
				i += size
				start = i
				continue
			}
			i += size
		}
	}
	return append(dst, s[start:]...)
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// load64 reads s[i:i+8] as a little-endian word; the compiler turns the
// shifts into one load.
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// special reports whether any byte of w is not plain: below 0x20, at or
// above 0x80 (UTF-8 to check), or one of " \ < > &. Each test sets a byte's
// high bit where it holds; a borrow can also set one above a byte that
// holds, never without one, so the answer for the word is exact.
func special(w uint64) bool {
	quote, backslash := w^(ones*'"'), w^(ones*'\\')
	lt, gt, amp := w^(ones*'<'), w^(ones*'>'), w^(ones*'&')
	t := w | (w-ones*0x20)&^w |
		(quote-ones)&^quote | (backslash-ones)&^backslash |
		(lt-ones)&^lt | (gt-ones)&^gt | (amp-ones)&^amp
	return t&highs != 0
}

// AppendFloat appends f in its shortest form, as strconv.AppendFloat(dst,
// f, 'f', -1, 64) does. JSON has no NaN or infinity, so those are written
// as 0 rather than producing an invalid document.
//
// Scores, prices and shares are mostly short decimals (6.2, 0.15, 40), so
// those take a path of integer arithmetic: when f is exactly the double
// nearest m/10^6 for an integer m of at most 15 digits, m's digits with the
// trailing zeros of the fraction dropped are the shortest form (no two
// decimals of at most 15 significant digits round to the same double).
// Anything else goes to strconv.
func AppendFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, '0')
	}
	const scale, limit = 1e6, 1e15
	m := math.Round(f * scale)
	if m == 0 || m <= -limit || m >= limit || m/scale != f {
		// Zero keeps strconv's "-0"; the rest is not a short decimal.
		return strconv.AppendFloat(dst, f, 'f', -1, 64)
	}
	n := int64(m)
	if n < 0 {
		dst = append(dst, '-')
		n = -n
	}
	whole, frac := n/scale, n%scale
	dst = strconv.AppendInt(dst, whole, 10)
	if frac == 0 {
		return dst
	}
	var digits [6]byte
	end := 0
	for i := 5; i >= 0; i-- {
		digits[i] = byte('0' + frac%10)
		frac /= 10
		if end == 0 && digits[i] != '0' {
			end = i + 1
		}
	}
	dst = append(dst, '.')
	return append(dst, digits[:end]...)
}
