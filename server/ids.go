package server

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxIDBytes bounds a customer id; other identifiers have their own,
// smaller bounds (see the events decoder).
const maxIDBytes = 256

// idProblem is the one rule for identifiers the server keeps or acts on:
// decide's customer_id, every event's ids and names, and the customer id in
// /v1/customers/{id}. An id is 1 to max bytes of valid UTF-8 whose
// characters are all printable (Unicode letters, marks, numbers,
// punctuation and symbols, and the ASCII space), with no space at either
// end, and is not "." or "..". So an id has no control characters, no
// invisible ones (zero-width space, bidirectional overrides) and no other
// whitespace (tab, newline, no-break space): two ids that print the same are
// the same id. "." and ".." are refused because URL clients remove them from
// a path, which would leave such a customer unreachable by the customer
// endpoints; any other id is addressable there percent-encoded.
//
// It returns what is wrong, worded to follow the field's name, or "" when b
// is fine. Callers build the field's name only on failure, so the success
// path allocates nothing; for the usual ASCII id it is one compare per byte.
func idProblem(b []byte, max int) string {
	switch {
	case len(b) == 0:
		return " must not be empty"
	case len(b) > max:
		return " must be at most " + strconv.Itoa(max) + " bytes, got " + strconv.Itoa(len(b))
	}
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c > ' ' && c < utf8.RuneSelf-1: // printable ASCII, 0x21 to 0x7E
			i++
			continue
		case c == ' ':
			if i == 0 || i == len(b)-1 {
				return " must not begin or end with a space"
			}
			i++
			continue
		case c < utf8.RuneSelf:
			return " must not contain control character " + runeName(rune(c)) + " (at byte " + strconv.Itoa(i) + ")"
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return " must be valid UTF-8 (bad byte 0x" + strconv.FormatUint(uint64(c), 16) + " at byte " + strconv.Itoa(i) + ")"
		}
		if !unicode.IsPrint(r) {
			return " must contain only printable characters, got " + runeName(r) + " (at byte " + strconv.Itoa(i) + ")"
		}
		i += size
	}
	if b[0] == '.' && (len(b) == 1 || len(b) == 2 && b[1] == '.') {
		return ` must not be "." or ".."`
	}
	return ""
}

// runeName writes r as U+XXXX, which shows invisible characters.
func runeName(r rune) string {
	s := strings.ToUpper(strconv.FormatInt(int64(r), 16))
	for len(s) < 4 {
		s = "0" + s
	}
	return "U+" + s
}

// textProblem checks a free-text string the server keeps (a feature value):
// it must be valid UTF-8. Control characters written as JSON escapes are
// allowed there; raw ones never reach this far (see checkJSONStrings).
func textProblem(b []byte) string {
	if utf8.Valid(b) {
		return ""
	}
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return " must be valid UTF-8 (bad byte 0x" + strconv.FormatUint(uint64(b[i]), 16) + " at byte " + strconv.Itoa(i) + ")"
		}
		i += size
	}
	return ""
}

// pathID reads the customer id segment of a raw request path: it decodes
// percent-escapes exactly once and applies idProblem. The raw path is split
// on '/' before decoding, so an encoded "%2F" stays inside the id and can
// never select another customer or another endpoint.
func pathID(raw []byte) (string, string) {
	id := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '%' {
			id = append(id, c)
			continue
		}
		if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
			return "", " has a malformed percent-escape at byte " + strconv.Itoa(i) + "; write a literal % as %25"
		}
		id = append(id, unhex(raw[i+1])<<4|unhex(raw[i+2]))
		i += 2
	}
	if p := idProblem(id, maxIDBytes); p != "" {
		return "", p
	}
	return string(id), ""
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
