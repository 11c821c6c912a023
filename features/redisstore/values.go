package redisstore

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/internal/jsonw"
	"github.com/valyala/fastjson"
)

// appendValue appends v as the JSON a features hash stores: the same JSON a
// customer file holds, so features.ParseRecord and this package read it the
// same way.
func appendValue(dst []byte, v features.Value) ([]byte, error) {
	switch v.Kind {
	case features.KindNumber:
		if math.IsNaN(v.Num) || math.IsInf(v.Num, 0) {
			return dst, errors.New("number is not finite")
		}
		return jsonw.AppendFloat(dst, v.Num), nil
	case features.KindString:
		return jsonw.AppendString(dst, v.Str), nil
	case features.KindBool:
		return strconv.AppendBool(dst, v.Bool), nil
	case features.KindList:
		dst = append(dst, '[')
		for i, s := range v.List {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonw.AppendString(dst, s)
		}
		return append(dst, ']'), nil
	}
	return dst, fmt.Errorf("cannot store a value of kind %v", v.Kind)
}

// decodeValue reads a stored feature value. Plain strings and booleans,
// which are many values, are read without the JSON parser; the others take
// a parser from pp.
func decodeValue(pp *fastjson.ParserPool, s string) (features.Value, bool) {
	switch {
	case s == "true":
		return features.Bool(true), true
	case s == "false":
		return features.Bool(false), true
	case len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' && plainJSONString(s[1:len(s)-1]):
		return features.String(s[1 : len(s)-1]), true
	case isJSONNumber(s):
		n, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(n, 0) {
			return features.Value{}, false
		}
		return features.Number(n), true
	}
	p := pp.Get()
	defer pp.Put(p)
	v, err := p.Parse(s)
	if err != nil {
		return features.Value{}, false
	}
	switch v.Type() {
	case fastjson.TypeNumber:
		n, err := v.Float64()
		if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
			return features.Value{}, false
		}
		return features.Number(n), true
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		if !utf8.Valid(b) {
			return features.Value{}, false
		}
		return features.String(string(b)), true
	case fastjson.TypeArray:
		items, _ := v.Array()
		out := features.List()
		if len(items) > 0 {
			out.List = make([]string, len(items))
		}
		for i, item := range items {
			b, err := item.StringBytes()
			if err != nil || !utf8.Valid(b) {
				return features.Value{}, false
			}
			out.List[i] = string(b)
		}
		return out, true
	}
	return features.Value{}, false
}

// isJSONNumber reports whether s is a number in JSON's grammar, which
// strconv.ParseFloat then reads exactly as a JSON parser would.
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - start
	}
	switch n := digits(); {
	case n == 0:
		return false
	case n > 1 && s[i-n] == '0':
		return false // leading zero
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// plainJSONString reports whether s is the body of a JSON string that needs
// no unescaping: valid UTF-8 without quotes, backslashes or control bytes.
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			return false
		}
	}
	return utf8.ValidString(s)
}

// parseConsent reads a consent hash value, "1|<unix>" or "0|<unix>".
func parseConsent(s string) (features.Consent, bool) {
	g, at, ok := strings.Cut(s, "|")
	if !ok || (g != "0" && g != "1") {
		return features.Consent{}, false
	}
	sec, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		return features.Consent{}, false
	}
	return features.Consent{Granted: g == "1", At: time.Unix(sec, 0).UTC()}, true
}

// decodeRecord builds a Record from the three hashes, or nil when all are
// empty. Values is nil when the features hash is: counters or consent alone
// (events for an unknown or erased id) do not make a customer known.
// Entries that do not decode, which only a foreign writer can produce, are
// skipped and counted in bad, so one bad value does not make the customer
// unknown.
func decodeRecord(pp *fastjson.ParserPool, layouts *features.Layouts, id string, feats, counters, consent map[string]string, cutoff int32) (rec *features.Record, bad int) {
	if len(feats) == 0 && len(counters) == 0 && len(consent) == 0 {
		return nil, 0
	}
	rec = &features.Record{ID: id}
	if len(feats) > 0 {
		values := make(map[string]features.Value, len(feats))
		for name, raw := range feats {
			v, ok := decodeValue(pp, raw)
			if !ok {
				bad++
				continue
			}
			values[name] = v
		}
		rec.Values = layouts.Pack(values)
	}
	if len(counters) > 0 {
		rec.Counters = make([]features.Counter, 0, len(counters))
		for field, raw := range counters {
			event, subject, day, ok := parseCounterField(field)
			n, err := strconv.ParseInt(raw, 10, 64)
			if !ok || err != nil {
				bad++
				continue
			}
			if day < cutoff {
				continue // pruned on the next counting write
			}
			rec.Counters = append(rec.Counters, features.Counter{Event: event, Subject: subject, Day: day, Count: n})
		}
		slices.SortFunc(rec.Counters, func(a, b features.Counter) int {
			return cmp.Or(cmp.Compare(a.Day, b.Day), strings.Compare(a.Event, b.Event), strings.Compare(a.Subject, b.Subject))
		})
	}
	if len(consent) > 0 {
		rec.Consent = make(map[string]features.Consent, len(consent))
		for channel, raw := range consent {
			c, ok := parseConsent(raw)
			if !ok {
				bad++
				continue
			}
			rec.Consent[channel] = c
		}
	}
	return rec, bad
}
