package features

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// RecordParser decodes customer records from JSON. It keeps the fastjson
// parser's buffers between calls, so a long-lived RecordParser parses without
// re-growing them. The zero value is ready to use. A RecordParser must not be
// used by two goroutines at once; Records it returns share nothing with it and
// stay valid after later calls.
//
// A record is one JSON object:
//
//	{"id": "c-000001", "features": {"ltv": 1200.5, "stage": "loyalty", "consent_marketing": true, "interests": ["shoes", "bags"]}}
//
// JSON numbers, strings, booleans and arrays of strings become KindNumber,
// KindString, KindBool and KindList values; a null feature is treated as
// absent. Top-level fields other than "id" and "features" are ignored so the
// data files can carry bookkeeping fields without breaking older readers.
type RecordParser struct {
	p fastjson.Parser
	// Scratch for Parse, reused so parsing allocates only what the Record keeps.
	names [][]byte
	feats []rawFeature
}

// Parse decodes one record.
func (rp *RecordParser) Parse(data []byte) (*Record, error) {
	id, feats, err := parseEnvelope(&rp.p, data)
	if err != nil {
		return nil, err
	}
	names, fs := rp.names[:0], rp.feats[:0]
	textLen, items := len(id), 0
	err = walkFeatures(feats, func(name []byte, f *rawFeature) error {
		names, fs = append(names, name), append(fs, *f)
		textLen += len(name) + len(f.str)
		for _, item := range f.list {
			s, _ := item.StringBytes()
			textLen += len(s)
		}
		items += len(f.list)
		return nil
	})
	// Keep the scratch slices, but not pointers into this parse's buffers.
	defer func() {
		clear(names)
		clear(fs)
		rp.names, rp.feats = names[:0], fs[:0]
	}()
	if err != nil {
		return nil, err
	}

	// All the record's text goes into one string and all list items into one
	// slice, so a record costs a handful of allocations instead of one per
	// name, string and list.
	var text textArena
	text.Grow(textLen)
	var itemBuf []string
	if items > 0 {
		itemBuf = make([]string, items)
	}
	values := make(map[string]Value, len(fs))
	for i := range fs {
		f := &fs[i]
		name := text.add(names[i])
		if _, dup := values[name]; dup {
			return nil, fmt.Errorf("duplicate feature %q", name)
		}
		var v Value
		switch f.kind {
		case KindNumber:
			v = Number(f.num)
		case KindString:
			v = String(text.add(f.str))
		case KindBool:
			v = Bool(f.b)
		case KindList:
			v = List()
			if n := len(f.list); n > 0 {
				v.List, itemBuf = itemBuf[:n:n], itemBuf[n:]
				for j, item := range f.list {
					s, _ := item.StringBytes()
					v.List[j] = text.add(s)
				}
			}
		}
		values[name] = v
	}
	return &Record{ID: text.add(id), Values: NewValues(values)}, nil
}

// textArena hands out strings carved from one buffer. Strings handed out stay
// valid as it grows, because strings.Builder never rewrites bytes it has
// written; growing it to the full size up front keeps it one allocation.
type textArena struct{ strings.Builder }

func (a *textArena) add(b []byte) string {
	start := a.Len()
	a.Write(b)
	return a.String()[start:]
}

func (a *textArena) addString(s string) string {
	start := a.Len()
	a.WriteString(s)
	return a.String()[start:]
}

// ParseRecord decodes one record with a throwaway parser. Hot paths should
// keep a RecordParser instead.
func ParseRecord(data []byte) (*Record, error) {
	var rp RecordParser
	return rp.Parse(data)
}

// parseEnvelope parses a record and returns its id and features object. Both
// point into p's buffers and are valid until p parses again.
func parseEnvelope(p *fastjson.Parser, data []byte) (id []byte, feats *fastjson.Object, err error) {
	v, err := p.ParseBytes(data)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid JSON: %w", err)
	}
	top, err := v.Object()
	if err != nil {
		return nil, nil, fmt.Errorf("record must be a JSON object, got %s", typeName(v))
	}
	var idSeen, featsSeen bool
	top.Visit(func(key []byte, v *fastjson.Value) {
		if err != nil {
			return
		}
		switch string(key) {
		case "id":
			if idSeen {
				err = errors.New(`duplicate "id" field`)
				return
			}
			idSeen = true
			if v.Type() != fastjson.TypeString {
				err = fmt.Errorf(`"id" must be a string, got %s`, typeName(v))
				return
			}
			id, _ = v.StringBytes()
		case "features":
			if featsSeen {
				err = errors.New(`duplicate "features" field`)
				return
			}
			featsSeen = true
			if v.Type() != fastjson.TypeObject {
				err = fmt.Errorf(`"features" must be an object, got %s`, typeName(v))
				return
			}
			feats, _ = v.Object()
		}
	})
	switch {
	case err != nil:
		return nil, nil, err
	case !idSeen:
		return nil, nil, errors.New(`missing "id"`)
	case len(id) == 0:
		return nil, nil, errors.New(`"id" is empty`)
	case !utf8.Valid(id):
		return nil, nil, errors.New(`"id" is not valid UTF-8`)
	case !featsSeen:
		return nil, nil, errors.New(`missing "features"`)
	}
	return id, feats, nil
}

// rawFeature is one validated feature still pointing into parser buffers.
// Validation and conversion are split so the loader can check and re-encode
// features without building Values it would throw away.
type rawFeature struct {
	kind Kind
	num  float64
	str  []byte            // KindString
	b    bool              // KindBool
	list []*fastjson.Value // KindList; every item is a checked string
}

// walkFeatures validates every feature of obj and calls fn for each present
// one, in input order, stopping at the first error. Null features are skipped.
// Duplicate names are left to fn, which knows how it tracks names.
func walkFeatures(obj *fastjson.Object, fn func(name []byte, f *rawFeature) error) error {
	var err error
	var f rawFeature
	obj.Visit(func(name []byte, v *fastjson.Value) {
		if err != nil {
			return
		}
		if len(name) == 0 {
			err = errors.New("feature with an empty name")
			return
		}
		if !utf8.Valid(name) {
			err = fmt.Errorf("feature name %q is not valid UTF-8", name)
			return
		}
		var present bool
		present, err = readFeature(v, &f)
		if err != nil {
			err = fmt.Errorf("feature %q: %w", name, err)
			return
		}
		if present {
			err = fn(name, &f)
		}
	})
	return err
}

// readFeature validates v into f and reports whether the feature is present.
func readFeature(v *fastjson.Value, f *rawFeature) (bool, error) {
	*f = rawFeature{}
	switch v.Type() {
	case fastjson.TypeNull:
		return false, nil
	case fastjson.TypeNumber:
		n, err := v.Float64()
		if err != nil {
			return false, fmt.Errorf("invalid number: %w", err)
		}
		// fastjson accepts NaN and Inf spellings and overflows to Inf; none
		// of them is JSON, and rules comparing against them misbehave.
		if math.IsNaN(n) || math.IsInf(n, 0) {
			return false, errors.New("number is not finite")
		}
		f.kind, f.num = KindNumber, n
	case fastjson.TypeString:
		s, _ := v.StringBytes()
		if !utf8.Valid(s) {
			return false, errors.New("string is not valid UTF-8")
		}
		f.kind, f.str = KindString, s
	case fastjson.TypeTrue:
		f.kind, f.b = KindBool, true
	case fastjson.TypeFalse:
		f.kind, f.b = KindBool, false
	case fastjson.TypeArray:
		items, _ := v.Array()
		for i, item := range items {
			if item.Type() != fastjson.TypeString {
				return false, fmt.Errorf("list item %d is %s; lists hold only strings", i, article(typeName(item)))
			}
			if s, _ := item.StringBytes(); !utf8.Valid(s) {
				return false, fmt.Errorf("list item %d is not valid UTF-8", i)
			}
		}
		f.kind, f.list = KindList, items
	case fastjson.TypeObject:
		return false, errors.New("nested objects are not supported")
	default:
		return false, fmt.Errorf("unsupported JSON type %s", typeName(v))
	}
	return true, nil
}

// typeName names v's JSON type the way users write schemas.
func typeName(v *fastjson.Value) string {
	switch v.Type() {
	case fastjson.TypeTrue, fastjson.TypeFalse:
		return "bool"
	case fastjson.TypeNull:
		return "null"
	default:
		return v.Type().String()
	}
}

func article(noun string) string {
	switch noun {
	case "array", "object":
		return "an " + noun
	}
	return "a " + noun
}
