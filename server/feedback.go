package server

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"

	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
)

// Feedback and customer endpoints write to the system of record. They are
// not on the decide hot path, so they favour plain code over pooling.

// Customers is what the server needs to record feedback and customer data.
type Customers interface {
	features.Writer
}

// Schema checks customer data against the ruleset's feature schema;
// *engine.Engine satisfies it.
type Schema interface {
	CheckFeatures(values map[string]features.Value) *engine.RequestError
	CheckChannel(channel string) *engine.RequestError
	TouchpointKind(id string) string
}

const (
	maxEventsPerBatch = 1000
	maxEventBody      = 1 << 20
	storeTimeout      = 2 * time.Second
)

var eventTypes = []string{features.EventImpression, features.EventClick, features.EventConversion, features.EventDismiss}

func (s *Server) storeUnavailable(ctx *fasthttp.RequestCtx, err error) {
	s.errLog.Warn().Err(err).Msg("customer store write failed")
	ctx.Response.Header.Set("Retry-After", "1")
	s.writeError(ctx, &apiError{status: fasthttp.StatusServiceUnavailable, code: codeUnavailable,
		message: "the customer store is unavailable; nothing was applied, retry"})
}

func (s *Server) noCustomers(ctx *fasthttp.RequestCtx) bool {
	if s.customers != nil && s.schema != nil {
		return false
	}
	s.writeError(ctx, &apiError{status: fasthttp.StatusNotImplemented, code: codeNotSupported,
		message: "this server has no writable customer store"})
	return true
}

// handleEvents accepts a batch of feedback events, validated whole: one bad
// event rejects the batch and nothing is applied.
func (s *Server) handleEvents(ctx *fasthttp.RequestCtx) {
	s.cors.apply(ctx)
	ctx.Response.Header.Set("Cache-Control", "no-store")
	if s.noCustomers(ctx) {
		return
	}
	body := ctx.PostBody()
	if len(body) > maxEventBody {
		s.writeError(ctx, bodyTooLarge(maxEventBody))
		return
	}
	events, apiErr := decodeEvents(body, s.schema, time.Now())
	if apiErr != nil {
		s.writeError(ctx, apiErr)
		return
	}
	c, cancel := context.WithTimeout(s.baseCtx, storeTimeout)
	defer cancel()
	applied, err := s.customers.ApplyEvents(c, events)
	if err != nil {
		s.storeUnavailable(ctx, err)
		return
	}
	s.metrics.eventsApplied.Add(float64(applied))
	b := []byte(`{"accepted":`)
	b = strconv.AppendInt(b, int64(len(events)), 10)
	b = append(b, `,"duplicates":`...)
	b = strconv.AppendInt(b, int64(len(events)-applied), 10)
	writeJSON(ctx, fasthttp.StatusAccepted, append(b, '}'))
}

func decodeEvents(body []byte, schema Schema, now time.Time) ([]features.Event, *apiError) {
	bad := func(code, field, msg string) *apiError {
		return &apiError{status: fasthttp.StatusBadRequest, code: code, field: field, message: msg}
	}
	var p fastjson.Parser
	root, err := p.ParseBytes(body)
	if err != nil {
		return nil, bad(codeInvalidJSON, "", "request body is not valid JSON: "+err.Error())
	}
	obj, err := root.Object()
	if err != nil {
		return nil, bad(codeInvalidField, "", "the body must be an object with an events list")
	}
	var list []*fastjson.Value
	var fail *apiError
	obj.Visit(func(k []byte, v *fastjson.Value) {
		if fail != nil {
			return
		}
		if string(k) != "events" {
			fail = bad(codeUnknownField, string(k), string(k)+" is not a known field; expected events")
			return
		}
		if list, err = v.Array(); err != nil {
			fail = bad(codeInvalidField, "events", "events must be a list")
		}
	})
	if fail != nil {
		return nil, fail
	}
	if list == nil {
		return nil, bad(codeMissingField, "events", "events is required")
	}
	if len(list) == 0 || len(list) > maxEventsPerBatch {
		return nil, bad(codeInvalidField, "events", "events must hold 1 to "+strconv.Itoa(maxEventsPerBatch)+" events")
	}
	out := make([]features.Event, len(list))
	for i, v := range list {
		path := "events[" + strconv.Itoa(i) + "]"
		if fail := decodeEvent(v, path, &out[i], schema, now, bad); fail != nil {
			return nil, fail
		}
	}
	return out, nil
}

func decodeEvent(v *fastjson.Value, path string, ev *features.Event, schema Schema, now time.Time,
	bad func(code, field, msg string) *apiError) *apiError {
	obj, err := v.Object()
	if err != nil {
		return bad(codeInvalidField, path, path+" must be an object")
	}
	var fail *apiError
	str := func(key string, v *fastjson.Value, max int) string {
		b, err := v.StringBytes()
		switch {
		case err != nil:
			fail = bad(codeInvalidField, path+"."+key, path+"."+key+" must be a string")
		case len(b) == 0 || len(b) > max:
			fail = bad(codeInvalidField, path+"."+key, path+"."+key+" must be 1 to "+strconv.Itoa(max)+" bytes")
		}
		return string(b)
	}
	hasTime := false
	obj.Visit(func(k []byte, fv *fastjson.Value) {
		if fail != nil {
			return
		}
		key := string(k)
		switch key {
		case "event_id":
			ev.ID = str(key, fv, 128)
		case "decision_id":
			ev.DecisionID = str(key, fv, 128)
		case "customer_id":
			ev.CustomerID = str(key, fv, 256)
		case "touchpoint":
			ev.Touchpoint = str(key, fv, 256)
		case "rule":
			ev.Rule = str(key, fv, 256)
		case "channel":
			ev.Channel = str(key, fv, 64)
			if fail == nil {
				if re := schema.CheckChannel(ev.Channel); re != nil {
					fail = bad(re.Code, path+".channel", path+".channel: "+re.Message)
				}
			}
		case "type":
			ev.Type = str(key, fv, 32)
			if fail == nil && !contains(eventTypes, ev.Type) {
				fail = bad(codeInvalidField, path+".type", path+".type must be one of "+strings.Join(eventTypes, ", ")+", got "+strconv.Quote(ev.Type))
			}
		case "value":
			f, err := fv.Float64()
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				fail = bad(codeInvalidField, path+".value", path+".value must be a finite number")
			}
			ev.Value = f
		case "ts":
			raw := str(key, fv, 64)
			if fail != nil {
				return
			}
			t, err := time.Parse(time.RFC3339Nano, raw)
			if err != nil {
				fail = bad(codeInvalidField, path+".ts", path+".ts must be an RFC 3339 time, got "+strconv.Quote(raw))
				return
			}
			// Counters are kept by day; a far-future time would count
			// toward caps that have not started yet.
			if t.After(now.Add(time.Hour)) {
				fail = bad(codeInvalidField, path+".ts", path+".ts is in the future")
				return
			}
			ev.Time, hasTime = t, true
		default:
			fail = bad(codeUnknownField, path+"."+key, path+"."+key+" is not a known event field")
		}
	})
	if fail != nil {
		return fail
	}
	for _, req := range []struct{ name, value string }{{"event_id", ev.ID}, {"customer_id", ev.CustomerID}, {"touchpoint", ev.Touchpoint}, {"type", ev.Type}} {
		if req.value == "" {
			return bad(codeMissingField, path+"."+req.name, path+"."+req.name+" is required")
		}
	}
	if !hasTime {
		ev.Time = now
	}
	// Events may name touchpoints a later ruleset removed; they still count,
	// just without a kind.
	ev.Kind = schema.TouchpointKind(ev.Touchpoint)
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// handleCustomer serves /v1/customers/{id}, /v1/customers/{id}/features and
// /v1/customers/{id}/consent; all require the admin key.
func (s *Server) handleCustomer(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set("Cache-Control", "no-store")
	if !s.requireAdmin(ctx, "customer endpoints need the admin key, and no admin_key is configured") {
		return
	}
	if s.noCustomers(ctx) {
		return
	}
	rest := strings.TrimPrefix(string(ctx.Path()), "/v1/customers/")
	id, sub, _ := strings.Cut(rest, "/")
	if id == "" || len(id) > 256 {
		s.writeError(ctx, &apiError{status: fasthttp.StatusBadRequest, code: codeInvalidField, field: "id",
			message: "the customer id in the path must be 1 to 256 bytes"})
		return
	}
	c, cancel := context.WithTimeout(s.baseCtx, storeTimeout)
	defer cancel()
	switch sub {
	case "":
		if !ctx.IsDelete() {
			s.methodNotAllowed(ctx, "DELETE")
			return
		}
		if err := s.customers.Erase(c, id); err != nil {
			s.storeUnavailable(ctx, err)
			return
		}
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	case "features":
		if !ctx.IsPut() {
			s.methodNotAllowed(ctx, "PUT")
			return
		}
		values, apiErr := decodeFeatures(ctx.PostBody())
		if apiErr == nil {
			if re := s.schema.CheckFeatures(values); re != nil {
				apiErr = &apiError{status: fasthttp.StatusBadRequest, code: re.Code, field: re.Field, message: re.Message}
			}
		}
		if apiErr != nil {
			s.writeError(ctx, apiErr)
			return
		}
		if err := s.customers.PutFeatures(c, id, values); err != nil {
			s.storeUnavailable(ctx, err)
			return
		}
		s.writeAdminJSON(ctx, fasthttp.StatusOK, map[string]any{"customer_id": id, "updated": len(values)})
	case "consent":
		if !ctx.IsPut() {
			s.methodNotAllowed(ctx, "PUT")
			return
		}
		consent, apiErr := s.decodeConsent(ctx.PostBody(), time.Now())
		if apiErr != nil {
			s.writeError(ctx, apiErr)
			return
		}
		if err := s.customers.PutConsent(c, id, consent); err != nil {
			s.storeUnavailable(ctx, err)
			return
		}
		s.writeAdminJSON(ctx, fasthttp.StatusOK, map[string]any{"customer_id": id, "updated": len(consent)})
	default:
		s.writeError(ctx, &apiError{status: fasthttp.StatusNotFound, code: codeNotFound,
			message: "no endpoint at " + string(ctx.Path())})
	}
}

// decodeFeatures reads {"features": {...}} into typed values; the schema
// check happens after, in the engine.
func decodeFeatures(body []byte) (map[string]features.Value, *apiError) {
	var p fastjson.Parser
	root, err := p.ParseBytes(body)
	if err != nil {
		return nil, &apiError{status: fasthttp.StatusBadRequest, code: codeInvalidJSON, message: "request body is not valid JSON: " + err.Error()}
	}
	fv := root.Get("features")
	obj, err := fv.Object()
	if fv == nil || err != nil {
		return nil, &apiError{status: fasthttp.StatusBadRequest, code: codeMissingField, field: "features", message: "features must be an object of feature values"}
	}
	out := map[string]features.Value{}
	var fail *apiError
	obj.Visit(func(k []byte, v *fastjson.Value) {
		if fail != nil {
			return
		}
		name := string(k)
		path := "features." + name
		switch v.Type() {
		case fastjson.TypeNumber:
			f, err := v.Float64()
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				fail = &apiError{status: fasthttp.StatusBadRequest, code: codeInvalidField, field: path, message: path + " must be a finite number"}
			}
			out[name] = features.Number(f)
		case fastjson.TypeString:
			out[name] = features.String(string(v.GetStringBytes()))
		case fastjson.TypeTrue, fastjson.TypeFalse:
			out[name] = features.Bool(v.GetBool())
		case fastjson.TypeArray:
			var list []string
			for j, el := range v.GetArray() {
				b, err := el.StringBytes()
				if err != nil {
					fail = &apiError{status: fasthttp.StatusBadRequest, code: codeInvalidField, field: path + "[" + strconv.Itoa(j) + "]", message: path + " must be a list of strings"}
					return
				}
				list = append(list, string(b))
			}
			out[name] = features.List(list...)
		default:
			fail = &apiError{status: fasthttp.StatusBadRequest, code: codeInvalidField, field: path, message: path + " must be a number, string, bool or list of strings"}
		}
	})
	if fail != nil {
		return nil, fail
	}
	return out, nil
}

// decodeConsent reads {"channels": {"email": true, "sms": false}}.
func (s *Server) decodeConsent(body []byte, now time.Time) (map[string]features.Consent, *apiError) {
	var req struct {
		Channels map[string]bool `json:"channels"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, &apiError{status: fasthttp.StatusBadRequest, code: codeInvalidJSON, message: "consent must look like {\"channels\": {\"email\": true}}: " + err.Error()}
	}
	if len(req.Channels) == 0 {
		return nil, &apiError{status: fasthttp.StatusBadRequest, code: codeMissingField, field: "channels", message: "channels is required"}
	}
	out := map[string]features.Consent{}
	for ch, granted := range req.Channels {
		if re := s.schema.CheckChannel(ch); re != nil {
			return nil, &apiError{status: fasthttp.StatusBadRequest, code: re.Code, field: "channels." + ch, message: re.Message}
		}
		out[ch] = features.Consent{Granted: granted, At: now}
	}
	return out, nil
}
