package models

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonScanner reads a JSON document in place, led by the reader of one
// format: the reader asks for an object, an array or a number where it
// expects one, and the scanner skips what the reader does not want. It
// keeps byte offsets, so that every error can say line and column, reads
// arrays straight into typed slices (memory grows with the file, never
// with a count the file claims), and bounds nesting so that a file of
// brackets cannot exhaust the stack.
type jsonScanner struct {
	data  []byte
	pos   int
	depth int
}

// maxJSONDepth is far deeper than any model file nests (XGBoost's is 6).
const maxJSONDepth = 100

// position turns a byte offset into a 1-based line and column.
func position(data []byte, off int) (line, col int) {
	off = min(max(off, 0), len(data))
	before := data[:off]
	line = bytes.Count(before, []byte{'\n'}) + 1
	start := bytes.LastIndexByte(before, '\n') + 1
	return line, utf8.RuneCount(before[start:]) + 1
}

func errorAt(data []byte, off int, format string, args ...any) *Error {
	line, col := position(data, off)
	return &Error{Line: line, Col: col, Message: fmt.Sprintf(format, args...)}
}

func (s *jsonScanner) errAt(off int, format string, args ...any) *Error {
	return errorAt(s.data, off, format, args...)
}

func (s *jsonScanner) space() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, 0 at the end.
func (s *jsonScanner) peek() byte {
	s.space()
	if s.pos >= len(s.data) {
		return 0
	}
	return s.data[s.pos]
}

// unexpected describes what is at the scanner's position, for errors.
func (s *jsonScanner) unexpected(want string) *Error {
	c := s.peek()
	if c == 0 {
		return s.errAt(s.pos, "the file ends where %s should be (is it cut short?)", want)
	}
	return s.errAt(s.pos, "expected %s, found %s", want, s.describe())
}

func (s *jsonScanner) describe() string {
	switch c := s.data[s.pos]; c {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		if c == '-' || c >= '0' && c <= '9' || c == 'N' || c == 'I' {
			return "a number"
		}
		r, _ := utf8.DecodeRune(s.data[s.pos:])
		return fmt.Sprintf("%q", r)
	}
}

func (s *jsonScanner) enter(off int) error {
	s.depth++
	if s.depth > maxJSONDepth {
		return s.errAt(off, "the JSON nests deeper than %d levels", maxJSONDepth)
	}
	return nil
}

// object reads an object, calling member for each key with the key's
// offset; member must read the value. A key met twice is an error: JSON
// leaves its meaning open and XGBoost's reader would keep only one.
func (s *jsonScanner) object(member func(key string, at int) error) error {
	if s.peek() != '{' {
		return s.unexpected("an object")
	}
	if err := s.enter(s.pos); err != nil {
		return err
	}
	s.pos++
	var seen map[string]bool
	if s.peek() == '}' {
		s.pos++
		s.depth--
		return nil
	}
	for {
		if s.peek() != '"' {
			return s.unexpected("a key (a string)")
		}
		at := s.pos
		key, err := s.str()
		if err != nil {
			return err
		}
		if seen == nil {
			seen = map[string]bool{}
		}
		if seen[key] {
			return s.errAt(at, "key %q appears twice in one object", key)
		}
		seen[key] = true
		if s.peek() != ':' {
			return s.unexpected(`":"`)
		}
		s.pos++
		if err := member(key, at); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.pos++
		case '}':
			s.pos++
			s.depth--
			return nil
		default:
			return s.unexpected(`"," or "}"`)
		}
	}
}

// array reads an array, calling elem for each element; elem must read it.
func (s *jsonScanner) array(elem func(i int) error) error {
	if s.peek() != '[' {
		return s.unexpected("an array")
	}
	if err := s.enter(s.pos); err != nil {
		return err
	}
	s.pos++
	if s.peek() == ']' {
		s.pos++
		s.depth--
		return nil
	}
	for i := 0; ; i++ {
		if err := elem(i); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.pos++
		case ']':
			s.pos++
			s.depth--
			return nil
		default:
			return s.unexpected(`"," or "]"`)
		}
	}
}

// str reads a string, decoding escapes.
func (s *jsonScanner) str() (string, error) {
	if s.peek() != '"' {
		return "", s.unexpected("a string")
	}
	start := s.pos
	s.pos++
	plain := s.pos
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			out := string(s.data[plain:s.pos])
			s.pos++
			return out, nil
		case c == '\\':
			return s.escaped(start, plain)
		case c < 0x20:
			return "", s.errAt(s.pos, "control character %#x in a string", c)
		}
		s.pos++
	}
	return "", s.errAt(start, "the string does not end")
}

// escaped finishes a string that has escapes; s.pos is at the first one.
func (s *jsonScanner) escaped(start, plain int) (string, error) {
	buf := append([]byte(nil), s.data[plain:s.pos]...)
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			return string(buf), nil
		case c < 0x20:
			return "", s.errAt(s.pos, "control character %#x in a string", c)
		case c != '\\':
			buf = append(buf, c)
			s.pos++
			continue
		}
		if s.pos+1 >= len(s.data) {
			break
		}
		at := s.pos
		e := s.data[s.pos+1]
		s.pos += 2
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return "", s.errAt(at, `bad \u escape`)
			}
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if s.pos+1 < len(s.data) && s.data[s.pos] == '\\' && s.data[s.pos+1] == 'u' {
					save := s.pos
					s.pos += 2
					if lo, ok := s.hex4(); ok {
						r2 = utf16.DecodeRune(r, lo)
					}
					if r2 == utf8.RuneError {
						s.pos = save
					}
				}
				r = r2
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", s.errAt(at, "unknown escape \\%c in a string", e)
		}
	}
	return "", s.errAt(start, "the string does not end")
}

func (s *jsonScanner) hex4() (rune, bool) {
	if s.pos+4 > len(s.data) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(s.data[s.pos:s.pos+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	s.pos += 4
	return rune(v), true
}

// numberToken reads a number's text. Besides JSON's numbers it takes NaN,
// Infinity and -Infinity, which XGBoost writes for such values.
func (s *jsonScanner) numberToken() (string, int, error) {
	s.space()
	start := s.pos
	for _, lit := range []string{"NaN", "Infinity", "-Infinity"} {
		if bytes.HasPrefix(s.data[s.pos:], []byte(lit)) {
			s.pos += len(lit)
			return lit, start, nil
		}
	}
	i := s.pos
	if i < len(s.data) && s.data[i] == '-' {
		i++
	}
	digits := i
	for i < len(s.data) && s.data[i] >= '0' && s.data[i] <= '9' {
		i++
	}
	if i == digits {
		return "", start, s.unexpected("a number")
	}
	if i < len(s.data) && s.data[i] == '.' {
		i++
		frac := i
		for i < len(s.data) && s.data[i] >= '0' && s.data[i] <= '9' {
			i++
		}
		if i == frac {
			return "", start, s.errAt(start, "malformed number")
		}
	}
	if i < len(s.data) && (s.data[i] == 'e' || s.data[i] == 'E') {
		i++
		if i < len(s.data) && (s.data[i] == '+' || s.data[i] == '-') {
			i++
		}
		exp := i
		for i < len(s.data) && s.data[i] >= '0' && s.data[i] <= '9' {
			i++
		}
		if i == exp {
			return "", start, s.errAt(start, "malformed number")
		}
	}
	s.pos = i
	return string(s.data[start:i]), start, nil
}

// float reads a number as a float64 (bits 64) or rounded once to float32
// (bits 32), as XGBoost parses its float fields.
func (s *jsonScanner) float(bits int) (float64, int, error) {
	tok, at, err := s.numberToken()
	if err != nil {
		return 0, at, err
	}
	return parseJSONFloat(tok, bits), at, nil
}

func parseJSONFloat(tok string, bits int) float64 {
	switch tok {
	case "NaN":
		return math.NaN()
	case "Infinity":
		return math.Inf(1)
	case "-Infinity":
		return math.Inf(-1)
	}
	// The token is a well-formed JSON number; only its range can fail, and
	// then ParseFloat returns ±Inf, which the callers reject where it
	// matters.
	f, _ := strconv.ParseFloat(tok, bits)
	return f
}

// integer reads a number that must be a whole number within int32.
func (s *jsonScanner) integer() (int64, int, error) {
	tok, at, err := s.numberToken()
	if err != nil {
		return 0, at, err
	}
	v, err := strconv.ParseInt(tok, 10, 32)
	if err != nil {
		return 0, at, s.errAt(at, "expected a whole number within ±2^31, found %s", tok)
	}
	return v, at, nil
}

// skip reads any value and drops it.
func (s *jsonScanner) skip() error {
	switch c := s.peek(); {
	case c == '{':
		return s.object(func(string, int) error { return s.skip() })
	case c == '[':
		return s.array(func(int) error { return s.skip() })
	case c == '"':
		_, err := s.str()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == 0:
		return s.unexpected("a value")
	default:
		_, _, err := s.numberToken()
		return err
	}
}

func (s *jsonScanner) literal(lit string) error {
	if !bytes.HasPrefix(s.data[s.pos:], []byte(lit)) {
		return s.unexpected("a value")
	}
	s.pos += len(lit)
	return nil
}

// boolean reads true, false, or 0 and 1 (XGBoost writes default_left as
// numbers).
func (s *jsonScanner) boolean() (bool, int, error) {
	at := s.pos
	switch s.peek() {
	case 't':
		return true, at, s.literal("true")
	case 'f':
		return false, at, s.literal("false")
	}
	v, at, err := s.integer()
	if err != nil {
		return false, at, err
	}
	if v != 0 && v != 1 {
		return false, at, s.errAt(at, "expected 0 or 1, found %d", v)
	}
	return v == 1, at, nil
}

// intString reads a whole number written as a string, as XGBoost writes
// its parameters ("num_trees": "100").
func (s *jsonScanner) intString() (int64, int, error) {
	s.space()
	at := s.pos
	v, err := s.str()
	if err != nil {
		return 0, at, err
	}
	n, perr := strconv.ParseInt(v, 10, 64)
	if perr != nil {
		return 0, at, s.errAt(at, "expected a whole number in a string, found %q", v)
	}
	return n, at, nil
}
