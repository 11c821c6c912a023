package loadtest

import (
	"errors"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// trackEvent is one behavioural event of the events.track section: what
// the customer did, with properties drawn per event.
type trackEvent struct {
	name   string
	weight float64
	// head is `"type":"track","name":"…"` and, when the event has
	// properties, `,"properties":{`, pre-encoded.
	head  []byte
	props []propGen
}

// propKind says how a property's value is drawn.
type propKind uint8

const (
	// propChoice copies one of pre-encoded values: fixed, a uniform or a
	// weighted choice.
	propChoice propKind = iota
	// propUniform draws a number from [lo, hi].
	propUniform
	// propUniformInt draws a whole number from lo to lo+span-1.
	propUniformInt
)

// propGen draws one property of a track event.
type propGen struct {
	// key is `"name":`, with a leading comma for all properties but the
	// first, so values are written straight after it.
	key  []byte
	kind propKind
	// lo and hi bound propUniform.
	lo, hi float64
	// ilo and span bound propUniformInt.
	ilo  int64
	span uint64
	// choices are pre-encoded JSON values with cumulative weights; cum is
	// nil for a fixed value.
	choices [][]byte
	cum     []float64
}

// Limits of the track section. Names and property counts follow the
// feature schema's own bounds on behavioural events (an event name is
// also a counter field name there), so a file within them can match a
// schema.
const (
	maxTrackEvents     = 1000
	maxTrackNameBytes  = 32
	maxTrackProperties = 64
	maxPropChoices     = 10000
	// maxExactInt is the largest whole number a float64 holds exactly: the
	// server reads JSON numbers as float64.
	maxExactInt = 1 << 53
)

// trackExample shows the section's shape in errors.
const trackExample = "{cart_updated: {weight: 70, properties: {value: {uniform: [5, 300]}, items: {uniform_int: [1, 8]}}}}"

// propExample shows a property's forms in errors.
const propExample = "a value (fixed), a list (uniform choice), a map of value: weight, {uniform: [lo, hi]} or {uniform_int: [lo, hi]}"

// parseTrack reads events.track: behavioural event name: {weight, properties}.
func (e *Events) parseTrack(n *yaml.Node, at func(*yaml.Node, string, ...any) error) error {
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		return at(n, "events.track must be a map of behavioural event name: {weight, properties}, e.g. %s", trackExample)
	}
	total := 0.0
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		what := "events.track." + k.Value
		if problem := trackNameProblem(k); problem != "" {
			return at(k, "%s: %s", what, problem)
		}
		if slices.ContainsFunc(e.track, func(t trackEvent) bool { return t.name == k.Value }) {
			return at(k, "%s is given twice", what)
		}
		t, err := parseTrackEvent(k.Value, v, what, at)
		if err != nil {
			return err
		}
		total += t.weight
		e.track = append(e.track, t)
		e.trackCum = append(e.trackCum, total)
		e.Track = append(e.Track, t.name)
	}
	if len(e.track) > maxTrackEvents {
		return at(n, "events.track: %d events is more than the %d allowed", len(e.track), maxTrackEvents)
	}
	return nil
}

// trackNameProblem says what is wrong with a behavioural event name, or "".
func trackNameProblem(k *yaml.Node) string {
	switch {
	case k.Kind != yaml.ScalarNode || !isIdentifier(k.Value) || len(k.Value) > maxTrackNameBytes:
		return "an event name starts with a letter, uses only letters, digits and _, and is at most " + strconv.Itoa(maxTrackNameBytes) + " bytes"
	case isEventType(k.Value) || k.Value == "track" || k.Value == "decision":
		// The schema refuses these names: they count as feedback.
		return k.Value + " is a feedback event type; behavioural events are named after what happened, such as cart_updated"
	}
	return ""
}

func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '_')) {
			return false
		}
	}
	return true
}

func parseTrackEvent(name string, n *yaml.Node, what string, at func(*yaml.Node, string, ...any) error) (trackEvent, error) {
	t := trackEvent{name: name}
	if n.Kind != yaml.MappingNode {
		return t, at(n, "%s must be a map such as {weight: 70, properties: {value: {uniform: [5, 300]}}}, got %s", what, show(n))
	}
	var weightNode, propsNode *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var slot **yaml.Node
		switch k.Value {
		case "weight":
			slot = &weightNode
		case "properties":
			slot = &propsNode
		default:
			return t, at(k, "%s: unknown key %q; the keys are weight and properties", what, k.Value)
		}
		if *slot != nil {
			return t, at(k, "%s.%s is given twice", what, k.Value)
		}
		*slot = v
	}
	if weightNode == nil {
		return t, at(n, "%s.weight is required: how often this event is drawn among the track events, e.g. 70", what)
	}
	w, err := number(weightNode)
	if err != nil || !(w > 0) {
		return t, at(weightNode, "%s.weight must be a positive number, got %s", what, show(weightNode))
	}
	t.weight = w
	t.head = append([]byte(`"type":"track",`), member("name", name)...)
	if propsNode == nil || propsNode.Kind == yaml.ScalarNode && propsNode.Tag == "!!null" {
		return t, nil
	}
	if propsNode.Kind != yaml.MappingNode {
		return t, at(propsNode, "%s.properties must be a map of property: value, each %s", what, propExample)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(propsNode.Content); i += 2 {
		k, v := propsNode.Content[i], propsNode.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return t, at(k, "%s.properties: a property name is a plain word, got %s", what, show(k))
		}
		pwhat := what + ".properties." + k.Value
		if !isIdentifier(k.Value) {
			return t, at(k, "%s: a property name starts with a letter and uses only letters, digits and _", pwhat)
		}
		if seen[k.Value] {
			return t, at(k, "%s is given twice", pwhat)
		}
		seen[k.Value] = true
		p, err := parseProp(v, pwhat, at)
		if err != nil {
			return t, err
		}
		if len(t.props) > 0 {
			p.key = append(p.key, ',')
		}
		p.key = append(append(p.key, jsonString(k.Value)...), ':')
		t.props = append(t.props, p)
	}
	if len(t.props) > maxTrackProperties {
		return t, at(propsNode, "%s.properties: %d properties is more than the %d allowed", what, len(t.props), maxTrackProperties)
	}
	if len(t.props) > 0 {
		t.head = append(t.head, `,"properties":{`...)
	}
	return t, nil
}

// parseProp reads one property's values. A plain value is sent as it is,
// a list is a uniform choice and a map of value: weight a weighted one;
// each keeps its YAML type (true is a bool, 3 a number, angry a string),
// as context values do. A map with the single key uniform or uniform_int
// is a range instead.
func parseProp(n *yaml.Node, what string, at func(*yaml.Node, string, ...any) error) (propGen, error) {
	var p propGen
	switch n.Kind {
	case yaml.ScalarNode:
		val, err := propJSON(n)
		if err != nil {
			return p, at(n, "%s: %v", what, err)
		}
		p.choices = [][]byte{val}
		return p, nil
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			return p, at(n, "%s: an empty list has nothing to choose from", what)
		}
		for _, item := range n.Content {
			val, err := propJSON(item)
			if err != nil {
				return p, at(item, "%s: each item of a list is a plain value to choose from: %v", what, err)
			}
			p.choices = append(p.choices, val)
			p.cum = append(p.cum, float64(len(p.choices)))
		}
	case yaml.MappingNode:
		if len(n.Content) == 0 {
			return p, at(n, "%s: an empty map has nothing to choose from", what)
		}
		if r := n.Content[0].Value; r == "uniform" || r == "uniform_int" {
			return parseRange(n, what, at)
		}
		total := 0.0
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "uniform" || k.Value == "uniform_int" {
				return p, at(k, "%s: %s is a range and stands alone, as in {%s: [lo, hi]}; a choice is a map of value: weight", what, k.Value, k.Value)
			}
			val, err := propJSON(k)
			if err != nil {
				return p, at(k, "%s: each key of a weighted choice is a plain value: %v", what, err)
			}
			if slices.ContainsFunc(p.choices, func(c []byte) bool { return string(c) == string(val) }) {
				return p, at(k, "%s: %s is given twice", what, show(k))
			}
			w, err := number(v)
			if err != nil || !(w > 0) {
				return p, at(v, "%s: weight of %s must be a positive number, got %s", what, show(k), show(v))
			}
			total += w
			p.choices = append(p.choices, val)
			p.cum = append(p.cum, total)
		}
	default:
		return p, at(n, "%s: use %s", what, propExample)
	}
	if len(p.choices) > maxPropChoices {
		return p, at(n, "%s: %d values is more than the %d allowed", what, len(p.choices), maxPropChoices)
	}
	return p, nil
}

// propJSON encodes a plain property value, keeping its YAML type.
func propJSON(n *yaml.Node) ([]byte, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, errors.New("null is not a property value; leave the property out to send none")
	}
	return scalarJSON(n)
}

// parseRange reads {uniform: [lo, hi]} or {uniform_int: [lo, hi]}.
func parseRange(n *yaml.Node, what string, at func(*yaml.Node, string, ...any) error) (propGen, error) {
	var p propGen
	k, v := n.Content[0], n.Content[1]
	if len(n.Content) > 2 {
		return p, at(n.Content[2], "%s: %s is a range and stands alone, as in {%s: [lo, hi]}", what, k.Value, k.Value)
	}
	form := "two numbers [lo, hi] with lo <= hi"
	if k.Value == "uniform_int" {
		form = "two whole numbers [lo, hi] with lo <= hi, at most 2^53 in size"
	}
	if v.Kind != yaml.SequenceNode || len(v.Content) != 2 {
		return p, at(v, "%s.%s must be %s, got %s", what, k.Value, form, show(v))
	}
	lo, errLo := number(v.Content[0])
	hi, errHi := number(v.Content[1])
	if errLo != nil || errHi != nil || lo > hi {
		return p, at(v, "%s.%s must be %s, got [%s]", what, k.Value, form, rangeText(v))
	}
	if k.Value == "uniform" {
		p.kind, p.lo, p.hi = propUniform, lo, hi
		return p, nil
	}
	for _, b := range v.Content {
		if b.Tag != "!!int" {
			return p, at(v, "%s.%s must be %s, got [%s]", what, k.Value, form, rangeText(v))
		}
	}
	ilo, errLo := strconv.ParseInt(v.Content[0].Value, 0, 64)
	ihi, errHi := strconv.ParseInt(v.Content[1].Value, 0, 64)
	if errLo != nil || errHi != nil || ilo < -maxExactInt || ihi > maxExactInt {
		return p, at(v, "%s.%s must be %s, got [%s]", what, k.Value, form, rangeText(v))
	}
	p.kind, p.ilo, p.span = propUniformInt, ilo, uint64(ihi-ilo)+1
	return p, nil
}

// rangeText shows a range's items as written.
func rangeText(v *yaml.Node) string {
	parts := make([]string, len(v.Content))
	for i, c := range v.Content {
		parts[i] = c.Value
		if c.Kind != yaml.ScalarNode {
			parts[i] = show(c)
		}
	}
	return strings.Join(parts, ", ")
}

// appendTrack writes a track event's type, name and properties, drawing
// each property's value from s.
func (s *Source) appendTrack(dst []byte, t *trackEvent) []byte {
	dst = append(dst, t.head...)
	if len(t.props) == 0 {
		return dst
	}
	for i := range t.props {
		p := &t.props[i]
		dst = append(dst, p.key...)
		switch p.kind {
		case propChoice:
			c := 0
			if p.cum != nil {
				c = pick(p.cum, s.rng.Float64())
			}
			dst = append(dst, p.choices[c]...)
		case propUniform:
			v := p.lo + s.rng.Float64()*(p.hi-p.lo)
			dst = strconv.AppendFloat(dst, v, 'g', -1, 64)
		case propUniformInt:
			dst = strconv.AppendInt(dst, p.ilo+int64(s.rng.Uint64N(p.span)), 10)
		}
	}
	return append(dst, '}')
}
