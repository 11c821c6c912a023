package engine

import (
	"strconv"
	"strings"

	"github.com/touchpoint-dev/touchpoint/features"
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
