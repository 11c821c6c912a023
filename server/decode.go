package server

import (
	"bytes"
	"math"
	"strconv"
	"time"
	"unsafe"

	"github.com/valyala/fastjson"

	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
)

// Limits on a decide request. They keep one request's cost bounded; the
// engine applies the ruleset's own, usually tighter, limits on top.
const (
	maxIDBytes        = 256
	maxPlacements     = 16
	maxPlacementCount = 100
	maxContextFields  = 64
)

// decodeState is the reusable per-request decoding state. Strings in req
// point into parser's buffer, so req is only valid until the next decode.
type decodeState struct {
	parser fastjson.Parser
	req    engine.Request
	// strs backs the []string of list-valued context fields.
	strs   []string
	err    apiError
	failed bool
}

func (st *decodeState) reset() {
	st.req.CustomerID = ""
	clear(st.req.Placements)
	st.req.Placements = st.req.Placements[:0]
	clear(st.req.Context)
	st.req.Context = st.req.Context[:0]
	st.req.Explain = false
	st.req.Now = time.Time{}
	clear(st.strs)
	st.strs = st.strs[:0]
	st.err = apiError{}
	st.failed = false
}

// fail records the first client error; later ones are ignored so the answer
// names the earliest problem in document order.
func (st *decodeState) fail(code, field, message string) {
	if st.failed {
		return
	}
	st.failed = true
	st.err = apiError{status: 400, code: code, field: field, message: message}
}

// decode parses a decide request body into st.req. It returns nil on
// success or a client error naming the offending field.
func (st *decodeState) decode(body []byte) *apiError {
	st.reset()
	v, err := st.parser.ParseBytes(body)
	if err != nil {
		st.syntaxError(body, err)
		return &st.err
	}
	if v.Type() != fastjson.TypeObject {
		st.fail(codeInvalidJSON, "", "request body must be a JSON object, got "+v.Type().String())
		return &st.err
	}
	o, _ := v.Object()

	const (
		seenCustomer = 1 << iota
		seenPlacements
		seenContext
		seenExplain
	)
	var seen uint8
	o.Visit(func(key []byte, fv *fastjson.Value) {
		if st.failed {
			return
		}
		var bit uint8
		switch string(key) {
		case "customer_id":
			bit = seenCustomer
		case "placements":
			bit = seenPlacements
		case "context":
			bit = seenContext
		case "explain":
			bit = seenExplain
		default:
			name := string(key)
			st.fail(codeUnknownField, name, name+" is not a known field; expected customer_id, placements, context or explain")
			return
		}
		if seen&bit != 0 {
			name := string(key)
			st.fail(codeInvalidField, name, name+" is given more than once")
			return
		}
		seen |= bit
		switch bit {
		case seenCustomer:
			st.decodeCustomerID(fv)
		case seenPlacements:
			st.decodePlacements(fv)
		case seenContext:
			st.decodeContext(fv)
		case seenExplain:
			st.decodeExplain(fv)
		}
	})
	switch {
	case st.failed:
	case seen&seenCustomer == 0:
		st.fail(codeMissingField, "customer_id", "customer_id is required")
	case seen&seenPlacements == 0:
		st.fail(codeMissingField, "placements", "placements is required")
	default:
		return nil
	}
	return &st.err
}

func (st *decodeState) decodeCustomerID(v *fastjson.Value) {
	const field = "customer_id"
	if t := v.Type(); t != fastjson.TypeString {
		st.fail(codeInvalidField, field, field+" must be a string, got "+t.String())
		return
	}
	b, _ := v.StringBytes()
	if p := idProblem(b); p != "" {
		st.fail(codeInvalidField, field, field+p)
		return
	}
	st.req.CustomerID = unsafeString(b)
}

// idProblem applies the rules shared by customer and placement ids. It
// returns what is wrong (to follow the field's path), or "" when b is fine;
// callers build the path only on failure, keeping the success path
// allocation-free.
func idProblem(b []byte) string {
	switch {
	case len(b) == 0:
		return " must not be empty"
	case len(b) > maxIDBytes:
		return " must be at most " + strconv.Itoa(maxIDBytes) + " bytes, got " + strconv.Itoa(len(b))
	}
	return ""
}

func (st *decodeState) decodePlacements(v *fastjson.Value) {
	const field = "placements"
	if t := v.Type(); t != fastjson.TypeArray {
		st.fail(codeInvalidField, field, field+" must be an array, got "+t.String())
		return
	}
	arr, _ := v.Array()
	switch {
	case len(arr) == 0:
		st.fail(codeInvalidField, field, field+" must not be empty")
		return
	case len(arr) > maxPlacements:
		st.fail(codeInvalidField, field, field+" must have at most "+strconv.Itoa(maxPlacements)+" entries, got "+strconv.Itoa(len(arr)))
		return
	}
	for i, pv := range arr {
		var p engine.PlacementRequest
		object := false
		switch t := pv.Type(); t {
		case fastjson.TypeString:
			b, _ := pv.StringBytes()
			if p := idProblem(b); p != "" {
				st.fail(codeInvalidField, placementPath(i), placementPath(i)+p)
				return
			}
			p.ID = unsafeString(b)
		case fastjson.TypeObject:
			object = true
			if !st.decodePlacementObject(pv, i, &p) {
				return
			}
		default:
			st.fail(codeInvalidField, placementPath(i), placementPath(i)+" must be a string or an object, got "+t.String())
			return
		}
		for k := range st.req.Placements {
			if st.req.Placements[k].ID == p.ID {
				path := placementPath(i)
				if object {
					path += ".id"
				}
				st.fail(codeInvalidField, path, path+" duplicates the id of "+placementPath(k))
				return
			}
		}
		st.req.Placements = append(st.req.Placements, p)
	}
}

func (st *decodeState) decodePlacementObject(v *fastjson.Value, i int, p *engine.PlacementRequest) bool {
	o, _ := v.Object()
	hasID, hasCount := false, false
	o.Visit(func(key []byte, fv *fastjson.Value) {
		if st.failed {
			return
		}
		switch string(key) {
		case "id":
			if hasID {
				st.fail(codeInvalidField, placementPath(i)+".id", placementPath(i)+".id is given more than once")
				return
			}
			hasID = true
			if t := fv.Type(); t != fastjson.TypeString {
				st.fail(codeInvalidField, placementPath(i)+".id", placementPath(i)+".id must be a string, got "+t.String())
				return
			}
			b, _ := fv.StringBytes()
			if problem := idProblem(b); problem != "" {
				path := placementPath(i) + ".id"
				st.fail(codeInvalidField, path, path+problem)
				return
			}
			p.ID = unsafeString(b)
		case "count":
			if hasCount {
				st.fail(codeInvalidField, placementPath(i)+".count", placementPath(i)+".count is given more than once")
				return
			}
			hasCount = true
			p.Count = st.decodeCount(fv, i)
		default:
			path := placementPath(i) + "." + string(key)
			st.fail(codeUnknownField, path, path+" is not a known field; expected id or count")
		}
	})
	if st.failed {
		return false
	}
	if !hasID {
		st.fail(codeMissingField, placementPath(i)+".id", placementPath(i)+".id is required")
		return false
	}
	return true
}

func (st *decodeState) decodeCount(v *fastjson.Value, i int) int {
	if v.Type() == fastjson.TypeNumber {
		if n, err := v.Int(); err == nil && n >= 0 {
			if n <= maxPlacementCount {
				return n
			}
			path := placementPath(i) + ".count"
			st.fail(codeInvalidField, path, path+" must be at most "+strconv.Itoa(maxPlacementCount))
			return 0
		}
	}
	path := placementPath(i) + ".count"
	st.fail(codeInvalidField, path, path+" must be a non-negative integer")
	return 0
}

func placementPath(i int) string { return "placements[" + strconv.Itoa(i) + "]" }

func (st *decodeState) decodeContext(v *fastjson.Value) {
	const field = "context"
	switch t := v.Type(); t {
	case fastjson.TypeNull:
		return
	case fastjson.TypeObject:
	default:
		st.fail(codeInvalidField, field, field+" must be an object, got "+t.String())
		return
	}
	o, _ := v.Object()
	if o.Len() > maxContextFields {
		st.fail(codeInvalidField, field, field+" must have at most "+strconv.Itoa(maxContextFields)+" fields, got "+strconv.Itoa(o.Len()))
		return
	}
	o.Visit(func(key []byte, fv *fastjson.Value) {
		if st.failed {
			return
		}
		if len(key) == 0 {
			st.fail(codeInvalidField, field, field+" has an empty field name")
			return
		}
		name := unsafeString(key)
		for k := range st.req.Context {
			if st.req.Context[k].Name == name {
				path := field + "." + name
				st.fail(codeInvalidField, path, path+" is given more than once")
				return
			}
		}
		if val, ok := st.contextValue(name, fv); ok {
			st.req.Context = append(st.req.Context, engine.ContextField{Name: name, Value: val})
		}
	})
}

// contextValue converts one context value. Objects and null are refused
// rather than dropped so a client learns at once that they have no effect.
func (st *decodeState) contextValue(name string, v *fastjson.Value) (features.Value, bool) {
	switch t := v.Type(); t {
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return features.Value{Kind: features.KindString, Str: unsafeString(b)}, true
	case fastjson.TypeNumber:
		f, err := v.Float64()
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			path := "context." + name
			st.fail(codeInvalidField, path, path+" must be a finite number")
			return features.Value{}, false
		}
		return features.Value{Kind: features.KindNumber, Num: f}, true
	case fastjson.TypeTrue:
		return features.Value{Kind: features.KindBool, Bool: true}, true
	case fastjson.TypeFalse:
		return features.Value{Kind: features.KindBool}, true
	case fastjson.TypeArray:
		arr, _ := v.Array()
		start := len(st.strs)
		for j, ev := range arr {
			if et := ev.Type(); et != fastjson.TypeString {
				path := "context." + name + "[" + strconv.Itoa(j) + "]"
				st.fail(codeInvalidField, path, path+" must be a string, got "+et.String())
				return features.Value{}, false
			}
			b, _ := ev.StringBytes()
			st.strs = append(st.strs, unsafeString(b))
		}
		end := len(st.strs)
		// The full slice expression stops the engine's appends (if any)
		// from overwriting the next field's strings.
		return features.Value{Kind: features.KindList, List: st.strs[start:end:end]}, true
	default:
		path := "context." + name
		st.fail(codeInvalidField, path, path+" has unsupported type "+t.String()+"; want string, number, bool or array of strings")
		return features.Value{}, false
	}
}

func (st *decodeState) decodeExplain(v *fastjson.Value) {
	switch t := v.Type(); t {
	case fastjson.TypeTrue:
		st.req.Explain = true
	case fastjson.TypeFalse, fastjson.TypeNull:
		st.req.Explain = false
	default:
		st.fail(codeInvalidField, "explain", "explain must be a boolean, got "+t.String())
	}
}

// unsafeString views b as a string without copying. The decide path uses it
// for values inside the parser's buffer, which outlives every use: the
// request is decided and the response encoded before the parser is reused.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// syntaxError records an invalid_json error. fastjson does not report where
// parsing failed, so the (rare) error path rescans the body with a strict
// scanner that does.
func (st *decodeState) syntaxError(body []byte, parseErr error) {
	const prefix = "request body is not valid JSON: "
	if len(bytes.TrimSpace(body)) == 0 {
		st.fail(codeInvalidJSON, "", "request body is empty")
		return
	}
	off, reason, found := locateSyntaxError(body)
	if !found {
		st.fail(codeInvalidJSON, "", prefix+parseErr.Error())
		return
	}
	line, col := lineColumn(body, off)
	st.fail(codeInvalidJSON, "", prefix+reason+" at offset "+strconv.Itoa(off)+
		" (line "+strconv.Itoa(line)+", column "+strconv.Itoa(col)+")")
}

func lineColumn(b []byte, off int) (line, col int) {
	before := b[:off]
	line = 1 + bytes.Count(before, []byte{'\n'})
	col = off - bytes.LastIndexByte(before, '\n')
	return line, col
}

// locateSyntaxError finds the byte offset of the first RFC 8259 syntax error
// in b. found is false when b is valid JSON.
func locateSyntaxError(b []byte) (off int, reason string, found bool) {
	s := jsonScanner{b: b}
	if s.value(1) {
		s.space()
		if s.i == len(s.b) {
			return 0, "", false
		}
		s.reason = "unexpected data after the top-level value"
	}
	return s.i, s.reason, true
}

// jsonScanner is a minimal strict JSON syntax checker that remembers where it
// stopped. It builds nothing; it is only used to explain a parse failure.
type jsonScanner struct {
	b      []byte
	i      int
	reason string
}

func (s *jsonScanner) fail(reason string) bool {
	s.reason = reason
	return false
}

func (s *jsonScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScanner) value(depth int) bool {
	if depth > fastjson.MaxDepth {
		return s.fail("nesting deeper than " + strconv.Itoa(fastjson.MaxDepth) + " levels")
	}
	s.space()
	if s.i >= len(s.b) {
		return s.fail("unexpected end of input, expected a value")
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(depth)
	case c == '[':
		return s.array(depth)
	case c == '"':
		return s.str()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	default:
		return s.fail("unexpected character " + strconv.QuoteRune(rune(c)) + ", expected a value")
	}
}

func (s *jsonScanner) object(depth int) bool {
	s.i++ // '{'
	s.space()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return true
	}
	for {
		s.space()
		if s.i >= len(s.b) {
			return s.fail("unexpected end of input, expected an object key")
		}
		if s.b[s.i] != '"' {
			return s.fail("expected a string object key")
		}
		if !s.str() {
			return false
		}
		s.space()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return s.fail("expected ':' after object key")
		}
		s.i++
		if !s.value(depth + 1) {
			return false
		}
		s.space()
		if s.i >= len(s.b) {
			return s.fail("unexpected end of input, expected ',' or '}'")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return s.fail("expected ',' or '}' after object value")
		}
	}
}

func (s *jsonScanner) array(depth int) bool {
	s.i++ // '['
	s.space()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return true
	}
	for {
		if !s.value(depth + 1) {
			return false
		}
		s.space()
		if s.i >= len(s.b) {
			return s.fail("unexpected end of input, expected ',' or ']'")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			return s.fail("expected ',' or ']' after array value")
		}
	}
}

func (s *jsonScanner) str() bool {
	s.i++ // opening quote
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return true
		case c == '\\':
			s.i++
			if s.i >= len(s.b) {
				return s.fail("unterminated string")
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				s.i++
				for k := 0; k < 4; k++ {
					if s.i >= len(s.b) || !isHex(s.b[s.i]) {
						return s.fail(`invalid \u escape in string`)
					}
					s.i++
				}
			default:
				return s.fail("invalid escape in string")
			}
		case c < 0x20:
			return s.fail("control character in string")
		default:
			s.i++
		}
	}
	return s.fail("unterminated string")
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func (s *jsonScanner) literal(lit string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		return s.fail("invalid literal, expected " + lit)
	}
	s.i += len(lit)
	return true
}

func (s *jsonScanner) number() bool {
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case digits() == 0:
		return s.fail("invalid number, expected a digit")
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return s.fail("invalid number, expected a digit after '.'")
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return s.fail("invalid number, expected a digit in the exponent")
		}
	}
	return true
}
