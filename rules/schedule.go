package rules

import (
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
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
	if !s.From.IsZero() && now.Before(s.From) {
		return false
	}
	if !s.Until.IsZero() && now.After(s.Until) {
		return false
	}
	if s.Days == 0 && s.HoursFrom == s.HoursTo {
		return true
	}
	local := now.In(s.Location)
	if s.Days != 0 && s.Days&(1<<uint(local.Weekday())) == 0 {
		return false
	}
	if s.HoursFrom == s.HoursTo {
		return true
	}
	m := local.Hour()*60 + local.Minute()
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
	r.mapping(n, what, []string{"from", "until", "days", "hours", "timezone"}, func(key string, _, v *yaml.Node) {
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
