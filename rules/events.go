package rules

import (
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/touchpoint-dev/touchpoint/features"
)

// Bounds on the schema's behavioural events. Names become counter fields
// and Redis hash fields, so they stay short; an event's properties and
// updates are few by nature.
const (
	MaxEventNameBytes  = 32
	MaxEventProperties = 64
	MaxEventUpdates    = 64
	propertyRefPrefix  = "properties."
)

// feedbackEvents are the event types feedback about a touchpoint carries;
// behavioural events need other names, since both count under their name.
func feedbackEvents() []string {
	return []string{features.EventImpression, features.EventClick, features.EventConversion, features.EventDismiss, features.EventDecision}
}

// EventDef is a behavioural event the site may post ("type": "track"):
// its properties and the feature updates it makes (the schema's events
// and on sections).
type EventDef struct {
	Name        string
	Description string
	// Properties are sorted by name.
	Properties []Property
	Updates    []EventUpdate
}

// Property is one property of a behavioural event.
type Property struct {
	Name string
	Type FieldType
}

// EventUpdate is one feature change of an event: set the feature to a
// constant or to a property, or add a constant or a number property to it.
type EventUpdate struct {
	// Feature is the Schema.Customer index of the feature changed.
	Feature int
	Op      features.UpdateOp
	// Property is the EventDef.Properties index the value comes from, or
	// -1 for Const.
	Property int
	Const    features.Value
}

// Property returns the index of a property of e, or -1.
func (e *EventDef) Property(name string) int {
	i, ok := slices.BinarySearchFunc(e.Properties, name, func(p Property, n string) int { return strings.Compare(p.Name, n) })
	if !ok {
		return -1
	}
	return i
}

// Event returns the index of a behavioural event in s.Events, or -1.
func (s *Schema) Event(name string) int { return lookupIndex(s.eventIndex, name) }

// EventNames lists the behavioural events, for errors that suggest one.
func (s *Schema) EventNames() []string {
	out := make([]string, len(s.Events))
	for i, e := range s.Events {
		out[i] = e.Name
	}
	return out
}

// events reads the events section: name: {description, properties: {p: type}}.
func (r *reader) events(n *yaml.Node) []EventDef {
	var out []EventDef
	r.mapping(n, "events", nil, func(name string, k, v *yaml.Node) {
		what := "events." + name
		switch {
		case !isIdentifier(name) || len(name) > MaxEventNameBytes:
			r.errf(k, "%s: the name must start with a letter, use only letters, digits and _, and be at most %d bytes", what, MaxEventNameBytes)
			return
		case slices.Contains(feedbackEvents(), name) || name == "track":
			r.errf(k, "%s: %s is a feedback event type; name behavioural events after what happened, such as cart_updated", what, name)
			return
		}
		e := EventDef{Name: name}
		r.mapping(v, what, []string{"description", "properties"}, func(key string, _, val *yaml.Node) {
			switch key {
			case "description":
				e.Description, _ = r.str(val, what+".description")
			case "properties":
				r.mapping(val, what+".properties", nil, func(prop string, pk, pv *yaml.Node) {
					pwhat := what + ".properties." + prop
					if !isIdentifier(prop) {
						r.errf(pk, "%s: the name must start with a letter and use only letters, digits and _", pwhat)
						return
					}
					t, ok := fieldTypeNames[pv.Value]
					if !ok || pv.Kind != yaml.ScalarNode {
						r.errf(pv, "%s: unknown type %q (use number, string, bool or list)", pwhat, pv.Value)
						return
					}
					e.Properties = append(e.Properties, Property{Name: prop, Type: t})
				})
				if len(e.Properties) > MaxEventProperties {
					r.errf(val, "%s.properties: at most %d properties, got %d", what, MaxEventProperties, len(e.Properties))
				}
			}
		})
		sort.Slice(e.Properties, func(i, j int) bool { return e.Properties[i].Name < e.Properties[j].Name })
		out = append(out, e)
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// on reads the on section, once the customer features and events are
// known: event: {set: {feature: value or properties.p}, increment:
// {feature: number or properties.p}}.
func (r *reader) on(n *yaml.Node, s *Schema) {
	r.mapping(n, "on", nil, func(name string, k, v *yaml.Node) {
		ei := s.Event(name)
		if ei < 0 {
			r.errf(k, "on.%s: no such event in the events section%s", name, suggest(name, s.EventNames()))
			return
		}
		e := &s.Events[ei]
		what := "on." + name
		r.mapping(v, what, []string{"set", "increment"}, func(key string, _, val *yaml.Node) {
			op := features.UpdateSet
			if key == "increment" {
				op = features.UpdateAdd
			}
			r.mapping(val, what+"."+key, nil, func(feature string, fk, fv *yaml.Node) {
				if u, ok := r.eventUpdate(s, e, op, what+"."+key+"."+feature, feature, fk, fv); ok {
					if slices.ContainsFunc(e.Updates, func(o EventUpdate) bool { return o.Feature == u.Feature }) {
						r.errf(fk, "%s: %s changes feature %s twice", what, name, feature)
						return
					}
					e.Updates = append(e.Updates, u)
				}
			})
		})
		if len(e.Updates) > MaxEventUpdates {
			r.errf(k, "%s: at most %d feature updates, got %d", what, MaxEventUpdates, len(e.Updates))
		}
	})
}

func (r *reader) eventUpdate(s *Schema, e *EventDef, op features.UpdateOp, what, feature string, fk, fv *yaml.Node) (EventUpdate, bool) {
	fi := s.CustomerField(feature)
	if fi < 0 {
		r.errf(fk, "%s: no such customer feature%s", what, suggest(feature, customerNames(s)))
		return EventUpdate{}, false
	}
	f := &s.Customer[fi]
	switch {
	case f.Counter != nil:
		r.errf(fk, "%s: %s is a counter, computed from events; count the event instead (counters: {event: %s, …})", what, feature, e.Name)
		return EventUpdate{}, false
	case op == features.UpdateAdd && f.Type != TypeNumber:
		r.errf(fk, "%s: increment needs a number feature; %s is a %s", what, feature, f.Type)
		return EventUpdate{}, false
	}
	u := EventUpdate{Feature: fi, Op: op, Property: -1}
	if fv.Kind == yaml.ScalarNode && fv.Tag == "!!str" && strings.HasPrefix(fv.Value, propertyRefPrefix) {
		prop := strings.TrimPrefix(fv.Value, propertyRefPrefix)
		pi := e.Property(prop)
		if pi < 0 {
			names := make([]string, len(e.Properties))
			for i, p := range e.Properties {
				names[i] = p.Name
			}
			r.errf(fv, "%s: event %s has no property %s%s", what, e.Name, prop, suggest(prop, names))
			return EventUpdate{}, false
		}
		if pt := e.Properties[pi].Type; pt != f.Type {
			r.errf(fv, "%s: properties.%s is a %s and %s a %s", what, prop, pt, feature, f.Type)
			return EventUpdate{}, false
		}
		u.Property = pi
		return u, true
	}
	c, ok := r.value(fv, f.Type, what)
	if !ok {
		return EventUpdate{}, false
	}
	if !f.Allows(c) {
		r.errf(fv, "%s must be one of %s, got %q", what, strings.Join(f.Values, ", "), c.Str)
		return EventUpdate{}, false
	}
	u.Const = c
	return u, true
}

func customerNames(s *Schema) []string {
	out := make([]string, len(s.Customer))
	for i, f := range s.Customer {
		out[i] = f.Name
	}
	return out
}
