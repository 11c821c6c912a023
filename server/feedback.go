package server

import (
	"bytes"
	"context"
	"errors"
	"math"
	"slices"
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
	// Attribute adds to an event the experiment and bandit tallies its
	// decision id names (see engine.Engine.Attribute).
	Attribute(ev *features.Event)
	// TrackEvent checks a behavioural event against the schema and fills
	// in its name and feature updates (see engine.Engine.TrackEvent).
	TrackEvent(ev *features.Event, name string, props map[string]features.Value) *engine.RequestError
}

const (
	maxEventsPerBatch = 1000
	storeTimeout      = 2 * time.Second
	// maxCustomerBody bounds a PUT /v1/customers/{id}/… body: a customer's
	// features with long lists fit many times over.
	maxCustomerBody = 256 << 10
	// Bounds of the identifiers an event carries; customer_id has the
	// shared maxIDBytes.
	maxEventIDBytes    = 128
	maxNameBytes       = 256
	maxChannelBytes    = 64
	maxEventTypeBytes  = 32
	maxTimestampBytes  = 64
	minEventYear       = 2000
	eventFutureSlack   = time.Hour
	maxConsentChannels = 64
)

var (
	eventTypes = []string{features.EventImpression, features.EventClick, features.EventConversion, features.EventDismiss}
	// minEventTime is the earliest ts an event may carry: counters are
	// kept by day for recent windows, and an older time is a client bug
	// (a zero time, seconds read as milliseconds).
	minEventTime = time.Date(minEventYear, 1, 1, 0, 0, 0, 0, time.UTC)
)

// storeUnavailable answers a failed write. The store wraps
// features.ErrNotApplied when it knows nothing changed (a circuit breaker
// was open, no connection could be made); any other error, a timeout above
// all, leaves the outcome unknown, and the answer must not claim otherwise.
// Every write is safe to retry, so both answers say so. unknown is the
// endpoint's wording of "this may have been applied".
func (s *Server) storeUnavailable(ctx *fasthttp.RequestCtx, err error, unknown string) {
	msg := "the customer store is unavailable; nothing was applied, retry"
	if !errors.Is(err, features.ErrNotApplied) {
		msg = "the customer store did not confirm the write: " + unknown
	}
	s.storeLog.Warn().Err(err).Msg("customer store write failed")
	ctx.Response.Header.Set("Retry-After", "1")
	s.writeError(ctx, &apiError{status: fasthttp.StatusServiceUnavailable, code: codeUnavailable, message: msg})
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
	noStore(ctx)
	if s.noCustomers(ctx) {
		return
	}
	body := ctx.PostBody()
	if limit := s.bodyLimit(epEvents); len(body) > limit {
		s.writeError(ctx, bodyTooLarge(limit, epEvents))
		return
	}
	p := s.parsers.Get()
	events, apiErr := decodeEvents(p, body, s.schema, time.Now())
	s.parsers.Put(p)
	if apiErr != nil {
		s.writeError(ctx, apiErr)
		return
	}
	c, cancel := context.WithTimeout(s.baseCtx, storeTimeout)
	defer cancel()
	applied, err := s.customers.ApplyEvents(c, events)
	// Triggers start from the events applied now, also when the store
	// failed part way: those are applied, and a retry will not apply them
	// again.
	var observeErr error
	if s.onEvents != nil {
		observeErr = s.onEvents(c, events)
	}
	if err != nil {
		s.storeUnavailable(ctx, err, "the batch may have been applied; retrying with the same event ids is safe")
		return
	}
	if observeErr != nil {
		s.storeLog.Error().Err(observeErr).Msg("events applied, but triggers they start or cancel could not be queued")
		s.writeError(ctx, &apiError{status: fasthttp.StatusServiceUnavailable, code: codeUnavailable,
			message: "the events were applied, but some triggers they start or cancel could not be queued; retrying will not queue them (the events count once)"})
		return
	}
	s.metrics.eventsApplied.Add(float64(applied))
	writeJSON(ctx, fasthttp.StatusAccepted, eventsAnswer(nil, len(events), applied))
}

// eventsAnswer encodes the events answer: accepted is every event of the
// batch (all were valid, or none would be), applied those counted now, and
// duplicates those whose event id had been counted before (a retried batch).
func eventsAnswer(b []byte, accepted, applied int) []byte {
	b = append(b, `{"accepted":`...)
	b = strconv.AppendInt(b, int64(accepted), 10)
	b = append(b, `,"applied":`...)
	b = strconv.AppendInt(b, int64(applied), 10)
	b = append(b, `,"duplicates":`...)
	b = strconv.AppendInt(b, int64(accepted-applied), 10)
	return append(b, '}')
}

func badField(code, field, msg string) *apiError {
	return &apiError{status: fasthttp.StatusBadRequest, code: code, field: field, message: msg}
}

// envelope parses a body that is an object with one member, key (as the
// events, features and consent bodies are), and returns that member's value.
// example shows the body's shape in errors.
func envelope(p *fastjson.Parser, body []byte, key, example string) (*fastjson.Value, *apiError) {
	root, apiErr := parseBody(p, body)
	if apiErr != nil {
		return nil, apiErr
	}
	top, err := root.Object()
	if err != nil {
		return nil, badField(codeInvalidJSON, "", "request body must be a JSON object such as "+example+", got "+root.Type().String())
	}
	var member *fastjson.Value
	var fail *apiError
	top.Visit(func(k []byte, v *fastjson.Value) {
		switch {
		case fail != nil:
		case string(k) != key:
			fail = badField(codeUnknownField, string(k), string(k)+" is not a known field; expected "+key)
		case member != nil:
			fail = badField(codeInvalidField, key, key+" is given more than once")
		default:
			member = v
		}
	})
	if fail != nil {
		return nil, fail
	}
	if member == nil {
		return nil, badField(codeMissingField, key, key+" is required: "+example)
	}
	return member, nil
}

func decodeEvents(p *fastjson.Parser, body []byte, schema Schema, now time.Time) ([]features.Event, *apiError) {
	v, apiErr := envelope(p, body, "events", `{"events": [{"event_id": "ev-1", …}]}`)
	if apiErr != nil {
		return nil, apiErr
	}
	list, err := v.Array()
	if err != nil {
		return nil, badField(codeInvalidField, "events", "events must be a list, got "+v.Type().String())
	}
	if len(list) == 0 || len(list) > maxEventsPerBatch {
		return nil, badField(codeInvalidField, "events", "events must hold 1 to "+strconv.Itoa(maxEventsPerBatch)+" events, got "+strconv.Itoa(len(list)))
	}
	out := make([]features.Event, len(list))
	for i, v := range list {
		path := "events[" + strconv.Itoa(i) + "]"
		if fail := decodeEvent(v, path, &out[i], schema, now); fail != nil {
			return nil, fail
		}
	}
	return out, nil
}

// eventKeys are an event's fields, in the order of the seen bits below.
var eventKeys = []string{"event_id", "decision_id", "customer_id", "touchpoint", "rule", "channel", "type", "value", "ts", "name", "properties"}

// eventTrack is the type of behavioural events: what the customer did
// (name, properties), not feedback about a touchpoint.
const eventTrack = "track"

// feedbackOnly and trackOnly are the event fields only one of the two
// kinds of event may carry.
var (
	feedbackOnly = []string{"decision_id", "touchpoint", "rule", "value"}
	trackOnly    = []string{"name", "properties"}
)

func decodeEvent(v *fastjson.Value, path string, ev *features.Event, schema Schema, now time.Time) *apiError {
	obj, err := v.Object()
	if err != nil {
		return badField(codeInvalidField, path, path+" must be an object, got "+v.Type().String())
	}
	var fail *apiError
	// id reads one of the event's identifiers under the shared id rule.
	id := func(key string, v *fastjson.Value, max int) string {
		b, err := v.StringBytes()
		if err != nil {
			fail = badField(codeInvalidField, path+"."+key, path+"."+key+" must be a string, got "+v.Type().String())
			return ""
		}
		if p := idProblem(b, max); p != "" {
			fail = badField(codeInvalidField, path+"."+key, path+"."+key+p)
			return ""
		}
		return string(b)
	}
	var seen uint16
	hasTime := false
	var name string
	var props map[string]features.Value
	obj.Visit(func(k []byte, fv *fastjson.Value) {
		if fail != nil {
			return
		}
		key := string(k)
		bit := slices.Index(eventKeys, key)
		if bit < 0 {
			fail = badField(codeUnknownField, path+"."+key, path+"."+key+" is not a known event field; expected one of "+strings.Join(eventKeys, ", "))
			return
		}
		if seen&(1<<bit) != 0 {
			fail = badField(codeInvalidField, path+"."+key, path+"."+key+" is given more than once")
			return
		}
		seen |= 1 << bit
		switch key {
		case "event_id":
			ev.ID = id(key, fv, maxEventIDBytes)
		case "decision_id":
			ev.DecisionID = id(key, fv, maxEventIDBytes)
		case "customer_id":
			ev.CustomerID = id(key, fv, maxIDBytes)
		case "touchpoint":
			ev.Touchpoint = id(key, fv, maxNameBytes)
		case "rule":
			ev.Rule = id(key, fv, maxNameBytes)
		case "channel":
			ev.Channel = id(key, fv, maxChannelBytes)
			if fail == nil {
				if re := schema.CheckChannel(ev.Channel); re != nil {
					fail = badField(re.Code, path+".channel", path+".channel: "+re.Message)
				}
			}
		case "type":
			ev.Type = id(key, fv, maxEventTypeBytes)
			if fail == nil && !slices.Contains(eventTypes, ev.Type) && ev.Type != eventTrack {
				fail = badField(codeInvalidField, path+".type", path+".type must be one of "+strings.Join(eventTypes, ", ")+" (feedback about a touchpoint) or track (what the customer did), got "+strconv.Quote(ev.Type))
			}
		case "name":
			name = id(key, fv, maxEventTypeBytes)
		case "properties":
			props, fail = featureValues(fv, path+".properties")
		case "value":
			f, err := fv.Float64()
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				fail = badField(codeInvalidField, path+".value", path+".value must be a finite number")
			}
			ev.Value = f
		case "ts":
			raw := id(key, fv, maxTimestampBytes)
			if fail != nil {
				return
			}
			t, err := time.Parse(time.RFC3339Nano, raw)
			switch {
			case err != nil:
				fail = badField(codeInvalidField, path+".ts", path+".ts must be an RFC 3339 time such as 2026-11-23T10:00:00Z, got "+strconv.Quote(raw))
			case t.Before(minEventTime):
				fail = badField(codeInvalidField, path+".ts", path+".ts must not be before "+strconv.Itoa(minEventYear)+", got "+strconv.Quote(raw))
			// Counters are kept by day; a far-future time would count
			// toward caps that have not started yet.
			case t.After(now.Add(eventFutureSlack)):
				fail = badField(codeInvalidField, path+".ts", path+".ts is in the future: "+strconv.Quote(raw))
			default:
				ev.Time, hasTime = t, true
			}
		}
	})
	if fail != nil {
		return fail
	}
	track := ev.Type == eventTrack
	required := []struct{ name, value string }{{"event_id", ev.ID}, {"customer_id", ev.CustomerID}, {"type", ev.Type}, {"touchpoint", ev.Touchpoint}}
	if track {
		required[3] = struct{ name, value string }{"name", name}
	}
	for _, req := range required {
		if req.value == "" {
			return badField(codeMissingField, path+"."+req.name, path+"."+req.name+" is required")
		}
	}
	// A field of the other kind of event is a mistake worth naming: a
	// touchpoint on a track event would count under no touchpoint.
	notHere, kind := trackOnly, "a feedback event ("+ev.Type+")"
	if track {
		notHere, kind = feedbackOnly, "a track event, which is about what the customer did"
	}
	for bit, key := range eventKeys {
		if seen&(1<<bit) != 0 && slices.Contains(notHere, key) {
			return badField(codeInvalidField, path+"."+key, path+"."+key+" is not a field of "+kind)
		}
	}
	if !hasTime {
		ev.Time = now
	}
	if track {
		if re := schema.TrackEvent(ev, name, props); re != nil {
			return badField(re.Code, path+"."+re.Field, path+"."+re.Message)
		}
		return nil
	}
	// Events may name touchpoints a later ruleset removed; they still count,
	// just without a kind.
	ev.Kind = schema.TouchpointKind(ev.Touchpoint)
	schema.Attribute(ev)
	return nil
}

// customersPrefix is where the customer endpoints live.
const customersPrefix = "/v1/customers/"

// handleCustomer serves /v1/customers/{id}, /v1/customers/{id}/features and
// /v1/customers/{id}/consent; all require the admin key.
//
// The id is read from the path as the client sent it, not from fasthttp's
// decoded and normalised path: there "c-1%2F..%2Fc-2" would already be
// "c-2". The raw path is split on '/' first and the id segment is then
// decoded exactly once, so whatever an id contains it names that customer
// and no other.
func (s *Server) handleCustomer(ctx *fasthttp.RequestCtx) {
	noStore(ctx)
	if !s.requireAdmin(ctx, "customer endpoints need the admin key, and none is configured: set server.admin_key or TOUCHPOINT_ADMIN_KEY") {
		return
	}
	if s.noCustomers(ctx) {
		return
	}
	raw := ctx.Request.URI().PathOriginal()
	rest, ok := bytes.CutPrefix(raw, []byte(customersPrefix))
	rawID, sub, hasSub := bytes.Cut(rest, []byte{'/'})
	if !ok || hasSub && string(sub) != "features" && string(sub) != "consent" {
		// A path that reached here only once normalised
		// (/v1/x/../customers/c-1), or that no customer endpoint has.
		s.writeError(ctx, &apiError{status: fasthttp.StatusNotFound, code: codeNotFound,
			message: "no endpoint at " + string(raw) + "; customer endpoints are /v1/customers/{id}, /v1/customers/{id}/features and /v1/customers/{id}/consent, with the id percent-encoded"})
		return
	}
	id, problem := pathID(rawID)
	if problem != "" {
		s.writeError(ctx, &apiError{status: fasthttp.StatusBadRequest, code: codeInvalidField, field: "id",
			message: "the customer id in the path" + problem})
		return
	}
	if body := ctx.PostBody(); len(body) > maxCustomerBody {
		s.writeError(ctx, bodyTooLarge(maxCustomerBody, epCustomers))
		return
	}
	c, cancel := context.WithTimeout(s.baseCtx, storeTimeout)
	defer cancel()
	switch {
	case !hasSub && (ctx.IsGet() || ctx.IsHead()):
		s.answerCustomer(ctx, c, id)
	case !hasSub:
		if !ctx.IsDelete() {
			s.methodNotAllowed(ctx, "GET, HEAD, DELETE")
			return
		}
		if err := s.customers.Erase(c, id); err != nil {
			s.storeUnavailable(ctx, err, "the customer may have been erased; repeating the DELETE is safe")
			return
		}
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	case string(sub) == "features":
		if !ctx.IsPut() {
			s.methodNotAllowed(ctx, "PUT")
			return
		}
		p := s.parsers.Get()
		values, apiErr := decodeFeatures(p, ctx.PostBody())
		s.parsers.Put(p)
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
			s.storeUnavailable(ctx, err, "the features may have been written; repeating the PUT is safe")
			return
		}
		s.writeAdminJSON(ctx, fasthttp.StatusOK, map[string]any{"customer_id": id, "updated": len(values)})
	default: // consent
		if !ctx.IsPut() {
			s.methodNotAllowed(ctx, "PUT")
			return
		}
		p := s.parsers.Get()
		consent, apiErr := s.decodeConsent(p, ctx.PostBody(), time.Now())
		s.parsers.Put(p)
		if apiErr != nil {
			s.writeError(ctx, apiErr)
			return
		}
		if err := s.customers.PutConsent(c, id, consent); err != nil {
			s.storeUnavailable(ctx, err, "the consent may have been recorded; repeating the PUT is safe")
			return
		}
		s.writeAdminJSON(ctx, fasthttp.StatusOK, map[string]any{"customer_id": id, "updated": len(consent)})
	}
}

// answerCustomer answers a customer's record as decisions see it, for
// the playground and for a customer's request to see their data.
func (s *Server) answerCustomer(ctx *fasthttp.RequestCtx, c context.Context, id string) {
	if s.workbench == nil {
		s.writeError(ctx, &apiError{status: fasthttp.StatusNotImplemented, code: codeNotSupported,
			message: "looking customers up needs the rules workbench, which this server was started without"})
		return
	}
	rec, err := s.workbench.Customer(c, id)
	if err != nil {
		s.storeUnavailable(ctx, err, "looking a customer up changes nothing; retry")
		return
	}
	s.writeAdminJSON(ctx, fasthttp.StatusOK, rec)
}

// decodeFeatures reads {"features": {...}} into typed values; the schema
// check happens after, in the engine.
func decodeFeatures(p *fastjson.Parser, body []byte) (map[string]features.Value, *apiError) {
	v, apiErr := envelope(p, body, "features", `{"features": {"tier": "gold"}}`)
	if apiErr != nil {
		return nil, apiErr
	}
	return featureValues(v, "features")
}

// featureValues reads an object of feature values; field is its path in
// the body, for errors.
func featureValues(v *fastjson.Value, field string) (map[string]features.Value, *apiError) {
	obj, err := v.Object()
	if err != nil {
		return nil, badField(codeInvalidField, field, field+" must be an object of feature values, got "+v.Type().String())
	}
	var fail *apiError
	out := map[string]features.Value{}
	obj.Visit(func(k []byte, v *fastjson.Value) {
		if fail != nil {
			return
		}
		name := string(k)
		path := field + "." + name
		if _, dup := out[name]; dup {
			fail = badField(codeInvalidField, path, path+" is given more than once")
			return
		}
		switch v.Type() {
		case fastjson.TypeNumber:
			f, err := v.Float64()
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				fail = badField(codeInvalidField, path, path+" must be a finite number")
				return
			}
			out[name] = features.Number(f)
		case fastjson.TypeString:
			b := v.GetStringBytes()
			if p := textProblem(b); p != "" {
				fail = badField(codeInvalidField, path, path+p)
				return
			}
			out[name] = features.String(string(b))
		case fastjson.TypeTrue, fastjson.TypeFalse:
			out[name] = features.Bool(v.GetBool())
		case fastjson.TypeArray:
			var list []string
			for j, el := range v.GetArray() {
				elPath := path + "[" + strconv.Itoa(j) + "]"
				b, err := el.StringBytes()
				if err != nil {
					fail = badField(codeInvalidField, elPath, path+" must be a list of strings; "+elPath+" is "+el.Type().String())
					return
				}
				if p := textProblem(b); p != "" {
					fail = badField(codeInvalidField, elPath, elPath+p)
					return
				}
				list = append(list, string(b))
			}
			out[name] = features.List(list...)
		default:
			fail = badField(codeInvalidField, path, path+" must be a number, string, bool or list of strings, got "+v.Type().String())
		}
	})
	if fail != nil {
		return nil, fail
	}
	return out, nil
}

// decodeConsent reads {"channels": {"email": true, "sms": false}}.
func (s *Server) decodeConsent(p *fastjson.Parser, body []byte, now time.Time) (map[string]features.Consent, *apiError) {
	const example = `{"channels": {"email": true, "sms": false}}`
	v, apiErr := envelope(p, body, "channels", example)
	if apiErr != nil {
		return nil, apiErr
	}
	channels, err := v.Object()
	if err != nil {
		return nil, badField(codeInvalidField, "channels", "channels must be an object such as "+example+", got "+v.Type().String())
	}
	var fail *apiError
	if channels.Len() == 0 {
		return nil, badField(codeMissingField, "channels", "channels is required and must name at least one channel: "+example)
	}
	if channels.Len() > maxConsentChannels {
		return nil, badField(codeInvalidField, "channels", "channels must name at most "+strconv.Itoa(maxConsentChannels)+" channels")
	}
	out := map[string]features.Consent{}
	channels.Visit(func(k []byte, v *fastjson.Value) {
		if fail != nil {
			return
		}
		ch := string(k)
		path := "channels." + ch
		if _, dup := out[ch]; dup {
			fail = badField(codeInvalidField, path, path+" is given more than once")
			return
		}
		var granted bool
		switch v.Type() {
		case fastjson.TypeTrue:
			granted = true
		case fastjson.TypeFalse:
		default:
			fail = badField(codeInvalidField, path, path+" must be true or false, got "+v.Type().String())
			return
		}
		if p := idProblem(k, maxChannelBytes); p != "" {
			fail = badField(codeInvalidField, path, "the channel name"+p)
			return
		}
		if re := s.schema.CheckChannel(ch); re != nil {
			fail = badField(re.Code, path, path+": "+re.Message)
			return
		}
		out[ch] = features.Consent{Granted: granted, At: now}
	})
	if fail != nil {
		return nil, fail
	}
	return out, nil
}
