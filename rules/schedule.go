package rules

import (
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Schedule limits when a rule is active. The zero Schedule is always active.
type Schedule struct {
	From, Until time.Time // zero = unbounded; Until is inclusive
	Days        uint8     // bit per time.Weekday; 0 = every day
	// HoursFrom and HoursTo are minutes after midnight; HoursFrom == HoursTo
	// means all day. The window ends before HoursTo and may wrap midnight.
	HoursFrom, HoursTo int
	Location           *time.Location
}

// Active reports whether the schedule allows now.
func (s *Schedule) Active(now time.Time) bool {
	c := Clock{Now: now}
	return s.ActiveOn(&c)
}

// Clock is one decision's time, with the local weekday and minute of the
// few time zones its schedules use worked out once rather than per rule.
type Clock struct {
	Now  time.Time
	n    int
	locs [4]*time.Location
	days [4]time.Weekday
	mins [4]int
}

// Local returns the weekday and minute of the day at the clock's time in loc.
func (c *Clock) Local(loc *time.Location) (time.Weekday, int) {
	for i := 0; i < c.n; i++ {
		if c.locs[i] == loc {
			return c.days[i], c.mins[i]
		}
	}
	t := c.Now.In(loc)
	day, min := t.Weekday(), t.Hour()*60+t.Minute()
	if c.n < len(c.locs) {
		c.locs[c.n], c.days[c.n], c.mins[c.n] = loc, day, min
		c.n++
	}
	return day, min
}

// ActiveOn reports whether the schedule allows the clock's time.
func (s *Schedule) ActiveOn(c *Clock) bool {
	now := c.Now
	if !s.From.IsZero() && now.Before(s.From) {
		return false
	}
	if !s.Until.IsZero() && now.After(s.Until) {
		return false
	}
	if s.Days == 0 && s.HoursFrom == s.HoursTo {
		return true
	}
	day, m := c.Local(s.Location)
	if s.Days != 0 && s.Days&(1<<uint(day)) == 0 {
		return false
	}
	if s.HoursFrom == s.HoursTo {
		return true
	}
	if s.HoursFrom < s.HoursTo {
		return m >= s.HoursFrom && m < s.HoursTo
	}
	return m >= s.HoursFrom || m < s.HoursTo
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

func (r *reader) schedule(n *yaml.Node, what string) *Schedule {
	s := &Schedule{Location: time.UTC}
	ok := true
	var hoursNode *yaml.Node
	r.mapping(n, what, scheduleKeys, func(key string, _, v *yaml.Node) {
		var good bool
		switch key {
		case "from":
			s.From, good = r.timestamp(v, what+".from")
		case "until":
			s.Until, good = r.timestamp(v, what+".until")
		case "days":
			var days []string
			days, good = r.strList(v, what+".days")
			for i, d := range days {
				wd, known := weekdays[strings.ToLower(d)]
				if !known {
					r.errf(v.Content[i], "%s: unknown day %q (use mon, tue, wed, thu, fri, sat, sun)", what, d)
					good = false
					continue
				}
				s.Days |= 1 << uint(wd)
			}
		case "hours":
			hoursNode = v
			good = true
		case "timezone":
			var name string
			if name, good = r.nonEmptyStr(v, what+".timezone"); good {
				loc, err := time.LoadLocation(name)
				if err != nil {
					r.errf(v, "%s: unknown timezone %q (use an IANA name such as Europe/Paris)", what, name)
					good = false
				} else {
					s.Location = loc
				}
			}
		}
		ok = ok && good
	})
	if hoursNode != nil {
		from, to, good := parseHours(hoursNode.Value)
		if !good || hoursNode.Kind != yaml.ScalarNode {
			r.errf(hoursNode, `%s.hours must look like "09:00-21:00", got %q`, what, hoursNode.Value)
			ok = false
		}
		s.HoursFrom, s.HoursTo = from, to
	}
	if !s.From.IsZero() && !s.Until.IsZero() && !s.Until.After(s.From) {
		r.errf(n, "%s: until (%s) must be after from (%s)", what, s.Until.Format(time.RFC3339), s.From.Format(time.RFC3339))
		ok = false
	}
	if !ok {
		return nil
	}
	return s
}

func parseHours(v string) (from, to int, ok bool) {
	a, b, found := strings.Cut(strings.TrimSpace(v), "-")
	if !found {
		return 0, 0, false
	}
	from, ok1 := parseClock(strings.TrimSpace(a), false)
	to, ok2 := parseClock(strings.TrimSpace(b), true)
	return from, to, ok1 && ok2
}

func parseClock(v string, allow24 bool) (int, bool) {
	h, m, found := strings.Cut(v, ":")
	if !found || len(h) == 0 || len(h) > 2 || len(m) != 2 {
		return 0, false
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || mm < 0 || mm > 59 || hh < 0 {
		return 0, false
	}
	if hh == 24 && mm == 0 && allow24 {
		return 24 * 60, true
	}
	if hh > 23 {
		return 0, false
	}
	return hh*60 + mm, true
}
