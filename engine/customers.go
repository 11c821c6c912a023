package engine

import (
	"strconv"
	"strings"

	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/rules"
)

// CheckFeatures checks customer feature values written through the API
// against the schema of the ruleset being served.
func (e *Engine) CheckFeatures(values map[string]features.Value) *RequestError {
	schema := e.current.Load().rs.Schema
	if len(values) == 0 {
		return &RequestError{Code: "invalid_field", Field: "features", Message: "features must not be empty"}
	}
	for name, v := range values {
		fi := schema.CustomerField(name)
		if fi < 0 {
			return &RequestError{Code: "unknown_feature", Field: "features." + name,
				Message: "features." + name + " is not declared in the feature schema"}
		}
		f := &schema.Customer[fi]
		if f.Counter != nil {
			return &RequestError{Code: "invalid_field", Field: "features." + name,
				Message: "features." + name + " is computed from the customer's events and cannot be written"}
		}
		if v.Kind != f.Type.Kind() {
			return &RequestError{Code: "invalid_field", Field: "features." + name,
				Message: "features." + name + " must be a " + f.Type.String() + ", got a " + v.Kind.String()}
		}
		if !f.Allows(v) {
			return &RequestError{Code: "invalid_field", Field: "features." + name,
				Message: "features." + name + " must be one of " + strings.Join(f.Values, ", ") + ", got " + strconv.Quote(v.Str)}
		}
	}
	return nil
}

// CheckChannel checks a channel name against the schema's context.channel values.
func (e *Engine) CheckChannel(channel string) *RequestError {
	schema := e.current.Load().rs.Schema
	fi := schema.ContextField("channel")
	if fi < 0 {
		return nil
	}
	if f := &schema.Context[fi]; !f.Allows(features.String(channel)) {
		return &RequestError{Code: "invalid_field", Field: "channel",
			Message: "channel " + strconv.Quote(channel) + " is not one of " + strings.Join(f.Values, ", ")}
	}
	return nil
}

// TouchpointKind is the kind of a touchpoint in the ruleset being served,
// or "" when it has none (for events about a touchpoint since removed).
func (e *Engine) TouchpointKind(id string) string {
	rs := e.current.Load().rs
	if i := rs.Touchpoint(id); i >= 0 {
		return rs.Touchpoints[i].Kind
	}
	return ""
}

// TrackEvent checks a behavioural event against the schema's events
// section, names it in ev.Type and fills ev.Updates from the on section.
// A property the event leaves out leaves its feature as it is. Field in a
// *RequestError is relative to the event ("name", "properties.value").
func (e *Engine) TrackEvent(ev *features.Event, name string, props map[string]features.Value) *RequestError {
	schema := e.current.Load().rs.Schema
	ei := schema.Event(name)
	if ei < 0 {
		msg := "name " + strconv.Quote(name) + " is not an event declared in the feature schema's events section"
		if len(schema.Events) == 0 {
			msg += ", which declares none"
		}
		return &RequestError{Code: "unknown_event", Field: "name", Message: msg + rules.Suggest(name, schema.EventNames())}
	}
	def := &schema.Events[ei]
	for pname, v := range props {
		pi := def.Property(pname)
		if pi < 0 {
			names := make([]string, len(def.Properties))
			for i, p := range def.Properties {
				names[i] = p.Name
			}
			return &RequestError{Code: "unknown_field", Field: "properties." + pname,
				Message: "properties." + pname + " is not a property of " + name + rules.Suggest(pname, names)}
		}
		if t := def.Properties[pi].Type; v.Kind != t.Kind() {
			return &RequestError{Code: "invalid_field", Field: "properties." + pname,
				Message: "properties." + pname + " must be a " + t.String() + ", got a " + v.Kind.String()}
		}
	}
	ev.Type = name
	ev.Updates = ev.Updates[:0]
	for _, u := range def.Updates {
		f := &schema.Customer[u.Feature]
		v := u.Const
		if u.Property >= 0 {
			pname := def.Properties[u.Property].Name
			pv, ok := props[pname]
			if !ok {
				continue
			}
			if !f.Allows(pv) {
				return &RequestError{Code: "invalid_field", Field: "properties." + pname,
					Message: "properties." + pname + " sets " + f.Name + ", which must be one of " + strings.Join(f.Values, ", ") + ", got " + strconv.Quote(pv.Str)}
			}
			v = pv
		}
		fu := features.FeatureUpdate{Feature: f.Name, Op: u.Op, Value: v}
		if u.Op == features.UpdateAdd {
			fu.Base = f.Default.Num
		}
		ev.Updates = append(ev.Updates, fu)
	}
	return nil
}
