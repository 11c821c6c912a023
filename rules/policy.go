package rules

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/touchpoint-dev/touchpoint/features"
)

// Cap limits how often a customer may be shown something: at most Count
// events of type Event about Subject within the last Days days (today
// included). Counters are kept per day, so windows are whole days.
type Cap struct {
	Count   int64
	Days    int
	Event   string // features.EventImpression (default) or features.EventDecision
	Subject string // "tp:<id>", "rule:<id>", "kind:<kind>", "channel:<channel>" or "all"
	// Channel limits a channel cap to requests on that channel.
	Channel string
	// Kind limits a kind cap to touchpoints of that kind.
	Kind string
}

// String describes the cap for explanations, e.g. "3 impressions per 7d of tp:cart_coupon_10".
func (c *Cap) String() string {
	return fmt.Sprintf("%d %ss per %dd of %s", c.Count, c.Event, c.Days, c.Subject)
}

// Reached reports whether the customer's counters have used up the cap on day today.
func (c *Cap) Reached(counters []features.Counter, today int32) bool {
	var n int64
	from := today - int32(c.Days) + 1
	for i := range counters {
		k := &counters[i]
		if k.Day >= from && k.Day <= today && k.Subject == c.Subject && k.Event == c.Event {
			n += k.Count
		}
	}
	return n >= c.Count
}

// Budget limits how many times a touchpoint (a coupon) is issued across all
// nodes; zero means no limit of that kind.
type Budget struct {
	Total  int64
	PerDay int64
}

// QuietHours keeps message channels silent at night in the customer's own
// time zone.
type QuietHours struct {
	Channels []string
	// HoursFrom and HoursTo are minutes after midnight; the window may wrap.
	HoursFrom, HoursTo int
	// TimezoneFeature is the customer feature holding an IANA time zone;
	// Fallback applies when it is empty or unknown.
	TimezoneFeature int // Schema.Customer index, -1 = none
	Fallback        *time.Location

	locations sync.Map // time zone name → *time.Location; loading one reads the zone database
}

// Location resolves a customer's time zone name, falling back for empty or
// unknown names.
func (q *QuietHours) Location(name string) *time.Location {
	if name == "" {
		return q.Fallback
	}
	if loc, ok := q.locations.Load(name); ok {
		return loc.(*time.Location)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		loc = q.Fallback
	}
	q.locations.Store(name, loc)
	return loc
}

// QuietFor reports whether a request on channel at now falls in the quiet
// window of a customer whose time zone feature env holds.
func (q *QuietHours) QuietFor(env *Env, channel string, now time.Time) bool {
	if !contains(q.Channels, channel) {
		return false
	}
	loc := q.Fallback
	if q.TimezoneFeature >= 0 {
		v, _ := env.Customer(q.TimezoneFeature)
		loc = q.Location(v.Str)
	}
	return q.Quiet(now, loc)
}

// EndFor returns when the quiet window that holds a send on channel at
// now ends, for the customer whose time zone feature env holds; zero when
// now is not quiet. Triggered sends wait until then rather than be dropped.
func (q *QuietHours) EndFor(env *Env, channel string, now time.Time) time.Time {
	if !q.QuietFor(env, channel, now) {
		return time.Time{}
	}
	loc := q.Fallback
	if q.TimezoneFeature >= 0 {
		v, _ := env.Customer(q.TimezoneFeature)
		loc = q.Location(v.Str)
	}
	local := now.In(loc)
	end := time.Date(local.Year(), local.Month(), local.Day(), q.HoursTo/60, q.HoursTo%60, 0, 0, loc)
	if !end.After(local) {
		end = time.Date(local.Year(), local.Month(), local.Day()+1, q.HoursTo/60, q.HoursTo%60, 0, 0, loc)
	}
	return end
}

// Quiet reports whether the hour in loc is inside the quiet window.
func (q *QuietHours) Quiet(now time.Time, loc *time.Location) bool {
	local := now.In(loc)
	m := local.Hour()*60 + local.Minute()
	if q.HoursFrom < q.HoursTo {
		return m >= q.HoursFrom && m < q.HoursTo
	}
	return m >= q.HoursFrom || m < q.HoursTo
}

// ConsentPolicy says which touchpoints need the customer's recorded consent
// for the channel they are shown on.
type ConsentPolicy struct {
	Kinds    []string
	Channels []string
	// Features maps a channel to a bool customer feature (Schema.Customer
	// index) that holds consent given elsewhere, e.g. in a CRM; consent
	// recorded through the API, when there is any, takes precedence.
	Features map[string]int
}

// Granted reports whether the customer consents to channel: their recorded
// consent for it if any, else the channel's consent feature bound in env.
func (c *ConsentPolicy) Granted(recorded map[string]features.Consent, env *Env, channel string) bool {
	if got, ok := recorded[channel]; ok {
		return got.Granted
	}
	if fi, ok := c.Features[channel]; ok && env != nil {
		v, _ := env.Customer(fi)
		return v.Bool
	}
	return false
}

// Requires reports whether a touchpoint of kind on channel needs consent.
func (c *ConsentPolicy) Requires(kind, channel string) bool {
	return contains(c.Kinds, kind) && contains(c.Channels, channel)
}

// Policy is the contact policy shared by every rule: caps by kind, channel
// and overall, quiet hours and consent.
type Policy struct {
	Caps    []Cap
	Quiet   *QuietHours
	Consent *ConsentPolicy
}

// parseWindow reads "7d" or "2w" as a number of days.
func parseWindow(s string) (int, bool) {
	s = strings.TrimSpace(s)
	if len(s) < 2 {
		return 0, false
	}
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || n < 1 {
		return 0, false
	}
	switch s[len(s)-1] {
	case 'd':
	case 'w':
		n *= 7
	default:
		return 0, false
	}
	return n, n <= 400
}

// cap reads {count: 3, per: 7d, on: impressions|decisions}; extra lists
// further keys the caller handles (kind, channel) through onExtra.
func (r *reader) cap(n *yaml.Node, what, subject string, extra []string, onExtra func(key string, v *yaml.Node)) *Cap {
	c := &Cap{Event: features.EventImpression, Subject: subject}
	ok := true
	hasCount, hasPer := false, false
	keys := append(slices.Clip(capKeys), extra...)
	r.mapping(n, what, keys, func(key string, _, v *yaml.Node) {
		switch key {
		case "count":
			hasCount = true
			count, good := r.integer(v, what+".count")
			if good && count < 1 {
				r.errf(v, "%s.count must be at least 1", what)
				good = false
			}
			c.Count, ok = int64(count), ok && good
		case "per":
			hasPer = true
			days, good := parseWindow(v.Value)
			if !good || v.Kind != yaml.ScalarNode {
				r.errf(v, `%s.per must be a number of days or weeks such as 7d or 2w (at most 400 days), got %q`, what, v.Value)
				ok = false
			}
			c.Days = days
		case "on":
			switch v.Value {
			case "impressions":
				c.Event = features.EventImpression
			case "decisions":
				c.Event = features.EventDecision
			case "clicks":
				c.Event = features.EventClick
			default:
				r.errf(v, "%s.on must be impressions, decisions or clicks, got %q", what, v.Value)
				ok = false
			}
		default:
			onExtra(key, v)
		}
	})
	if !hasCount || !hasPer {
		r.errf(n, "%s needs count and per, as in {count: 3, per: 7d}", what)
		return nil
	}
	if !ok {
		return nil
	}
	return c
}

func (r *reader) budget(n *yaml.Node, what string) *Budget {
	b := &Budget{}
	r.mapping(n, what, budgetKeys, func(key string, _, v *yaml.Node) {
		count, good := r.integer(v, what+"."+key)
		if good && count < 1 {
			r.errf(v, "%s.%s must be at least 1", what, key)
		}
		if key == "total" {
			b.Total = int64(count)
		} else {
			b.PerDay = int64(count)
		}
	})
	if b.Total == 0 && b.PerDay == 0 {
		r.errf(n, "%s needs total and/or per_day, as in {total: 10000, per_day: 500}", what)
		return nil
	}
	return b
}

// policy reads a rule file's policy section into p.
func (r *reader) policy(n *yaml.Node, p *Policy, schema *Schema, seen *bool) {
	if *seen {
		r.errf(n, "policy is already defined in another file; keep the contact policy in one place")
		return
	}
	*seen = true
	r.mapping(n, "policy", policyKeys, func(key string, _, v *yaml.Node) {
		switch key {
		case "caps":
			for i, el := range r.sequence(v, "policy.caps") {
				what := fmt.Sprintf("policy.caps[%d]", i)
				var kind, channel string
				c := r.cap(el, what, "all", policyCapExtraKeys, func(key string, v *yaml.Node) {
					switch key {
					case "kind":
						kind, _ = r.nonEmptyStr(v, what+".kind")
						if kind != "" && kindIndex(kind) < 0 {
							r.errf(v, "%s: unknown kind %q%s (use offer, coupon, message or content)", what, kind, suggest(kind, KindNames()))
						}
					case "channel":
						channel, _ = r.nonEmptyStr(v, what+".channel")
						r.checkChannel(v, schema, channel, what)
					}
				})
				if c == nil {
					continue
				}
				if kind != "" && channel != "" {
					r.errf(el, "%s: give kind or channel, not both (write two caps)", what)
					continue
				}
				switch {
				case kind != "":
					c.Subject, c.Kind = "kind:"+kind, kind
				case channel != "":
					c.Subject, c.Channel = "channel:"+channel, channel
				}
				p.Caps = append(p.Caps, *c)
			}
		case "quiet_hours":
			p.Quiet = r.quietHours(v, schema)
		case "consent":
			c := &ConsentPolicy{Features: map[string]int{}}
			r.mapping(v, "policy.consent", consentKeys, func(key string, _, cv *yaml.Node) {
				if key == "features" {
					r.mapping(cv, "policy.consent.features", nil, func(channel string, k, fv *yaml.Node) {
						r.checkChannel(k, schema, channel, "policy.consent.features")
						name, _ := r.nonEmptyStr(fv, "policy.consent.features."+channel)
						fi := schema.CustomerField(name)
						if fi < 0 || schema.Customer[fi].Type != TypeBool {
							r.errf(fv, "policy.consent.features.%s must name a bool customer feature, got %q", channel, name)
							return
						}
						c.Features[channel] = fi
					})
					return
				}
				list, _ := r.strList(cv, "policy.consent."+key)
				for i, item := range list {
					if key == "kinds" && kindIndex(item) < 0 {
						r.errf(cv.Content[i], "policy.consent: unknown kind %q", item)
					}
					if key == "channels" {
						r.checkChannel(cv.Content[i], schema, item, "policy.consent")
					}
				}
				if key == "kinds" {
					c.Kinds = list
				} else {
					c.Channels = list
				}
			})
			if len(c.Kinds) == 0 || len(c.Channels) == 0 {
				r.errf(v, "policy.consent needs kinds and channels, as in {kinds: [offer, coupon], channels: [email, sms]}")
			}
			p.Consent = c
		}
	})
}

func (r *reader) checkChannel(n *yaml.Node, schema *Schema, channel, what string) {
	f := schema.ContextField("channel")
	if f < 0 {
		return
	}
	if allowed := schema.Context[f].Values; len(allowed) > 0 && !contains(allowed, channel) {
		r.errf(n, "%s: unknown channel %q%s (the schema allows %s)", what, channel, suggest(channel, allowed), strings.Join(allowed, ", "))
	}
}

func (r *reader) quietHours(n *yaml.Node, schema *Schema) *QuietHours {
	q := &QuietHours{TimezoneFeature: -1, Fallback: time.UTC}
	hasHours := false
	r.mapping(n, "policy.quiet_hours", quietHoursKeys, func(key string, _, v *yaml.Node) {
		switch key {
		case "channels":
			q.Channels, _ = r.strList(v, "policy.quiet_hours.channels")
			for i, c := range q.Channels {
				r.checkChannel(v.Content[i], schema, c, "policy.quiet_hours")
			}
		case "hours":
			hasHours = true
			from, to, ok := parseHours(v.Value)
			if !ok || from == to {
				r.errf(v, `policy.quiet_hours.hours must look like "21:00-08:00", got %q`, v.Value)
			}
			q.HoursFrom, q.HoursTo = from, to
		case "timezone_feature":
			name, _ := r.nonEmptyStr(v, "policy.quiet_hours.timezone_feature")
			q.TimezoneFeature = schema.CustomerField(name)
			if q.TimezoneFeature < 0 || schema.Customer[q.TimezoneFeature].Type != TypeString {
				r.errf(v, "policy.quiet_hours.timezone_feature must name a string customer feature, got %q", name)
			}
		case "timezone":
			name, _ := r.nonEmptyStr(v, "policy.quiet_hours.timezone")
			loc, err := time.LoadLocation(name)
			if err != nil {
				r.errf(v, "policy.quiet_hours: unknown timezone %q (use an IANA name such as Europe/Paris)", name)
				return
			}
			q.Fallback = loc
		}
	})
	if !hasHours || len(q.Channels) == 0 {
		r.errf(n, `policy.quiet_hours needs channels and hours, as in {channels: [sms], hours: "21:00-08:00"}`)
		return nil
	}
	return q
}
