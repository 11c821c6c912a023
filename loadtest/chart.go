package loadtest

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// The HTML report's charts are inline SVG drawn here, so the page needs no
// scripts, fonts or network access to render.

// chartPoint is one data point; a NaN y breaks the line (no data).
type chartPoint struct{ x, y float64 }

type chartSeries struct {
	name    string
	color   string
	width   float64
	dash    bool
	markers bool
	pts     []chartPoint
}

type chartTick struct {
	v     float64
	label string
	major bool
}

type chartAxis struct {
	min, max float64
	log      bool
	ticks    []chartTick
	title    string
}

// chartMark is a labelled vertical (x) or horizontal (y) guide line.
type chartMark struct {
	at    float64
	label string
	color string
}

type chart struct {
	id     string
	w, h   int
	x, y   chartAxis
	series []chartSeries
	vmarks []chartMark
	hmarks []chartMark
}

// Plot margins inside the SVG.
const (
	padLeft   = 72
	padRight  = 44
	padTop    = 34
	padBottom = 46
)

func (a chartAxis) scale(v float64, lo, hi float64) float64 {
	if a.log {
		v, a.min, a.max = math.Log10(math.Max(v, 1e-9)), math.Log10(a.min), math.Log10(a.max)
	}
	if a.max == a.min {
		return lo
	}
	return lo + (v-a.min)/(a.max-a.min)*(hi-lo)
}

// legendItem is one placed legend entry.
type legendItem struct {
	s    *chartSeries
	x, y float64
}

// layoutLegend places the named series left to right, wrapping into as
// many rows as needed, and returns the height the rows take.
func (c *chart) layoutLegend(x0, x1 float64) ([]legendItem, float64) {
	var items []legendItem
	x, y := x0, 16.0
	for i := range c.series {
		s := &c.series[i]
		if s.name == "" {
			continue
		}
		w := 34 + 7.2*float64(len([]rune(s.name)))
		if x > x0 && x+w > x1 {
			x, y = x0, y+20
		}
		items = append(items, legendItem{s, x, y})
		x += w
	}
	return items, y - 16
}

func (c *chart) render(b *strings.Builder) {
	x0, x1 := float64(padLeft), float64(c.w-padRight)
	legend, extra := c.layoutLegend(x0, x1)
	h := c.h + int(extra)
	y0, y1 := float64(h-padBottom), float64(padTop)+extra
	px := func(v float64) float64 { return c.x.scale(v, x0, x1) }
	py := func(v float64) float64 { return c.y.scale(v, y0, y1) }
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

	fmt.Fprintf(b, `<svg id="%s" class="chart" viewBox="0 0 %d %d" role="img" xmlns="http://www.w3.org/2000/svg">`, c.id, c.w, h)
	fmt.Fprintf(b, `<rect x="%s" y="%s" width="%s" height="%s" fill="#fff" stroke="#d0d4da"/>`, f(x0), f(y1), f(x1-x0), f(y0-y1))
	// Grid and tick labels.
	for _, t := range c.y.ticks {
		if t.v < c.y.min || t.v > c.y.max {
			continue
		}
		y := py(t.v)
		stroke := "#eceef1"
		if t.major {
			stroke = "#dde1e6"
		}
		fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s"/>`, f(x0), f(y), f(x1), f(y), stroke)
		if t.label != "" {
			fmt.Fprintf(b, `<text x="%s" y="%s" class="tick" text-anchor="end">%s</text>`, f(x0-6), f(y+4), html.EscapeString(t.label))
		}
	}
	for _, t := range c.x.ticks {
		if t.v < c.x.min || t.v > c.x.max {
			continue
		}
		x := px(t.v)
		fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#eceef1"/>`, f(x), f(y0), f(x), f(y1))
		if t.label != "" {
			fmt.Fprintf(b, `<text x="%s" y="%s" class="tick" text-anchor="middle">%s</text>`, f(x), f(y0+16), html.EscapeString(t.label))
		}
	}
	if c.x.title != "" {
		fmt.Fprintf(b, `<text x="%s" y="%d" class="axis" text-anchor="middle">%s</text>`, f((x0+x1)/2), h-8, html.EscapeString(c.x.title))
	}
	if c.y.title != "" {
		fmt.Fprintf(b, `<text x="14" y="%s" class="axis" text-anchor="middle" transform="rotate(-90 14 %s)">%s</text>`,
			f((y0+y1)/2), f((y0+y1)/2), html.EscapeString(c.y.title))
	}
	for _, m := range c.vmarks {
		if m.at < c.x.min || m.at > c.x.max {
			continue
		}
		x := px(m.at)
		fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-dasharray="3 3"/>`, f(x), f(y0), f(x), f(y1), m.color)
		if m.label != "" {
			fmt.Fprintf(b, `<text x="%s" y="%s" class="mark">%s</text>`, f(x+4), f(y1+12), html.EscapeString(m.label))
		}
	}
	for _, m := range c.hmarks {
		if m.at < c.y.min || m.at > c.y.max {
			continue
		}
		y := py(m.at)
		fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="1.5" stroke-dasharray="6 4"/>`, f(x0), f(y), f(x1), f(y), m.color)
		if m.label != "" {
			fmt.Fprintf(b, `<text x="%s" y="%s" class="mark" text-anchor="end" fill="%s">%s</text>`, f(x1-4), f(y-4), m.color, html.EscapeString(m.label))
		}
	}
	// Series, clipped to the plot area.
	fmt.Fprintf(b, `<clipPath id="%s-clip"><rect x="%s" y="%s" width="%s" height="%s"/></clipPath><g clip-path="url(#%s-clip)">`,
		c.id, f(x0), f(y1-4), f(x1-x0), f(y0-y1+8), c.id)
	for _, s := range c.series {
		dash := ""
		if s.dash {
			dash = ` stroke-dasharray="7 4"`
		}
		var path strings.Builder
		pen := false
		for _, p := range s.pts {
			if math.IsNaN(p.y) || math.IsNaN(p.x) {
				pen = false
				continue
			}
			cmd := "L"
			if !pen {
				cmd = "M"
			}
			fmt.Fprintf(&path, "%s%s %s ", cmd, f(px(p.x)), f(py(p.y)))
			pen = true
		}
		if path.Len() > 0 {
			fmt.Fprintf(b, `<path d="%s" fill="none" stroke="%s" stroke-width="%s" stroke-linejoin="round"%s/>`,
				strings.TrimSpace(path.String()), s.color, f(s.width), dash)
		}
		if s.markers {
			for _, p := range s.pts {
				if !math.IsNaN(p.y) {
					fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="3.2" fill="%s"/>`, f(px(p.x)), f(py(p.y)), s.color)
				}
			}
		}
	}
	b.WriteString(`</g>`)
	// Legend across the top.
	for _, it := range legend {
		dash := ""
		if it.s.dash {
			dash = ` stroke-dasharray="5 3"`
		}
		fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="3"%s/>`, f(it.x), f(it.y), f(it.x+18), f(it.y), it.s.color, dash)
		fmt.Fprintf(b, `<text x="%s" y="%s" class="legend">%s</text>`, f(it.x+23), f(it.y+4), html.EscapeString(it.s.name))
	}
	b.WriteString(`</svg>`)
}

// logAxis spans whole decades around [lo, hi] (µs), ticked at 1, 2 and 5.
func logAxis(lo, hi float64, title string, label func(float64) string) chartAxis {
	lo = math.Max(lo, 1)
	hi = math.Max(hi, lo*10)
	a := chartAxis{log: true, title: title,
		min: math.Pow(10, math.Floor(math.Log10(lo))),
		max: math.Pow(10, math.Ceil(math.Log10(hi)))}
	decades := math.Log10(a.max / a.min)
	for d := a.min; d <= a.max*1.0001; d *= 10 {
		a.ticks = append(a.ticks, chartTick{v: d, label: label(d), major: true})
		for _, m := range []float64{2, 5} {
			v := d * m
			if v >= a.max {
				break
			}
			l := ""
			if decades <= 3 {
				l = label(v)
			}
			a.ticks = append(a.ticks, chartTick{v: v, label: l})
		}
	}
	return a
}

// linearAxis spans [0, hi] with about five round ticks.
func linearAxis(hi float64, title string, label func(float64) string) chartAxis {
	if hi <= 0 {
		hi = 1
	}
	step := niceStep(hi / 5)
	a := chartAxis{min: 0, max: math.Ceil(hi/step) * step, title: title}
	for v := 0.0; v <= a.max+step/2; v += step {
		a.ticks = append(a.ticks, chartTick{v: v, label: label(v), major: true})
	}
	return a
}

// niceStep rounds a raw step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// ninesAxis is the percentile spectrum's x axis: x = -log10(1 - q), so
// 90%, 99%, 99.9% … are evenly spaced, as in HdrHistogram plots.
func ninesAxis(maxNines float64) chartAxis {
	a := chartAxis{min: 0, max: maxNines, title: "percentile"}
	for n := 0.0; n <= maxNines+1e-9; n++ {
		a.ticks = append(a.ticks, chartTick{v: n, label: ninesLabel(n), major: true})
	}
	return a
}

func ninesLabel(n float64) string {
	if n == 0 {
		return "0%"
	}
	q := 100 - 100*math.Pow(10, -n)
	return strconv.FormatFloat(q, 'f', -1, 64) + "%"
}

// nines maps a percentile (0–100) to the spectrum's x; 100 maps to cap.
func nines(p, cap float64) float64 {
	if p >= 100 {
		return cap
	}
	return math.Min(-math.Log10(1-p/100), cap)
}

// palette gives distinguishable colors for up to ten series, then repeats.
func palette(i int) string {
	colors := [...]string{"#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d"}
	return colors[i%len(colors)]
}
