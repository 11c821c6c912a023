package server

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/valyala/fastjson"

	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
)

// Limits on a decide request. They keep one request's cost bounded; the
// engine applies the ruleset's own, usually tighter, limits on top.
const (
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
	st.req.Preview = false
	st.req.WhatIf = nil
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
	if err == nil && badStringByte(body) >= 0 {
		err = errBadString
	}
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
		seenNow
		seenWhatIf
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
		case "now":
			bit = seenNow
		case "what_if":
			bit = seenWhatIf
		default:
			name := string(key)
			st.fail(codeUnknownField, name, name+" is not a known field; expected customer_id, placements, context, explain, now or what_if")
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
		case seenNow:
			st.decodeNow(fv)
		case seenWhatIf:
			st.decodeWhatIf(fv)
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
	if p := idProblem(b, maxIDBytes); p != "" {
		st.fail(codeInvalidField, field, field+p)
		return
	}
	st.req.CustomerID = unsafeString(b)
}

// placementIDProblem checks a placement id's length. The engine refuses
// any id the ruleset does not configure, so nothing more is needed here.
func placementIDProblem(b []byte) string {
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
			if p := placementIDProblem(b); p != "" {
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
			if problem := placementIDProblem(b); problem != "" {
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

// decodeCount reads a placement's count: 1 to maxPlacementCount. Zero is
// refused rather than read as "the default", which is what leaving count
// out means.
func (st *decodeState) decodeCount(v *fastjson.Value, i int) int {
	if v.Type() == fastjson.TypeNumber {
		if n, err := v.Int(); err == nil && n >= 1 && n <= maxPlacementCount {
			return n
		}
	}
	path := placementPath(i) + ".count"
	st.fail(codeInvalidField, path, path+" must be an integer from 1 to "+strconv.Itoa(maxPlacementCount)+
		" (leave it out for the placement's default)")
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

// decodeNow reads "now", the time a preview decides at (RFC 3339). The
// handler lets only admin requests use it.
func (st *decodeState) decodeNow(v *fastjson.Value) {
	b, err := v.StringBytes()
	if err != nil {
		st.fail(codeInvalidField, "now", "now must be an RFC 3339 time string such as 2026-11-27T10:00:00Z, got "+v.Type().String())
		return
	}
	t, err := time.Parse(time.RFC3339, string(b))
	if err != nil || t.Year() < 2000 || t.Year() > 2200 {
		st.fail(codeInvalidField, "now", "now must be an RFC 3339 time between the years 2000 and 2200 such as 2026-11-27T10:00:00Z, got "+strconv.Quote(string(b)))
		return
	}
	st.req.Now, st.req.Preview = t, true
}

// decodeWhatIf reads "what_if", the changes a preview makes to the
// customer: {"features": {…}, "consent": {"email": false}, "history":
// "none"}. The handler lets only admin requests use it. It is rare, so it
// allocates; the decide path without it does not.
func (st *decodeState) decodeWhatIf(v *fastjson.Value) {
	const example = `{"features": {"tier": "gold"}, "consent": {"email": false}, "history": "none"}`
	obj, err := v.Object()
	if err != nil {
		st.fail(codeInvalidField, "what_if", "what_if must be an object such as "+example+", got "+v.Type().String())
		return
	}
	w := &engine.WhatIf{}
	seen := map[string]bool{}
	obj.Visit(func(k []byte, fv *fastjson.Value) {
		if st.failed {
			return
		}
		name := string(k)
		path := "what_if." + name
		if seen[name] {
			st.fail(codeInvalidField, path, path+" is given more than once")
			return
		}
		seen[name] = true
		switch name {
		case "features":
			values, apiErr := featureValues(fv, path)
			if apiErr != nil {
				st.fail(apiErr.code, apiErr.field, apiErr.message)
				return
			}
			w.Features = values
		case "consent":
			st.decodeWhatIfConsent(fv, w)
		case "history":
			switch h := string(fv.GetStringBytes()); {
			case fv.Type() != fastjson.TypeString:
				st.fail(codeInvalidField, path, path+` must be "stored" or "none", got `+fv.Type().String())
			case h == "none":
				w.NoHistory = true
			case h != "stored":
				st.fail(codeInvalidField, path, path+` must be "stored" (the customer's recorded events) or "none" (as if there were none), got `+strconv.Quote(h))
			}
		default:
			st.fail(codeUnknownField, path, path+" is not a known field; expected features, consent or history")
		}
	})
	st.req.WhatIf, st.req.Preview = w, true
}

func (st *decodeState) decodeWhatIfConsent(v *fastjson.Value, w *engine.WhatIf) {
	const path = "what_if.consent"
	obj, err := v.Object()
	if err != nil {
		st.fail(codeInvalidField, path, path+` must be an object of channels, such as {"email": false}, got `+v.Type().String())
		return
	}
	if obj.Len() > maxConsentChannels {
		st.fail(codeInvalidField, path, path+" must name at most "+strconv.Itoa(maxConsentChannels)+" channels")
		return
	}
	w.Consent = make(map[string]bool, obj.Len())
	obj.Visit(func(k []byte, fv *fastjson.Value) {
		if st.failed {
			return
		}
		ch := string(k)
		field := path + "." + ch
		if p := textProblem(k); p != "" || len(k) == 0 || len(k) > maxChannelBytes {
			st.fail(codeInvalidField, field, path+" must name channels of 1 to "+strconv.Itoa(maxChannelBytes)+" bytes of text")
			return
		}
		if _, dup := w.Consent[ch]; dup {
			st.fail(codeInvalidField, field, field+" is given more than once")
			return
		}
		switch fv.Type() {
		case fastjson.TypeTrue:
			w.Consent[ch] = true
		case fastjson.TypeFalse:
			w.Consent[ch] = false
		default:
			st.fail(codeInvalidField, field, field+" must be true (granted) or false (refused), got "+fv.Type().String())
		}
	})
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

// syntaxError records an invalid_json error for body, which fastjson could
// not parse (parseErr) or which has a problem in a string that fastjson lets
// through (parseErr nil).
func (st *decodeState) syntaxError(body []byte, parseErr error) {
	if st.failed {
		return
	}
	st.failed = true
	st.err = jsonError(body, parseErr)
}

// jsonError explains why body is not valid JSON. fastjson does not report
// where parsing failed, so the (rare) error path asks encoding/json, whose
// SyntaxError gives the offset, and names the field the error is in.
func jsonError(body []byte, parseErr error) apiError {
	const prefix = "request body is not valid JSON: "
	e := apiError{status: 400, code: codeInvalidJSON}
	if len(bytes.TrimSpace(body)) == 0 {
		e.message = "request body is empty"
		return e
	}
	off, reason, found := locateSyntaxError(body)
	if !found {
		// Valid JSON that fastjson refuses: nesting deeper than it allows.
		if parseErr == nil {
			parseErr = errors.New("invalid string")
		}
		e.message = prefix + parseErr.Error()
		return e
	}
	line, col := lineColumn(body, off)
	field := fieldAt(body, off)
	where := ""
	if field != "" {
		where = " in " + field
	}
	e.field = field
	e.message = prefix + reason + where + " at offset " + strconv.Itoa(off) +
		" (line " + strconv.Itoa(line) + ", column " + strconv.Itoa(col) + ")"
	return e
}

// locateSyntaxError returns the offset of the byte where b stops being
// RFC 8259 JSON (len(b) when b ends too soon) and why, or found false when
// b is valid JSON.
func locateSyntaxError(b []byte) (off int, reason string, found bool) {
	var raw json.RawMessage
	err := json.Unmarshal(b, &raw)
	if err == nil {
		return 0, "", false
	}
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return 0, "", false
	}
	reason = se.Error()
	// Offset counts the bytes read, the offending one included; at the
	// end of input nothing offends and it is len(b).
	off = int(se.Offset)
	if !strings.HasPrefix(reason, "unexpected end") {
		off--
	}
	return min(max(off, 0), len(b)), reason, true
}

// fieldAt names the field whose value byte off of b is in:
// "placements[1].id", or "" when it is at the top level or between members.
// b[:off] must be a prefix of valid JSON (as locateSyntaxError's offsets
// are), so it is walked without checking it. Keys are named as written,
// escapes and all.
func fieldAt(b []byte, off int) string {
	type level struct {
		object bool
		key    []byte // the member whose value is being read; nil until its ':'
		index  int    // the element being read
		done   bool   // the member's or element's value has ended
	}
	var stack []level
	var str []byte  // the last string read, which a ':' makes a key
	scalar := false // the last byte was part of a number or literal
	valueEnded := func() {
		if len(stack) > 0 {
			stack[len(stack)-1].done = true
		}
	}
	for i := 0; i < off; i++ {
		c := b[i]
		wasScalar := scalar
		scalar = false
		switch c {
		case '"':
			start := i + 1
			for i++; i < off && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			str = b[start:min(i, off)]
			if i < off && len(stack) > 0 && (!stack[len(stack)-1].object || stack[len(stack)-1].key != nil) {
				valueEnded()
			}
		case '{', '[':
			stack = append(stack, level{object: c == '{'})
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			valueEnded()
		case ':':
			if len(stack) > 0 {
				stack[len(stack)-1].key = str
			}
		case ',':
			if len(stack) > 0 {
				top := &stack[len(stack)-1]
				top.key, top.done = nil, false
				top.index++
			}
		case ' ', '\t', '\n', '\r':
			if wasScalar {
				valueEnded()
			}
		default:
			scalar = true
		}
	}
	var path []byte
	for _, l := range stack {
		if l.done || l.object && l.key == nil {
			break
		}
		if l.object {
			if len(path) > 0 {
				path = append(path, '.')
			}
			path = append(path, l.key...)
			continue
		}
		path = append(path, '[')
		path = strconv.AppendInt(path, int64(l.index), 10)
		path = append(path, ']')
	}
	return string(path)
}

// parseBody parses a request body that is not on the decide hot path and
// applies the same strictness as decide: fastjson's leniencies inside
// strings are refused with an error naming the field.
func parseBody(p *fastjson.Parser, body []byte) (*fastjson.Value, *apiError) {
	v, err := p.ParseBytes(body)
	if err == nil && badStringByte(body) >= 0 {
		err = errBadString
	}
	if err != nil {
		e := jsonError(body, err)
		return nil, &e
	}
	return v, nil
}

var errBadString = errors.New("control character or invalid escape in a string")

// badStringByte returns the offset of the first raw control character
// (U+0000 to U+001F) or invalid escape inside a string of b, or -1. RFC 8259
// forbids both and fastjson accepts both. b is JSON fastjson has parsed.
//
// It reads b eight bytes at a time and moves on at once past words with no
// control byte and no backslash, which is nearly all of a decide body.
// Until the first backslash, whether a byte is inside a string is the
// parity of the quotes before it, so a word with a control byte needs only
// a count of those quotes: a control byte outside a string is whitespace
// between tokens (pretty-printed JSON). From the first backslash on, escapes
// decide where strings end and the rest is read byte by byte.
// BenchmarkStringCheck measures it on a decide body.
func badStringByte(b []byte) int {
	var inString uint64 // 1 inside a string, as of byte counted
	counted := 0
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		// Has x a byte below 0x20 or a backslash? The classic test, cheaper
		// than the exact masks below and as exact as a yes or no.
		if y := x ^ ('\\' * ones); ((x-0x20*ones)&^x|(y-ones)&^y)&highs == 0 {
			continue
		}
		inString ^= uint64(bytes.Count(b[counted:i], quote)) & 1
		counted = i + 8
		if zeroBytes(x^('\\'*ones)) != 0 {
			return badStringByteSlow(b, i, inString == 1)
		}
		quotes := zeroBytes(x ^ ('"' * ones))
		for ctl := controlBytes(x); ctl != 0; ctl &= ctl - 1 {
			before := ctl&-ctl - 1 // the bytes of x before this control byte
			if (inString^uint64(bits.OnesCount64(quotes&before)))&1 == 1 {
				return i + bits.TrailingZeros64(ctl)/8
			}
		}
		inString ^= uint64(bits.OnesCount64(quotes)) & 1
	}
	inString ^= uint64(bytes.Count(b[counted:i], quote)) & 1
	return badStringByteSlow(b, i, inString == 1)
}

var quote = []byte{'"'}

// Word-at-a-time byte tests. Each marks a byte of x that passes by setting
// its high bit, exactly (no carry crosses a byte).
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
	low7s = 0x7f7f7f7f7f7f7f7f
)

// zeroBytes marks the zero bytes of x.
func zeroBytes(x uint64) uint64 { return ^((x&low7s + low7s) | x | low7s) }

// controlBytes marks the bytes of x below 0x20: for a byte under 0x80,
// adding 0x60 sets its high bit exactly when it is 0x20 or more.
func controlBytes(x uint64) uint64 { return ^(x&low7s + 0x60*ones) &^ x & highs }

// badStringByteSlow is badStringByte one byte at a time from i, where the
// scan is inside a string when in is set.
func badStringByteSlow(b []byte, i int, in bool) int {
	for ; i < len(b); i++ {
		c := b[i]
		if !in {
			in = c == '"'
			continue
		}
		switch {
		case c == '"':
			in = false
		case c < 0x20:
			return i
		case c == '\\':
			if i+1 >= len(b) {
				return i
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+5 >= len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return i
				}
				i += 5
			default:
				return i
			}
		}
	}
	return -1
}

func lineColumn(b []byte, off int) (line, col int) {
	before := b[:off]
	line = 1 + bytes.Count(before, []byte{'\n'})
	col = off - bytes.LastIndexByte(before, '\n')
	return line, col
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}
