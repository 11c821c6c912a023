package loadtest

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// fmtUS renders microseconds with a unit a person reads at a glance:
// 62µs, 1.24ms, 212ms, 1.50s.
func fmtUS(us int64) string {
	switch {
	case us < 1000:
		return strconv.FormatInt(us, 10) + "µs"
	case us < 10_000:
		return strconv.FormatFloat(float64(us)/1000, 'f', 2, 64) + "ms"
	case us < 100_000:
		return strconv.FormatFloat(float64(us)/1000, 'f', 1, 64) + "ms"
	case us < 1_000_000:
		return strconv.FormatFloat(float64(us)/1000, 'f', 0, 64) + "ms"
	default:
		return strconv.FormatFloat(float64(us)/1e6, 'f', 2, 64) + "s"
	}
}

// fmtDuration renders a limit such as 1ms or 500µs.
func fmtDuration(d time.Duration) string {
	if d%time.Microsecond == 0 {
		return fmtCompactUS(float64(d / time.Microsecond))
	}
	return d.String()
}

// fmtCompactUS renders round values without trailing zeros, for axis
// ticks and limits: 20µs, 1ms, 2.5ms, 1s.
func fmtCompactUS(us float64) string {
	switch {
	case us < 1000:
		return strconv.FormatFloat(us, 'g', 4, 64) + "µs"
	case us < 1e6:
		return strconv.FormatFloat(us/1000, 'g', 4, 64) + "ms"
	default:
		return strconv.FormatFloat(us/1e6, 'g', 4, 64) + "s"
	}
}

// fmtInt renders 1234567 as 1,234,567.
func fmtInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// fmtRate renders a rate; fractions only when it has some below 100.
func fmtRate(r float64) string {
	if r < 100 && r != float64(int64(r)) {
		return strconv.FormatFloat(r, 'f', 1, 64)
	}
	return fmtInt(int64(r + 0.5))
}

// fmtPercent renders a ratio as a short percentage: 0.1%, 12%, 0.013%.
func fmtPercent(ratio float64) string {
	p := ratio * 100
	switch {
	case p == 0:
		return "0%"
	case p >= 10:
		return strconv.FormatFloat(p, 'f', 0, 64) + "%"
	case p >= 1:
		return strconv.FormatFloat(p, 'f', 1, 64) + "%"
	default:
		return strconv.FormatFloat(p, 'g', 2, 64) + "%"
	}
}

// fmtSigned renders a relative change as +12.3% or -4.0%.
func fmtSigned(ratio float64) string {
	return fmt.Sprintf("%+.1f%%", ratio*100)
}
