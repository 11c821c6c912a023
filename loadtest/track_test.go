package loadtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// trackOnly starts an events section of behavioural events only; tests
// append the track entries, from line 11 on.
const trackOnly = minimalTraffic + "events:\n  share: 0.1\n  types: {track: 1}\n  track:\n"

func TestTrackSection(t *testing.T) {
	tr, err := ParseTraffic("t.yaml", []byte(trackOnly+`    cart_updated: {weight: 3, properties: {value: {uniform: [5, 300]}, items: {uniform_int: [1, 8]}}}
    complaint_opened: {weight: 1, properties: {emotion: [angry, frustrated]}}
    plain: {weight: 1}
    empty: {weight: 1, properties: {}}
    quiet: {weight: 1, properties: }
`))
	if err != nil {
		t.Fatal(err)
	}
	e := tr.Events
	if e.Touchpoints != 0 || e.TrackShare != 1 || !slices.Equal(e.Track, []string{"cart_updated", "complaint_opened", "plain", "empty", "quiet"}) {
		t.Errorf("track only: touchpoints %d, share %g, names %v", e.Touchpoints, e.TrackShare, e.Track)
	}
	// Track among feedback types, not first: its share is its own weight.
	tr, err = ParseTraffic("t.yaml", []byte(minimalTraffic+`events:
  share: 0.1
  types: {impression: 2, track: 1, click: 1}
  touchpoints: [x]
  track: {cart_updated: {weight: 1}}
`))
	if err != nil || tr.Events.TrackShare != 0.25 || tr.Events.Touchpoints != 1 {
		t.Fatalf("mixed: %+v, %v", tr.Events, err)
	}
	// A file without track has no track settings.
	tr, err = ParseTraffic("t.yaml", []byte(minimalTraffic+"events: {share: 0.1, types: {click: 1}, touchpoints: [x]}\n"))
	if err != nil || tr.Events.Track != nil || tr.Events.TrackShare != 0 {
		t.Fatalf("feedback only: %+v, %v", tr.Events, err)
	}

	long := strings.Repeat("a", 33)
	var manyProps strings.Builder
	for i := range 65 {
		manyProps.WriteString(", p" + strconv.Itoa(i) + ": 1")
	}
	// Lines 1-6 are the view, 7-10 the section up to track:, whose entries
	// start on line 11.
	for name, c := range map[string]struct{ file, want string }{
		"track is a list": {minimalTraffic + "events:\n  share: 0.1\n  types: {track: 1}\n  track: [cart_updated]\n",
			"t.yaml:10:10: events.track must be a map of behavioural event name: {weight, properties}"},
		"track is empty": {minimalTraffic + "events:\n  share: 0.1\n  types: {track: 1}\n  track: {}\n",
			"t.yaml:10:10: events.track must be a map"},
		"no track": {minimalTraffic + "events:\n  share: 0.1\n  types: {track: 1}\n",
			"t.yaml:8:3: events.track is required when events.types has track: the behavioural events and their properties, e.g. {cart_updated: "},
		"track without type": {minimalTraffic + "events:\n  share: 0.1\n  types: {click: 1}\n  touchpoints: [x]\n  track: {a: {weight: 1}}\n",
			"t.yaml:11:3: events.track is given, but events.types has no track weight to draw its events; add one, e.g. track: 20"},
		"touchpoints unused": {minimalTraffic + "events:\n  share: 0.1\n  types: {track: 1}\n  touchpoints: [x]\n  track: {a: {weight: 1}}\n",
			"t.yaml:10:3: events.touchpoints: only feedback events (impression, click, conversion, dismiss) name touchpoints, and events.types has none; leave touchpoints out"},
		"touchpoints needed": {minimalTraffic + "events:\n  share: 0.1\n  types: {click: 1, track: 1}\n  track: {a: {weight: 1}}\n",
			"t.yaml:8:3: events.touchpoints is required: the touchpoint ids feedback events name"},
		"track weight": {minimalTraffic + "events:\n  share: 0.1\n  types: {track: 0}\n",
			"t.yaml:9:18: events.types.track: weight must be a positive number"},
		"track twice in types": {minimalTraffic + "events:\n  share: 0.1\n  types: {track: 1, track: 2}\n",
			"t.yaml:9:21: events.types.track is given twice"},
		"name with a dash": {trackOnly + "    cart-updated: {weight: 1}\n",
			"t.yaml:11:5: events.track.cart-updated: an event name starts with a letter, uses only letters, digits and _, and is at most 32 bytes"},
		"name too long": {trackOnly + "    " + long + ": {weight: 1}\n",
			"t.yaml:11:5: events.track." + long + ": an event name starts with a letter"},
		"feedback name": {trackOnly + "    click: {weight: 1}\n",
			"t.yaml:11:5: events.track.click: click is a feedback event type; behavioural events are named after what happened"},
		"track as name": {trackOnly + "    track: {weight: 1}\n",
			"t.yaml:11:5: events.track.track: track is a feedback event type"},
		"name twice": {trackOnly + "    a: {weight: 1}\n    a: {weight: 2}\n",
			"t.yaml:12:5: events.track.a is given twice"},
		"entry is a number": {trackOnly + "    cart_updated: 70\n",
			`t.yaml:11:19: events.track.cart_updated must be a map such as {weight: 70, properties: {value: {uniform: [5, 300]}}}, got "70"`},
		"unknown key": {trackOnly + "    cart_updated: {weight: 1, props: {}}\n",
			`t.yaml:11:31: events.track.cart_updated: unknown key "props"; the keys are weight and properties`},
		"weight twice": {trackOnly + "    cart_updated: {weight: 1, weight: 2}\n",
			"t.yaml:11:31: events.track.cart_updated.weight is given twice"},
		"no weight": {trackOnly + "    cart_updated: {properties: {items: 1}}\n",
			"t.yaml:11:19: events.track.cart_updated.weight is required: how often this event is drawn among the track events"},
		"weight zero": {trackOnly + "    cart_updated: {weight: 0}\n",
			`t.yaml:11:28: events.track.cart_updated.weight must be a positive number, got "0"`},
		"weight text": {trackOnly + "    cart_updated: {weight: often}\n",
			`t.yaml:11:28: events.track.cart_updated.weight must be a positive number, got "often"`},
		"properties list": {trackOnly + "    cart_updated: {weight: 1, properties: [value]}\n",
			"t.yaml:11:43: events.track.cart_updated.properties must be a map of property: value, each a value (fixed), a list (uniform choice), a map of value: weight, {uniform: [lo, hi]} or {uniform_int: [lo, hi]}"},
		"property name": {trackOnly + "    cart_updated: {weight: 1, properties: {1value: 3}}\n",
			"t.yaml:11:44: events.track.cart_updated.properties.1value: a property name starts with a letter and uses only letters, digits and _"},
		"property twice": {trackOnly + "    cart_updated: {weight: 1, properties: {value: 1, value: 2}}\n",
			"t.yaml:11:54: events.track.cart_updated.properties.value is given twice"},
		"too many properties": {trackOnly + "    a: {weight: 1, properties: {p: 1" + manyProps.String() + "}}\n",
			"t.yaml:11:32: events.track.a.properties: 66 properties is more than the 64 allowed"},
		"null value": {trackOnly + "    a: {weight: 1, properties: {v: null}}\n",
			"t.yaml:11:36: events.track.a.properties.v: null is not a property value; leave the property out to send none"},
		"empty list": {trackOnly + "    a: {weight: 1, properties: {v: []}}\n",
			"t.yaml:11:36: events.track.a.properties.v: an empty list has nothing to choose from"},
		"list of maps": {trackOnly + "    a: {weight: 1, properties: {v: [{x: 1}]}}\n",
			"t.yaml:11:37: events.track.a.properties.v: each item of a list is a plain value to choose from: expected a plain value"},
		"null in a list": {trackOnly + "    a: {weight: 1, properties: {v: [x, ~]}}\n",
			"t.yaml:11:40: events.track.a.properties.v: each item of a list is a plain value to choose from: null is not a property value"},
		"empty map": {trackOnly + "    a: {weight: 1, properties: {v: {}}}\n",
			"t.yaml:11:36: events.track.a.properties.v: an empty map has nothing to choose from"},
		"choice weight": {trackOnly + "    a: {weight: 1, properties: {emotion: {angry: 0}}}\n",
			`t.yaml:11:50: events.track.a.properties.emotion: weight of "angry" must be a positive number, got "0"`},
		"choice weight map": {trackOnly + "    a: {weight: 1, properties: {v: {x: {y: 1}}}}\n",
			`t.yaml:11:40: events.track.a.properties.v: weight of "x" must be a positive number, got a map`},
		"choice twice": {trackOnly + "    a: {weight: 1, properties: {emotion: {angry: 1, angry: 2}}}\n",
			`t.yaml:11:53: events.track.a.properties.emotion: "angry" is given twice`},
		"choice key a list": {trackOnly + "    a: {weight: 1, properties: {v: {[x]: 1}}}\n",
			"t.yaml:11:37: events.track.a.properties.v: each key of a weighted choice is a plain value: expected a plain value"},
		"range and more": {trackOnly + "    a: {weight: 1, properties: {v: {uniform: [1, 2], x: 1}}}\n",
			"t.yaml:11:54: events.track.a.properties.v: uniform is a range and stands alone, as in {uniform: [lo, hi]}"},
		"range among choices": {trackOnly + "    a: {weight: 1, properties: {v: {x: 1, uniform_int: [1, 2]}}}\n",
			"t.yaml:11:43: events.track.a.properties.v: uniform_int is a range and stands alone, as in {uniform_int: [lo, hi]}; a choice is a map of value: weight"},
		"uniform scalar": {trackOnly + "    a: {weight: 1, properties: {v: {uniform: 5}}}\n",
			`t.yaml:11:46: events.track.a.properties.v.uniform must be two numbers [lo, hi] with lo <= hi, got "5"`},
		"uniform three": {trackOnly + "    a: {weight: 1, properties: {v: {uniform: [1, 2, 3]}}}\n",
			"t.yaml:11:46: events.track.a.properties.v.uniform must be two numbers [lo, hi] with lo <= hi, got a list"},
		"uniform reversed": {trackOnly + "    a: {weight: 1, properties: {v: {uniform: [300, 5]}}}\n",
			"t.yaml:11:46: events.track.a.properties.v.uniform must be two numbers [lo, hi] with lo <= hi, got [300, 5]"},
		"uniform text": {trackOnly + "    a: {weight: 1, properties: {v: {uniform: [low, 5]}}}\n",
			"t.yaml:11:46: events.track.a.properties.v.uniform must be two numbers [lo, hi] with lo <= hi, got [low, 5]"},
		"uniform infinite": {trackOnly + "    a: {weight: 1, properties: {v: {uniform: [0, .inf]}}}\n",
			"t.yaml:11:46: events.track.a.properties.v.uniform must be two numbers [lo, hi] with lo <= hi, got [0, .inf]"},
		"uniform_int fraction": {trackOnly + "    a: {weight: 1, properties: {v: {uniform_int: [1, 8.5]}}}\n",
			"t.yaml:11:50: events.track.a.properties.v.uniform_int must be two whole numbers [lo, hi] with lo <= hi, at most 2^53 in size, got [1, 8.5]"},
		"uniform_int huge": {trackOnly + "    a: {weight: 1, properties: {v: {uniform_int: [0, 9007199254740993]}}}\n",
			"t.yaml:11:50: events.track.a.properties.v.uniform_int must be two whole numbers [lo, hi] with lo <= hi, at most 2^53 in size, got [0, 9007199254740993]"},
		"uniform_int reversed": {trackOnly + "    a: {weight: 1, properties: {v: {uniform_int: [2, 1]}}}\n",
			"t.yaml:11:50: events.track.a.properties.v.uniform_int must be two whole numbers"},
		"property a map key": {trackOnly + "    a: {weight: 1, properties: {[v]: 1}}\n",
			"t.yaml:11:33: events.track.a.properties: a property name is a plain word, got a list"},
	} {
		_, err := ParseTraffic("t.yaml", []byte(c.file))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got: %v\nwant: %s", name, err, c.want)
		}
	}
}

// TestTrackBodies draws every kind of property value and decodes the
// batches as JSON: each value has its type and stays in its range, and
// choices come up as often as their weights say.
func TestTrackBodies(t *testing.T) {
	tr, err := ParseTraffic("t.yaml", []byte(trackOnly+`    every: {weight: 2, properties: {f: {uniform: [5, 300]}, i: {uniform_int: [-3, 3]}, s: [x, "y\"z"], w: {angry: 1, calm: 3}, b: {true: 1, false: 3}, n: {1: 1, 2.5: 1}, fixed: 9.5, str: "42", on: true, point: {uniform: [-1, -1]}, big: {uniform_int: [9007199254740990, 9007199254740992]}}}
    bare: {weight: 1}
    empty: {weight: 1, properties: {}}
`))
	if err != nil {
		t.Fatal(err)
	}
	tr.Events.Batch = 4
	src := NewRunGenerator(tr, 1000, 9, "r").NewSource()
	names := map[string]int{}
	ints := map[int64]int{}
	counts := map[string]int{}
	fMin, fMax := math.Inf(1), math.Inf(-1)
	ids := map[string]bool{}
	const batches = 4000
	var buf []byte
	for n := range uint64(batches) {
		buf = src.Events(buf[:0], n, testNow)
		b := decodeEvents(t, buf)
		// Numbers as written, so a whole number can be told from 3.0.
		var raw struct {
			Events []struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"events"`
		}
		if err := json.Unmarshal(buf, &raw); err != nil {
			t.Fatal(err)
		}
		for j, e := range b.Events {
			if e.Type != "track" || e.DecisionID != "" || e.Touchpoint != "" || ids[e.EventID] {
				t.Fatalf("not a fresh track event: %+v", e)
			}
			ids[e.EventID] = true
			names[e.Name]++
			if e.Name != "every" {
				if e.Properties != nil || bytes.Contains(buf, []byte(`"properties":{}`)) {
					t.Fatalf("%s has no properties to send: %s", e.Name, buf)
				}
				continue
			}
			p := e.Properties
			if len(p) != 11 {
				t.Fatalf("want 11 properties: %v", p)
			}
			f := p["f"].(float64)
			if f < 5 || f > 300 {
				t.Fatalf("f = %v, outside [5, 300]", f)
			}
			fMin, fMax = min(fMin, f), max(fMax, f)
			i, err := strconv.ParseInt(string(raw.Events[j].Properties["i"]), 10, 64)
			if err != nil || i < -3 || i > 3 {
				t.Fatalf("i = %s, not a whole number from -3 to 3", raw.Events[j].Properties["i"])
			}
			ints[i]++
			big, err := strconv.ParseInt(string(raw.Events[j].Properties["big"]), 10, 64)
			if err != nil || big < 9007199254740990 || big > 9007199254740992 {
				t.Fatalf("big = %s", raw.Events[j].Properties["big"])
			}
			counts["s="+p["s"].(string)]++
			counts["w="+p["w"].(string)]++
			counts["b="+strconv.FormatBool(p["b"].(bool))]++
			counts["n="+strconv.FormatFloat(p["n"].(float64), 'g', -1, 64)]++
			if p["fixed"] != 9.5 || p["str"] != "42" || p["on"] != true || p["point"] != -1.0 {
				t.Fatalf("fixed values: %v", p)
			}
		}
	}
	events := float64(4 * batches)
	near := func(what string, got int, of, want float64) {
		t.Helper()
		if share := float64(got) / of; math.Abs(share-want) > 0.03 {
			t.Errorf("%s: share %.3f, want %.2f", what, share, want)
		}
	}
	near("every", names["every"], events, 0.5)
	near("bare", names["bare"], events, 0.25)
	near("empty", names["empty"], events, 0.25)
	every := float64(names["every"])
	for _, c := range []struct {
		key  string
		want float64
	}{{"s=x", 0.5}, {`s=y"z`, 0.5}, {"w=angry", 0.25}, {"w=calm", 0.75}, {"b=true", 0.25}, {"b=false", 0.75}, {"n=1", 0.5}, {"n=2.5", 0.5}} {
		near(c.key, counts[c.key], every, c.want)
	}
	for i := int64(-3); i <= 3; i++ {
		near("i="+strconv.FormatInt(i, 10), ints[i], every, 1.0/7)
	}
	if fMin > 10 || fMax < 295 {
		t.Errorf("uniform [5, 300] drew only from %.1f to %.1f", fMin, fMax)
	}
}

// TestMixedBatches: feedback and track events share a batch, one
// customer's, and each carries only its own kind's fields.
func TestMixedBatches(t *testing.T) {
	tr, err := ParseTraffic("t.yaml", []byte(minimalTraffic+`events:
  share: 1
  batch: 50
  types: {click: 1, track: 1}
  touchpoints: [cart_coupon_10]
  track: {cart_updated: {weight: 1, properties: {items: {uniform_int: [1, 8]}}}}
`))
	if err != nil {
		t.Fatal(err)
	}
	b := decodeEvents(t, NewGenerator(tr, 1000, 3).NewSource().Events(nil, 12, testNow))
	kinds := map[string]int{}
	for _, e := range b.Events {
		kinds[e.Type]++
		track := e.Type == "track"
		if track != (e.Name == "cart_updated" && e.Properties != nil) || track == (e.Touchpoint == "cart_coupon_10" && e.DecisionID != "") ||
			e.CustomerID != b.Events[0].CustomerID {
			t.Fatalf("event %+v", e)
		}
	}
	if kinds["track"] == 0 || kinds["click"] == 0 || kinds["track"]+kinds["click"] != 50 {
		t.Errorf("a batch of 50 holds %v", kinds)
	}
}

// TestFeedbackBodiesUnchanged: a traffic file without track sends
// exactly the bytes it sent before behavioural events existed, so runs
// of the same file and seed stay comparable across versions.
func TestFeedbackBodiesUnchanged(t *testing.T) {
	tr, err := ParseTraffic("t.yaml", []byte(minimalTraffic+`events:
  share: 0.5
  batch: 3
  types: {impression: 80, click: 14, conversion: 3, dismiss: 3}
  touchpoints: {recs_bestsellers: 10, cart_coupon_10: 4, birthday_gift: 1}
`))
	if err != nil {
		t.Fatal(err)
	}
	src := NewRunGenerator(tr, 3000, 42, "r1").NewSource()
	const want = `{"events":[{"event_id":"lt-42-r1-7-0","decision_id":"bf1366b9763a069b6d082cee7e58ba89","customer_id":"c-000096","touchpoint":"cart_coupon_10","type":"click","ts":"2026-11-23T10:00:00Z"},` +
		`{"event_id":"lt-42-r1-7-1","decision_id":"bf1366b9763a069b6d082cee7e58ba89","customer_id":"c-000096","touchpoint":"recs_bestsellers","type":"impression","ts":"2026-11-23T10:00:00Z"},` +
		`{"event_id":"lt-42-r1-7-2","decision_id":"bf1366b9763a069b6d082cee7e58ba89","customer_id":"c-000096","touchpoint":"cart_coupon_10","type":"impression","ts":"2026-11-23T10:00:00Z"}]}`
	if got := src.Events(nil, 7, testNow); string(got) != want {
		t.Errorf("batch 7 changed:\n got %s\nwant %s", got, want)
	}
	h := sha256.New()
	var buf []byte
	for n := range uint64(2000) {
		buf = src.Events(buf[:0], n, testNow)
		h.Write(buf)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != "388f57bc7f9b69bd6fb7c03c0e33536a1f72212e5296460296e3bcb17856f538" {
		t.Errorf("the first 2,000 batches changed: sha256 %s", got)
	}
}

func TestTrackSettings(t *testing.T) {
	e := &EventSettings{URL: "http://h/v1/events", Share: 1, Batch: 100, Track: []string{"cart_updated", "checkout_completed"}, TrackShare: 1, IDPrefix: "lt-1-x-"}
	if got, want := eventsSetting(e), "100% of requests, batches of 100 events; 100% of events behavioural (cart_updated, checkout_completed), to http://h/v1/events; ids lt-1-x-…"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	e.Track, e.TrackShare, e.Touchpoints, e.Batch = nil, 0, 3, 1
	if got, want := eventsSetting(e), "100% of requests, batches of 1 event naming 3 touchpoints, to http://h/v1/events; ids lt-1-x-…"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
