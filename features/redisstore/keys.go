package redisstore

import (
	"strconv"
	"strings"
)

// customerKeys builds the keys of one customer (see the package doc).
type customerKeys struct{ prefix string } // "tp:{<escaped id>}"

func keysFor(customerID string) customerKeys {
	return customerKeys{prefix: "tp:{" + escapeTag(customerID) + "}"}
}

func (k customerKeys) features() string { return k.prefix + ":f" }
func (k customerKeys) counters() string { return k.prefix + ":n" }
func (k customerKeys) consent() string  { return k.prefix + ":k" }
func (k customerKeys) pruned() string   { return k.prefix + ":p" }
func (k customerKeys) event(eventID string) string {
	return k.prefix + ":e:" + eventID
}

// budgetKeys returns the keys of a touchpoint's budget: units consumed ever,
// and on day.
func budgetKeys(touchpoint string, day int32) (total, perDay string) {
	total = "tp:budget:{" + escapeTag(touchpoint) + "}"
	return total, total + ":" + strconv.Itoa(int(day))
}

// escapeTag makes s safe inside a hash tag: Redis hashes the text between the
// first '{' and the next '}', so a '}' in an id would cut the tag short (and
// let two ids share keys) and "{}" would disable it. '%' is escaped too so
// the encoding cannot be forged. Ids without these bytes are unchanged.
func escapeTag(s string) string {
	if !strings.ContainsAny(s, "{}%") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '{':
			b.WriteString("%7B")
		case '}':
			b.WriteString("%7D")
		case '%':
			b.WriteString("%25")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// counterField is a counters hash field.
func counterField(event, subject string, day int32) string {
	return event + "|" + subject + "|" + strconv.Itoa(int(day))
}

// parseCounterField splits "<event>|<subject>|<day>". The subject may itself
// contain '|'; event types and days cannot.
func parseCounterField(f string) (event, subject string, day int32, ok bool) {
	i := strings.IndexByte(f, '|')
	j := strings.LastIndexByte(f, '|')
	if i < 0 || j <= i {
		return "", "", 0, false
	}
	d, err := strconv.ParseInt(f[j+1:], 10, 32)
	if err != nil {
		return "", "", 0, false
	}
	return f[:i], f[i+1 : j], int32(d), true
}
