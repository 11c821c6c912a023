package loadtest

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Events is the traffic file's events section: a share of all requests
// are batches of events posted to the events endpoint instead of decides.
// An event is feedback about a touchpoint (an impression, click,
// conversion or dismissal) or, with type track, a behavioural event: what
// the customer did, such as cart_updated, with properties.
type Events struct {
	// Share is the fraction of requests that are event batches, 0 to 1.
	// Zero keeps the section but sends decides only.
	Share float64
	// Path is where batches go on the target's host, normally /v1/events.
	Path string
	// Batch is how many events one request carries.
	Batch int
	// Touchpoints is how many touchpoint ids the feedback events name; 0
	// when every event is behavioural.
	Touchpoints int
	// Track names the behavioural events, in file order, and TrackShare
	// is their share of all events; none without track in the types.
	Track      []string
	TrackShare float64

	// types and touchpoints hold pre-encoded `"key":"value"` members with
	// cumulative weights, so a body is built by copying bytes.
	types, tps     [][]byte
	typeCum, tpCum []float64
	typeNames      []string
	// trackType is the index of track in types, or -1; track holds the
	// behavioural events with cumulative weights.
	trackType int
	track     []trackEvent
	trackCum  []float64
}

// Limits of the events section.
const (
	defaultEventsPath = "/v1/events"
	// maxEventBatch is the events API's own limit per request.
	maxEventBatch   = 1000
	maxTouchpoints  = 10000
	maxEventIDBytes = 128
)

// eventTypeList names the types the events API accepts.
const eventTypeList = "impression, click, conversion, dismiss or track (behavioural events, described in events.track)"

// eventTrack is the type of behavioural events.
const eventTrack = "track"

func isEventType(s string) bool {
	switch s {
	case "impression", "click", "conversion", "dismiss":
		return true
	}
	return false
}

// parseEvents reads the events section. Absent, null and [] mean no
// events: [] was the placeholder before the API had an events endpoint.
func parseEvents(n *yaml.Node, at func(*yaml.Node, string, ...any) error) (*Events, error) {
	switch {
	case n.Kind == 0, n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		return nil, nil
	case n.Kind == yaml.SequenceNode && len(n.Content) == 0:
		return nil, nil
	case n.Kind != yaml.MappingNode:
		return nil, at(n, "events must be a map such as {share: 0.15, types: {impression: 80, click: 20}, touchpoints: [cart_coupon_10]}")
	}
	e := &Events{Path: defaultEventsPath, Batch: 1, trackType: -1}
	var shareNode, typesNode, tpKey, tpNode, trackKey, trackNode *yaml.Node
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			return nil, at(k, "events.%s is given twice", k.Value)
		}
		seen[k.Value] = true
		switch k.Value {
		case "share":
			f, err := number(v)
			if err != nil || f < 0 || f > 1 {
				return nil, at(v, "events.share must be a fraction of all requests between 0 and 1, got %s", show(v))
			}
			e.Share, shareNode = f, v
		case "path":
			if v.Kind != yaml.ScalarNode || !strings.HasPrefix(v.Value, "/") || strings.ContainsAny(v.Value, "?# ") {
				return nil, at(v, "events.path must be a URL path starting with /, got %s", show(v))
			}
			e.Path = v.Value
		case "batch":
			b, err := strconv.Atoi(v.Value)
			if v.Kind != yaml.ScalarNode || v.Tag != "!!int" || err != nil || b < 1 || b > maxEventBatch {
				return nil, at(v, "events.batch must be a whole number of events per request from 1 to %d, got %s", maxEventBatch, show(v))
			}
			e.Batch = b
		case "types":
			typesNode = v
		case "touchpoints":
			tpKey, tpNode = k, v
		case "track":
			trackKey, trackNode = k, v
		default:
			return nil, at(k, "events: unknown key %q; the keys are share, path, batch, types, touchpoints and track", k.Value)
		}
	}
	if shareNode == nil {
		return nil, at(n, "events.share is required: the fraction of all requests that are event batches, e.g. 0.15")
	}
	if typesNode == nil {
		return nil, at(n, "events.types is required: event types and their weights, e.g. {impression: 80, click: 15, conversion: 5}")
	}
	if err := e.parseTypes(typesNode, at); err != nil {
		return nil, err
	}
	hasTrack := e.trackType >= 0
	// Only feedback names a touchpoint, and only track events are drawn
	// from the track section: a part nothing reads is a mistake to point
	// out, not to ignore.
	switch hasFeedback := len(e.typeNames) > 1 || !hasTrack; {
	case hasFeedback && tpNode == nil:
		return nil, at(n, "events.touchpoints is required: the touchpoint ids feedback events name, e.g. [cart_coupon_10, birthday_gift]")
	case !hasFeedback && tpNode != nil:
		return nil, at(tpKey, "events.touchpoints: only feedback events (impression, click, conversion, dismiss) name touchpoints, and events.types has none; leave touchpoints out")
	case tpNode != nil:
		if err := e.parseTouchpoints(tpNode, at); err != nil {
			return nil, err
		}
	}
	switch {
	case hasTrack && trackNode == nil:
		return nil, at(n, "events.track is required when events.types has track: the behavioural events and their properties, e.g. %s", trackExample)
	case !hasTrack && trackNode != nil:
		return nil, at(trackKey, "events.track is given, but events.types has no track weight to draw its events; add one, e.g. track: 20")
	case hasTrack:
		if err := e.parseTrack(trackNode, at); err != nil {
			return nil, err
		}
		e.TrackShare = (e.typeCum[e.trackType] - e.typeCumBefore(e.trackType)) / e.typeCum[len(e.typeCum)-1]
	}
	return e, nil
}

func (e *Events) parseTypes(n *yaml.Node, at func(*yaml.Node, string, ...any) error) error {
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		return at(n, "events.types must be a map of event type: weight, e.g. {impression: 80, click: 20}")
	}
	total := 0.0
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !isEventType(k.Value) && k.Value != eventTrack {
			return at(k, "events.types: %q is not an event type; use %s", k.Value, eventTypeList)
		}
		if slices.Contains(e.typeNames, k.Value) {
			return at(k, "events.types.%s is given twice", k.Value)
		}
		w, err := number(v)
		if err != nil || !(w > 0) {
			return at(v, "events.types.%s: weight must be a positive number, got %s", k.Value, show(v))
		}
		total += w
		if k.Value == eventTrack {
			e.trackType = len(e.typeNames)
		}
		e.typeNames = append(e.typeNames, k.Value)
		e.types = append(e.types, member("type", k.Value))
		e.typeCum = append(e.typeCum, total)
	}
	return nil
}

// typeCumBefore is the cumulative weight of the types before index i.
func (e *Events) typeCumBefore(i int) float64 {
	if i == 0 {
		return 0
	}
	return e.typeCum[i-1]
}

// parseTouchpoints reads a list (a uniform choice) or a map of id: weight,
// as context values do.
func (e *Events) parseTouchpoints(n *yaml.Node, at func(*yaml.Node, string, ...any) error) error {
	seen := map[string]bool{}
	add := func(id *yaml.Node, w float64) error {
		if id.Kind != yaml.ScalarNode || id.Value == "" || id.Tag == "!!null" {
			return at(id, "events.touchpoints: each entry is a touchpoint id")
		}
		if len(id.Value) > 256 {
			return at(id, "events.touchpoints: %q is longer than the 256 bytes the events API takes", id.Value[:32]+"…")
		}
		if seen[id.Value] {
			return at(id, "events.touchpoints: %q is listed twice", id.Value)
		}
		seen[id.Value] = true
		total := w
		if len(e.tpCum) > 0 {
			total += e.tpCum[len(e.tpCum)-1]
		}
		e.tps = append(e.tps, member("touchpoint", id.Value))
		e.tpCum = append(e.tpCum, total)
		return nil
	}
	switch n.Kind {
	case yaml.SequenceNode:
		for _, id := range n.Content {
			if err := add(id, 1); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			w, err := number(v)
			if err != nil || !(w > 0) {
				return at(v, "events.touchpoints.%s: weight must be a positive number, got %s", k.Value, show(v))
			}
			if err := add(k, w); err != nil {
				return err
			}
		}
	default:
		return at(n, "events.touchpoints must be a list of touchpoint ids (a uniform choice) or a map of id: weight")
	}
	if len(e.tps) == 0 {
		return at(n, "events.touchpoints: at least one touchpoint id is required")
	}
	if len(e.tps) > maxTouchpoints {
		return at(n, "events.touchpoints: %d ids is more than the %d allowed", len(e.tps), maxTouchpoints)
	}
	e.Touchpoints = len(e.tps)
	return nil
}

// number reads a finite YAML number.
func number(n *yaml.Node) (float64, error) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
		return 0, fmt.Errorf("not a number")
	}
	f, err := strconv.ParseFloat(n.Value, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("not a finite number")
	}
	return f, nil
}

// show quotes a node's value for an error message, or names its shape.
func show(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a map"
	}
	return "nothing"
}

// member pre-encodes `"key":"value"`.
func member(key, value string) []byte {
	return append(append(jsonString(key), ':'), jsonString(value)...)
}

// WithEventShare returns a copy of t sending share of its requests as event
// batches, for trying other mixes without editing the file. Zero turns
// events off; a positive share needs the file's events section, which says
// what the batches hold.
func (t *Traffic) WithEventShare(share float64) (*Traffic, error) {
	if !(share >= 0 && share <= 1) {
		return nil, fmt.Errorf("event share must be between 0 and 1, got %g", share)
	}
	c := *t
	if t.Events == nil {
		if share > 0 {
			return nil, fmt.Errorf("an event share of %g needs an events section in the traffic file (types and touchpoints)", share)
		}
		return &c, nil
	}
	e := *t.Events
	e.Share = share
	c.Events = &e
	return &c, nil
}

// HasEvents reports whether any request is an event batch.
func (t *Traffic) HasEvents() bool { return t.Events != nil && t.Events.Share > 0 }

// RequestKind says what a request is: a decide or a batch of events.
type RequestKind uint8

const (
	DecideRequest RequestKind = iota
	EventsRequest
	numKinds
)

// String is the kind's name in every report.
func (k RequestKind) String() string {
	if k == EventsRequest {
		return "events"
	}
	return "decide"
}

// kindSalt separates the kind draw from the body draws, so adding events
// to a file leaves every remaining decide exactly as it was.
const kindSalt = 0x6a09e667f3bcc908

// Kind says whether request n is an event batch. It depends only on the
// seed and n, so every worker, and every rerun with the same seed, agrees.
func (g *Generator) Kind(n uint64) RequestKind {
	if g.eventShare <= 0 {
		return DecideRequest
	}
	u := float64(mix64(n^g.kindKey)>>11) * 0x1p-53
	if u < g.eventShare {
		return EventsRequest
	}
	return DecideRequest
}

// eventSalt gives event bodies their own random stream.
const eventSalt = 0xbb67ae8584caa73b

// Events appends request n's event batch to dst: one customer (a page or
// app reports its own customer's events) and Batch events, each with its
// own type and touchpoint, or for a track event its own name and
// properties, all timestamped now. The generator keeps no state between
// requests, so events are not tied to what an earlier decide answered:
// decision_id is a well-formed id of the real size, drawn from the seed
// and n.
func (s *Source) Events(dst []byte, n uint64, now time.Time) []byte {
	e := s.g.t.Events
	s.pcg.Seed(mix64(s.g.seed^eventSalt), mix64(n^0x9e3779b97f4a7c15))
	if sec := now.Unix(); sec != s.tsSec || len(s.ts) == 0 {
		// RFC 3339 in whole seconds changes once a second: format it then,
		// not per event.
		s.tsSec = sec
		s.ts = append(s.ts[:0], `"ts":"`...)
		s.ts = now.UTC().AppendFormat(s.ts, time.RFC3339)
		s.ts = append(s.ts, '"')
	}
	customer := int(s.zipf.Uint64()) + 1
	d1, d2 := s.rng.Uint64(), s.rng.Uint64()
	dst = append(dst, `{"events":[`...)
	for i := range e.Batch {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"event_id":"`...)
		dst = append(dst, s.g.idPrefix...)
		dst = strconv.AppendUint(dst, n, 10)
		dst = append(dst, '-')
		dst = strconv.AppendInt(dst, int64(i), 10)
		// Both draws come first whatever the type, in the order files
		// without track have always used, so those send the same bytes as
		// before track existed. A track event uses the first for its name.
		u, ut := s.rng.Float64(), s.rng.Float64()
		ti := pick(e.typeCum, ut)
		track := ti == e.trackType
		if !track {
			dst = append(dst, `","decision_id":"`...)
			dst = appendHex64(appendHex64(dst, d1), d2)
		}
		dst = append(dst, `","customer_id":"`...)
		dst = appendCustomerID(dst, customer)
		dst = append(dst, `",`...)
		if track {
			dst = s.appendTrack(dst, &e.track[pick(e.trackCum, u)])
		} else {
			dst = append(dst, e.tps[pick(e.tpCum, u)]...)
			dst = append(dst, ',')
			dst = append(dst, e.types[ti]...)
		}
		dst = append(dst, ',')
		dst = append(dst, s.ts...)
		dst = append(dst, '}')
	}
	return append(dst, `]}`...)
}

// appendHex64 writes x as 16 lowercase hex digits.
func appendHex64(dst []byte, x uint64) []byte {
	const digits = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		dst = append(dst, digits[(x>>uint(shift))&0xf])
	}
	return dst
}

// eventIDPrefix starts every event id of a run: the seed and the run id
// make ids unique per run and seed, so a rerun against the same server
// is counted again instead of being dropped as retried duplicates.
func eventIDPrefix(seed uint64, runID string) string {
	p := "lt-" + strconv.FormatUint(seed, 10) + "-"
	if runID != "" {
		p += runID + "-"
	}
	return p
}

// newRunID names a run by its start time in milliseconds, base 36: short,
// and different for every run a person starts.
func newRunID(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 36) }

// maxRunIDBytes keeps the longest event id (20-digit seed and request
// number, a batch index below 1000) within the events API's 128 bytes.
const maxRunIDBytes = maxEventIDBytes - len("lt-18446744073709551615--18446744073709551615-999")

// checkRunID refuses run ids that would not fit in an event id or would
// need escaping: ids are copied into request bodies as they are.
func checkRunID(id string) error {
	if len(id) > maxRunIDBytes {
		return fmt.Errorf("run id %q is longer than %d bytes", id, maxRunIDBytes)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("run id %q may hold only letters, digits, '-', '_' and '.'", id)
		}
	}
	return nil
}

// eventsAnswer reads {"accepted":N,"duplicates":M} without allocating;
// ok is false when the answer is not in that form.
func eventsAnswer(body []byte) (accepted, duplicates int64, ok bool) {
	a, okA := jsonCount(body, `"accepted":`)
	d, okD := jsonCount(body, `"duplicates":`)
	return a, d, okA && okD
}

func jsonCount(body []byte, key string) (int64, bool) {
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return 0, false
	}
	rest := body[i+len(key):]
	for len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	var v int64
	digits := 0
	for _, c := range rest {
		if c < '0' || c > '9' || digits == 18 {
			break
		}
		v = v*10 + int64(c-'0')
		digits++
	}
	return v, digits > 0
}
