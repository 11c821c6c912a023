package rules

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/touchpoint-dev/touchpoint/features"
)

// FieldType is the declared type of a customer feature or context field.
type FieldType uint8

// Field types as written in the schema file.
const (
	TypeNumber FieldType = iota + 1
	TypeString
	TypeBool
	TypeList
)

var fieldTypeNames = map[string]FieldType{"number": TypeNumber, "string": TypeString, "bool": TypeBool, "list": TypeList}

func (t FieldType) String() string {
	switch t {
	case TypeNumber:
		return "number"
	case TypeString:
		return "string"
	case TypeBool:
		return "bool"
	case TypeList:
		return "list"
	}
	return "unknown"
}

// Kind is the feature value kind that carries this type.
func (t FieldType) Kind() features.Kind {
	switch t {
	case TypeNumber:
		return features.KindNumber
	case TypeString:
		return features.KindString
	case TypeBool:
		return features.KindBool
	case TypeList:
		return features.KindList
	}
	return features.KindMissing
}

// Field is one declared feature or context field.
type Field struct {
	Name     string
	Type     FieldType
	Default  features.Value
	Values   []string // allowed values of a string field; empty = any
	Required bool     // context only: the request must carry it
	// Protected marks a customer attribute that must not decide who gets
	// an offer or coupon (age, gender, nationality): lint warns when a
	// promotion's eligibility reads it.
	Protected   bool
	Description string
	// MaxStaleness bounds how old a cached value may be; zero = the cache's TTL.
	MaxStaleness time.Duration
	// Counter, when set, makes this a number computed from the customer's
	// event counters at decision time (the schema's counters section).
	Counter *CounterFeature
	// MaxItems bounds a list field: longer values are cut to their first
	// MaxItems items when bound for a decision, so that rules looping over
	// the list cost at most so many steps per level. Zero for other types.
	MaxItems int
}

// Limits on list fields (max_items in the schema). A rule's loops may
// nest MaxLoopNesting deep, so its cost grows with max_items squared: the
// default bounds it to 10,000 steps, the largest allowed to 1,000,000.
const (
	DefaultMaxItems = 100
	MaxMaxItems     = 1000
)

// CounterFeature is a customer feature computed from event counters: the
// number of Event events about Subject in the last Days days, or with
// LastSeen the days since the most recent one (-1 when there is none).
type CounterFeature struct {
	Event    string
	Subject  string
	Days     int
	LastSeen bool
}

// Value computes the feature from a customer's counters on day today.
func (c *CounterFeature) Value(counters []features.Counter, today int32) float64 {
	if c.LastSeen {
		last := int32(-1)
		for i := range counters {
			k := &counters[i]
			if k.Event == c.Event && k.Subject == c.Subject && k.Count > 0 && k.Day <= today && k.Day > last {
				last = k.Day
			}
		}
		if last < 0 {
			return -1
		}
		return float64(today - last)
	}
	var n int64
	from := today - int32(c.Days) + 1
	for i := range counters {
		k := &counters[i]
		if k.Event == c.Event && k.Subject == c.Subject && k.Day >= from && k.Day <= today {
			n += k.Count
		}
	}
	return float64(n)
}

// Allows reports whether v is acceptable for the field: the right kind and,
// for enumerated strings, one of the declared values.
func (f *Field) Allows(v features.Value) bool {
	if v.Kind != f.Type.Kind() {
		return false
	}
	if f.Type == TypeString && len(f.Values) > 0 {
		return contains(f.Values, v.Str)
	}
	return true
}

// Schema declares the customer features and request context fields that rule
// expressions may read. Expressions are type-checked against it at load.
type Schema struct {
	Path     string
	Customer []Field
	Context  []Field
	// Counters lists the Customer indexes of counter features.
	Counters []int
	// Events are the behavioural events the site may post, sorted by name.
	Events []EventDef

	customerIndex map[string]int
	contextIndex  map[string]int
	eventIndex    map[string]int
}

// MaxStaleness is the shortest max_staleness of any customer feature, or
// zero: cached records older than that must be read again, since a record
// is cached whole.
func (s *Schema) MaxStaleness() time.Duration {
	var m time.Duration
	for _, f := range s.Customer {
		if f.MaxStaleness > 0 && (m == 0 || f.MaxStaleness < m) {
			m = f.MaxStaleness
		}
	}
	return m
}

// CustomerField returns the index of a customer feature, or -1.
func (s *Schema) CustomerField(name string) int { return lookupIndex(s.customerIndex, name) }

// ContextField returns the index of a context field, or -1.
func (s *Schema) ContextField(name string) int { return lookupIndex(s.contextIndex, name) }

func lookupIndex(m map[string]int, name string) int {
	if i, ok := m[name]; ok {
		return i
	}
	return -1
}

// LoadSchema reads and validates a feature schema file.
func LoadSchema(path string) (*Schema, error) {
	var tooLarge ErrorList
	data, err := readFile(path, &tooLarge)
	if err != nil {
		return nil, fmt.Errorf("cannot read feature schema: %w", err)
	}
	if len(tooLarge) > 0 {
		return nil, tooLarge
	}
	return ParseSchema(path, data)
}

// ParseSchema validates schema text; path is only used in errors.
func ParseSchema(path string, data []byte) (*Schema, error) {
	src := newSource(path, data)
	var errs ErrorList
	r := &reader{src: src, errs: &errs}
	s := &Schema{Path: path, customerIndex: map[string]int{}, contextIndex: map[string]int{}, eventIndex: map[string]int{}}
	root := parseYAML(src, data, &errs)
	var onNode *yaml.Node
	var counterEvents []*yaml.Node
	if root != nil {
		var counters []Field
		var countersAt *yaml.Node
		r.mapping(root, "the feature schema", []string{"customer", "context", "counters", "events", "on"}, func(key string, _, v *yaml.Node) {
			switch key {
			case "customer":
				s.Customer = r.fields(v, "customer", false)
			case "context":
				s.Context = r.fields(v, "context", true)
			case "counters":
				counters, counterEvents = r.counterFields(v)
				countersAt = v
			case "events":
				s.Events = r.events(v)
			case "on":
				onNode = v
			}
		})
		for _, c := range counters {
			if isBehavioural := contains(s.EventNames(), c.Counter.Event); isBehavioural &&
				(strings.HasPrefix(c.Counter.Subject, "tp:") || strings.HasPrefix(c.Counter.Subject, "kind:") || strings.HasPrefix(c.Counter.Subject, "rule:")) {
				r.errf(countersAt, "counters.%s counts %s, a behavioural event, which is about no touchpoint, kind or rule; narrow it by channel or not at all", c.Name, c.Counter.Event)
			}
			if slices.ContainsFunc(s.Customer, func(f Field) bool { return f.Name == c.Name }) {
				r.errf(countersAt, "counters.%s is also a customer feature; counter features need their own names", c.Name)
				continue
			}
			s.Customer = append(s.Customer, c)
		}
	}
	for i, f := range s.Customer {
		s.customerIndex[f.Name] = i
		if f.Counter != nil {
			s.Counters = append(s.Counters, i)
		}
	}
	for i, f := range s.Context {
		s.contextIndex[f.Name] = i
	}
	for i, e := range s.Events {
		s.eventIndex[e.Name] = i
	}
	// Counters count feedback events or the schema's behavioural events.
	known := append(feedbackEvents(), s.EventNames()...)
	for _, n := range counterEvents {
		if !contains(known, n.Value) {
			r.errf(n, "counters: event must be one of %s or an event of the events section, got %q%s", strings.Join(feedbackEvents(), ", "), n.Value, suggest(n.Value, known))
		}
	}
	if onNode != nil {
		r.on(onNode, s)
	}
	if len(errs) > 0 {
		errs.sort()
		return nil, errs
	}
	return s, nil
}

func (r *reader) fields(n *yaml.Node, section string, isContext bool) []Field {
	var out []Field
	keys := []string{"type", "default", "values", "description", "max_items"}
	if isContext {
		keys = append(keys, "required")
	} else {
		keys = append(keys, "max_staleness", "protected")
	}
	r.mapping(n, section, nil, func(name string, k, v *yaml.Node) {
		if !isIdentifier(name) {
			r.errf(k, "%s field name %q must start with a letter and use only letters, digits and _", section, name)
			return
		}
		f := Field{Name: name}
		what := section + "." + name
		var defaultNode, maxItemsNode *yaml.Node
		r.mapping(v, what, keys, func(key string, _, val *yaml.Node) {
			switch key {
			case "type":
				t, ok := fieldTypeNames[val.Value]
				if !ok {
					r.errf(val, "%s: unknown type %q (use number, string, bool or list)", what, val.Value)
					return
				}
				f.Type = t
			case "default":
				defaultNode = val
			case "values":
				f.Values, _ = r.strList(val, what+".values")
			case "description":
				f.Description, _ = r.str(val, what+".description")
			case "required":
				f.Required, _ = r.boolean(val, what+".required")
			case "protected":
				f.Protected, _ = r.boolean(val, what+".protected")
			case "max_items":
				maxItemsNode = val
				n, ok := r.integer(val, what+".max_items")
				if ok && (n < 1 || n > MaxMaxItems) {
					r.errf(val, "%s.max_items must be between 1 and %d, got %d", what, MaxMaxItems, n)
					return
				}
				f.MaxItems = n
			case "max_staleness":
				d, err := time.ParseDuration(val.Value)
				if err != nil || d <= 0 {
					r.errf(val, "%s.max_staleness must be a positive duration such as 30s or 5m, got %q", what, val.Value)
					return
				}
				f.MaxStaleness = d
			}
		})
		if f.Type == 0 {
			r.errf(k, "%s needs a type (number, string, bool or list)", what)
			return
		}
		if len(f.Values) > 0 && f.Type != TypeString {
			r.errf(k, "%s: values can only be given for string fields", what)
		}
		switch {
		case f.Type != TypeList && maxItemsNode != nil:
			r.errf(maxItemsNode, "%s: max_items can only be given for list fields", what)
		case f.Type == TypeList && f.MaxItems == 0:
			f.MaxItems = DefaultMaxItems
		}
		f.Default = zeroValue(f.Type)
		if defaultNode != nil {
			if dv, ok := r.value(defaultNode, f.Type, what+".default"); ok {
				f.Default = dv
				if f.Type == TypeList && f.MaxItems > 0 && len(dv.List) > f.MaxItems {
					r.errf(defaultNode, "%s.default has %d items, more than max_items (%d)", what, len(dv.List), f.MaxItems)
				}
			}
		}
		out = append(out, f)
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// counterFields reads the counters section: customer features computed
// from event counters, e.g. coupon_impressions_7d: {event: impression,
// touchpoint: cart_coupon_10, days: 7}.
//
// It returns the nodes of the events counted, which ParseSchema checks
// once it knows the behavioural events.
func (r *reader) counterFields(n *yaml.Node) ([]Field, []*yaml.Node) {
	var out []Field
	var eventNodes []*yaml.Node
	r.mapping(n, "counters", nil, func(name string, k, v *yaml.Node) {
		what := "counters." + name
		if !isIdentifier(name) {
			r.errf(k, "%s: the name must start with a letter and use only letters, digits and _", what)
			return
		}
		c := &CounterFeature{Subject: "all"}
		f := Field{Name: name, Type: TypeNumber, Counter: c}
		subjects := 0
		r.mapping(v, what, []string{"event", "touchpoint", "kind", "channel", "rule", "days", "last_seen", "description"}, func(key string, _, val *yaml.Node) {
			switch key {
			case "event":
				c.Event, _ = r.str(val, what+".event")
				eventNodes = append(eventNodes, val)
			case "touchpoint", "kind", "channel", "rule":
				id, _ := r.nonEmptyStr(val, what+"."+key)
				prefix := key + ":"
				if key == "touchpoint" {
					prefix = "tp:"
				}
				c.Subject = prefix + id
				subjects++
			case "days":
				c.Days, _ = r.integer(val, what+".days")
				if c.Days < 1 || c.Days > 400 {
					r.errf(val, "%s.days must be between 1 and 400", what)
				}
			case "last_seen":
				c.LastSeen, _ = r.boolean(val, what+".last_seen")
			case "description":
				f.Description, _ = r.str(val, what+".description")
			}
		})
		switch {
		case c.Event == "":
			r.errf(k, "%s needs an event (impression, click, conversion, dismiss, decision or a behavioural event)", what)
		case subjects > 1:
			r.errf(k, "%s: give at most one of touchpoint, kind, channel and rule (none counts every touchpoint)", what)
		case c.LastSeen == (c.Days > 0):
			r.errf(k, "%s needs either days (a count over that many days) or last_seen: true (days since the last one)", what)
		}
		f.Default = features.Number(0)
		if c.LastSeen {
			f.Default = features.Number(-1)
		}
		out = append(out, f)
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, eventNodes
}

// value decodes a YAML scalar or list as a feature value of type t.
func (r *reader) value(n *yaml.Node, t FieldType, what string) (features.Value, bool) {
	switch t {
	case TypeNumber:
		v, ok := r.number(n, what)
		return features.Number(v), ok
	case TypeString:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
			r.errf(n, "%s must be a string, got %q", what, n.Value)
			return features.Value{}, false
		}
		return features.String(n.Value), true
	case TypeBool:
		v, ok := r.boolean(n, what)
		return features.Bool(v), ok
	case TypeList:
		v, ok := r.strList(n, what)
		if v == nil {
			v = []string{}
		}
		return features.List(v...), ok
	}
	return features.Value{}, false
}

func zeroValue(t FieldType) features.Value {
	switch t {
	case TypeNumber:
		return features.Number(0)
	case TypeString:
		return features.String("")
	case TypeBool:
		return features.Bool(false)
	case TypeList:
		return features.List()
	}
	return features.Value{}
}

func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Truncate returns v cut to the field's MaxItems when it is a longer list,
// and whether it was cut. The cut value shares v's items.
func (f *Field) Truncate(v features.Value) (features.Value, bool) {
	if v.Kind == features.KindList && f.MaxItems > 0 && len(v.List) > f.MaxItems {
		v.List = v.List[:f.MaxItems:f.MaxItems]
		return v, true
	}
	return v, false
}
