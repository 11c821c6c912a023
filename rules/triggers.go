package rules

import (
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/expr-lang/expr/vm"
	"go.yaml.in/yaml/v3"

	"github.com/touchpoint-dev/touchpoint/features"
)

// Bounds on triggers. A delay past 30 days is a campaign, not a reaction;
// a trigger waits on a handful of events.
const (
	MaxTriggerDelay  = 30 * 24 * time.Hour
	MaxTriggerUnless = 16
	maxWebhookTime   = 60 * time.Second
)

// Trigger sends a placement's decision when something happens: On starts
// (or restarts) a wait of Delay for the customer, any of Unless meanwhile
// cancels it, and when it is due When is checked and Placement decided on
// Channel with the full rules and contact policy, for Deliver to send.
type Trigger struct {
	ID          string
	Description string
	On          string
	Unless      []string
	Delay       time.Duration
	// When is checked at fire time over customer and context (channel,
	// and trigger, set to the trigger's id); nil means always.
	When       *vm.Program
	WhenSource string
	Placement  int
	Channel    string
	// Deliver is the Deliveries index the decision goes to.
	Deliver int
	// Tests run the trigger on a simulated clock.
	Tests     []Fixture
	File      string
	Line, Col int
}

// Delivery is where triggered decisions are sent: exactly one of Webhook
// and Stream is set.
type Delivery struct {
	ID      string
	Webhook *WebhookDelivery
	Stream  *StreamDelivery
}

// WebhookDelivery posts each message, signed with the secret read from
// the environment variable SecretEnv when the server starts.
type WebhookDelivery struct {
	URL       string
	SecretEnv string
	Timeout   time.Duration
	// MaxAttempts and BackoffMax, when set, replace the deliverer's
	// defaults (six attempts, waits of at most 30s).
	MaxAttempts int
	BackoffMax  time.Duration
}

// StreamDelivery adds each message to a Redis stream, trimmed to about
// MaxLen entries.
type StreamDelivery struct {
	Stream string
	MaxLen int64
}

// Trigger returns the index of trigger id, or -1.
func (rs *Ruleset) Trigger(id string) int {
	for i := range rs.Triggers {
		if rs.Triggers[i].ID == id {
			return i
		}
	}
	return -1
}

// TriggersOn lists the triggers an event starts and those it cancels.
func (rs *Ruleset) TriggersOn(event string) (starts, cancels []int) {
	for i := range rs.Triggers {
		t := &rs.Triggers[i]
		if t.On == event {
			starts = append(starts, i)
		}
		if slices.Contains(t.Unless, event) {
			cancels = append(cancels, i)
		}
	}
	return starts, cancels
}

func (r *reader) delivery(it item) Delivery {
	d := Delivery{ID: it.id}
	what := "delivery " + it.id
	r.mapping(it.node, what, deliveryKeys, func(key string, _, v *yaml.Node) {
		switch key {
		case "webhook":
			w := &WebhookDelivery{Timeout: 2 * time.Second}
			r.mapping(v, what+".webhook", webhookKeys, func(k string, _, wv *yaml.Node) {
				switch k {
				case "url":
					w.URL, _ = r.nonEmptyStr(wv, what+".webhook.url")
					if u, err := url.Parse(w.URL); w.URL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
						r.errf(wv, "%s.webhook.url must be an absolute http or https URL, got %q", what, w.URL)
					}
				case "secret_env":
					w.SecretEnv, _ = r.nonEmptyStr(wv, what+".webhook.secret_env")
				case "timeout":
					d, err := time.ParseDuration(wv.Value)
					if err != nil || d <= 0 || d > maxWebhookTime {
						r.errf(wv, "%s.webhook.timeout must be a duration from 1ms to 60s, got %q", what, wv.Value)
						return
					}
					w.Timeout = d
				case "max_attempts":
					n, ok := r.integer(wv, what+".webhook.max_attempts")
					if ok && (n < 1 || n > 20) {
						r.errf(wv, "%s.webhook.max_attempts must be from 1 to 20, got %d", what, n)
						return
					}
					w.MaxAttempts = n
				case "backoff_max":
					d, err := time.ParseDuration(wv.Value)
					if err != nil || d < time.Millisecond || d > time.Hour {
						r.errf(wv, "%s.webhook.backoff_max must be a duration from 1ms to 1h, got %q", what, wv.Value)
						return
					}
					w.BackoffMax = d
				}
			})
			if w.URL == "" || w.SecretEnv == "" {
				r.errf(v, "%s.webhook needs url and secret_env (the environment variable holding the signing secret)", what)
			}
			d.Webhook = w
		case "redis_stream":
			s := &StreamDelivery{MaxLen: 1_000_000}
			r.mapping(v, what+".redis_stream", streamKeys, func(k string, _, sv *yaml.Node) {
				switch k {
				case "stream":
					s.Stream, _ = r.nonEmptyStr(sv, what+".redis_stream.stream")
				case "maxlen":
					n, ok := r.integer(sv, what+".redis_stream.maxlen")
					if ok && (n < 1 || n > 1<<40) {
						r.errf(sv, "%s.redis_stream.maxlen must be positive", what)
					}
					s.MaxLen = int64(n)
				}
			})
			if s.Stream == "" {
				r.errf(v, "%s.redis_stream needs a stream name", what)
			}
			d.Stream = s
		}
	})
	if (d.Webhook == nil) == (d.Stream == nil) {
		r.errf(it.idAt, "%s needs exactly one of webhook and redis_stream", what)
	}
	return d
}

func (r *reader) trigger(it item, rs *Ruleset, comp *exprCompiler) Trigger {
	t := Trigger{ID: it.id, Placement: -1, Deliver: -1, File: r.src.path, Line: it.idAt.Line, Col: it.idAt.Column}
	what := "trigger " + it.id
	events := rs.Schema.EventNames()
	eventRef := func(n *yaml.Node, key string) string {
		name, ok := r.nonEmptyStr(n, what+"."+key)
		if ok && rs.Schema.Event(name) < 0 {
			r.errf(n, "%s.%s: %q is not an event of the feature schema's events section%s", what, key, name, suggest(name, events))
		}
		return name
	}
	var onNode, testsNode *yaml.Node
	given := map[string]bool{}
	r.mapping(it.node, what, triggerKeys, func(key string, _, v *yaml.Node) {
		given[key] = true
		switch key {
		case "description":
			t.Description, _ = r.str(v, what+".description")
		case "on":
			onNode = v
			t.On = eventRef(v, "on")
		case "unless":
			for _, n := range r.sequence(v, what+".unless") {
				t.Unless = append(t.Unless, eventRef(n, "unless"))
			}
			if len(t.Unless) > MaxTriggerUnless {
				r.errf(v, "%s.unless: at most %d events", what, MaxTriggerUnless)
			}
		case "delay":
			d, err := time.ParseDuration(v.Value)
			if err != nil || d < 0 || d > MaxTriggerDelay {
				r.errf(v, "%s.delay must be a duration from 0s to 720h (30 days), such as 2h or 90s, got %q", what, v.Value)
				return
			}
			t.Delay = d
		case "when":
			t.WhenSource = v.Value
			t.When = comp.compileScoped(r, v, exprBool, what+".when", 0, 0)
		case "placement":
			id, _ := r.nonEmptyStr(v, what+".placement")
			if t.Placement = rs.Placement(id); t.Placement < 0 && id != "" {
				r.errf(v, "%s: unknown placement %q%s", what, id, suggest(id, placementIDs(rs)))
			}
		case "channel":
			t.Channel, _ = r.nonEmptyStr(v, what+".channel")
			if f := rs.Schema.ContextField("channel"); f >= 0 && t.Channel != "" && !rs.Schema.Context[f].Allows(features.String(t.Channel)) {
				r.errf(v, "%s.channel must be one of %s, got %q", what, strings.Join(rs.Schema.Context[f].Values, ", "), t.Channel)
			}
		case "tests":
			testsNode = v
		case "deliver":
			id, _ := r.nonEmptyStr(v, what+".deliver")
			for i := range rs.Deliveries {
				if rs.Deliveries[i].ID == id {
					t.Deliver = i
				}
			}
			if t.Deliver < 0 && id != "" {
				ids := make([]string, len(rs.Deliveries))
				for i, d := range rs.Deliveries {
					ids[i] = d.ID
				}
				r.errf(v, "%s: unknown delivery %q%s", what, id, suggest(id, ids))
			}
		}
	})
	var missing []string
	for _, key := range []string{"placement", "channel", "deliver"} {
		if !given[key] {
			missing = append(missing, key)
		}
	}
	switch {
	case onNode == nil:
		r.errf(it.idAt, "%s needs on: the event that starts it", what)
	case len(missing) > 0:
		r.errf(it.idAt, "%s needs %s", what, strings.Join(missing, ", "))
	case slices.Contains(t.Unless, t.On):
		r.errf(onNode, "%s: %s both starts and cancels it", what, t.On)
	}
	if testsNode != nil {
		t.Tests = r.triggerTests(testsNode, rs, t.ID)
	}
	return t
}

// triggerTests reads a trigger's tests: a customer, events at offsets
// from now, and what is expected to be sent (and when).
func (r *reader) triggerTests(n *yaml.Node, rs *Ruleset, trigger string) []Fixture {
	var out []Fixture
	for i, el := range r.sequence(n, "trigger "+trigger+".tests") {
		what := fmt.Sprintf("trigger %s.tests[%d]", trigger, i)
		f := Fixture{Trigger: trigger, File: r.src.path, Line: el.Line, Col: el.Column, ExpectAt: -1, Name: fmt.Sprintf("test %d", i+1)}
		expectSeen := false
		r.mapping(el, what, triggerFixtureKeys, func(key string, _, v *yaml.Node) {
			switch key {
			case "name":
				f.Name, _ = r.nonEmptyStr(v, what+".name")
			case "customer":
				f.Customer = r.fixtureCustomer(v, rs, what)
			case "now":
				f.Now, _ = r.timestamp(v, what+".now")
			case "events":
				for j, ev := range r.sequence(v, what+".events") {
					f.Events = append(f.Events, r.fixtureEvent(ev, rs, fmt.Sprintf("%s.events[%d]", what, j)))
				}
			case "expect_sent":
				expectSeen = true
				ids, _ := r.strList(v, what+".expect_sent")
				for j, id := range ids {
					if rs.Touchpoint(id) < 0 {
						r.errf(v.Content[j], "%s: unknown touchpoint %q%s", what, id, suggest(id, touchpointIDs(rs)))
					}
				}
				f.ExpectSent = ids
			case "expect_at":
				d, err := time.ParseDuration(v.Value)
				if err != nil || d < 0 {
					r.errf(v, "%s.expect_at must be a duration after now, such as 2h, got %q", what, v.Value)
					return
				}
				f.ExpectAt = d
			}
		})
		if !expectSeen {
			r.errf(el, "%s needs expect_sent: the touchpoints the trigger sends ([] for nothing)", what)
		}
		out = append(out, f)
	}
	return out
}

func (r *reader) fixtureEvent(n *yaml.Node, rs *Ruleset, what string) FixtureEvent {
	ev := FixtureEvent{}
	var def *EventDef
	var propsNode *yaml.Node
	r.mapping(n, what, triggerEventKeys, func(key string, _, v *yaml.Node) {
		switch key {
		case "name":
			ev.Name, _ = r.nonEmptyStr(v, what+".name")
			if ei := rs.Schema.Event(ev.Name); ei >= 0 {
				def = &rs.Schema.Events[ei]
			} else if ev.Name != "" {
				r.errf(v, "%s: %q is not an event of the feature schema%s", what, ev.Name, suggest(ev.Name, rs.Schema.EventNames()))
			}
		case "properties":
			propsNode = v
		case "at":
			d, err := time.ParseDuration(v.Value)
			if err != nil || d < 0 {
				r.errf(v, "%s.at must be a duration after the test's now, such as 0m or 30m, got %q", what, v.Value)
				return
			}
			ev.At = d
		}
	})
	if propsNode != nil && def != nil {
		ev.Properties = map[string]features.Value{}
		r.mapping(propsNode, what+".properties", nil, func(name string, k, v *yaml.Node) {
			pi := def.Property(name)
			if pi < 0 {
				r.errf(k, "%s: %s has no property %s", what, def.Name, name)
				return
			}
			if val, ok := r.value(v, def.Properties[pi].Type, what+".properties."+name); ok {
				ev.Properties[name] = val
			}
		})
	}
	return ev
}

// CheckSecrets reports delivery secrets missing from the environment:
// the server refuses to start without them rather than send unsigned.
func (rs *Ruleset) CheckSecrets(getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	var missing []string
	for _, d := range rs.Deliveries {
		if d.Webhook != nil && len(getenv(d.Webhook.SecretEnv)) < 16 {
			missing = append(missing, fmt.Sprintf("delivery %s: %s is not set or shorter than 16 bytes", d.ID, d.Webhook.SecretEnv))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("cannot sign webhooks: %s", strings.Join(missing, "; "))
	}
	return nil
}
