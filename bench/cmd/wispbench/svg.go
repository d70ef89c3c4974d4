package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

const (
	colorWisp  = "#2563eb"
	colorNATS  = "#ea8a0c"
	colorRedis = "#dc2626"
	svgWidth   = 960
	labelW     = 300 // left column of group labels
	barH       = 14
	barGap     = 3
	groupGap   = 12
)

type bar struct {
	value float64 // NaN: not measured
	color string
	text  string
}

type barGroup struct {
	label string
	bars  []bar
}

// chart draws horizontal bars on a shared log axis at vertical offset y
// and returns the SVG fragment and the height used.
func chart(title, unit string, groups []barGroup, y int) (string, int) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, g := range groups {
		for _, b := range g.bars {
			if !math.IsNaN(b.value) && b.value > 0 {
				lo, hi = math.Min(lo, b.value), math.Max(hi, b.value)
			}
		}
	}
	if math.IsInf(lo, 0) {
		return "", 0
	}
	// The lowest bar keeps some length: the axis starts below it.
	d0, d1 := math.Floor(math.Log10(lo)-0.3), math.Ceil(math.Log10(hi)+0.15)
	if d1 <= d0 {
		d1 = d0 + 1
	}
	x0, x1 := float64(labelW+10), float64(svgWidth-90)
	xOf := func(v float64) float64 { return x0 + (math.Log10(v)-d0)/(d1-d0)*(x1-x0) }

	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p(`<text x="10" y="%d" class="h">%s</text>`+"\n", y+18, html.EscapeString(title))
	top := y + 32
	h := 0
	for _, g := range groups {
		h += len(g.bars)*(barH+barGap) + groupGap
	}
	// Decade grid lines with labels.
	for d := d0; d <= d1; d++ {
		x := xOf(math.Pow(10, d))
		p(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" class="grid"/>`+"\n", x, top-4, x, top+h)
		p(`<text x="%.1f" y="%d" class="axis" text-anchor="middle">%s</text>`+"\n", x, top+h+14, axisLabel(math.Pow(10, d), unit))
	}
	yy := top
	for _, g := range groups {
		gh := len(g.bars)*(barH+barGap) - barGap
		p(`<text x="%d" y="%d" class="l" text-anchor="end">%s</text>`+"\n", labelW, yy+gh/2+4, html.EscapeString(g.label))
		for _, br := range g.bars {
			if math.IsNaN(br.value) || br.value <= 0 {
				p(`<text x="%.1f" y="%d" class="v">not measured</text>`+"\n", x0+4, yy+barH-3)
			} else {
				w := math.Max(1, xOf(br.value)-x0)
				p(`<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", x0, yy, w, barH, br.color)
				p(`<text x="%.1f" y="%d" class="v">%s</text>`+"\n", x0+w+4, yy+barH-3, html.EscapeString(br.text))
			}
			yy += barH + barGap
		}
		yy += groupGap
	}
	return b.String(), top - y + h + 24
}

func axisLabel(v float64, unit string) string {
	if unit == "µs" {
		return micros(v)
	}
	return human(v)
}

// svg is the chart of docs/benchmarks.svg: throughput bars and latency
// percentiles, wisp and NATS side by side, both on log axes.
func (r *report) svg() string {
	pair := func(label string, w, n float64, format func(float64) string) barGroup {
		return barGroup{label: label, bars: []bar{
			{value: w, color: colorWisp, text: "wisp " + format(w)},
			{value: n, color: colorNATS, text: "NATS " + format(n)},
		}}
	}
	rate := func(v float64) string { return human(v) + "/s" }
	var tp []barGroup
	for _, x := range r.rows {
		g := pair(x.title, medRate(x.wisp), medRate(x.peer), rate)
		if len(x.redis) > 0 {
			v := medRate(x.redis)
			g.bars = append(g.bars, bar{value: v, color: colorRedis, text: "Redis " + rate(v)})
		}
		tp = append(tp, g)
	}
	for _, f := range r.frontends {
		tp = append(tp, barGroup{label: "wisp via " + f.title, bars: []bar{
			{value: medRate(f.runs), color: colorWisp, text: "wisp " + rate(medRate(f.runs))}}})
	}
	for _, f := range r.functions {
		if len(f.drain) > 0 {
			tp = append(tp, barGroup{label: "wisp backlog out, " + f.title, bars: []bar{
				{value: medRate(f.drain), color: colorWisp, text: "wisp " + rate(medRate(f.drain))}}})
		}
	}
	var lat []barGroup
	for _, x := range r.rows {
		if !x.sync {
			continue
		}
		for _, q := range []float64{50, 99} {
			lat = append(lat, pair(fmt.Sprintf("%s: p%g", x.title, q), medPct(x.wisp, q), medPct(x.peer, q), micros))
		}
	}
	for _, e := range r.e2e {
		for _, q := range []float64{50, 90, 99, 99.9} {
			lat = append(lat, pair(fmt.Sprintf("end-to-end at %s/s: p%g", human(float64(e.rate)), q),
				medPct(e.wisp, q), medPct(e.peer, q), micros))
		}
	}
	for _, f := range r.functions {
		for _, q := range []float64{50, 99} {
			if v := medPct(f.e2e, q); !math.IsNaN(v) {
				lat = append(lat, barGroup{label: fmt.Sprintf("wisp %s at %s/s: p%g", f.title, human(fnRate), q), bars: []bar{
					{value: v, color: colorWisp, text: "wisp " + micros(v)}}})
			}
		}
	}

	var body strings.Builder
	y := 40
	s, h := chart("Throughput, records/s (log scale; higher is better)", "", tp, y)
	body.WriteString(s)
	y += h + 10
	s, h = chart("Latency, µs (log scale; lower is better)", "µs", lat, y)
	body.WriteString(s)
	y += h + 10

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif">`+"\n",
		svgWidth, y, svgWidth, y)
	b.WriteString(`<style>.h{font-size:15px;font-weight:bold}.l{font-size:12px}.v{font-size:11px}.axis{font-size:10px;fill:#555}.grid{stroke:#ddd}.t{font-size:12px;fill:#333}</style>` + "\n")
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	peers := "NATS JetStream"
	if r.redisVersion != "" {
		peers += " and Redis Streams"
	}
	fmt.Fprintf(&b, `<text x="10" y="20" class="h">wisp vs %s, %s, %d cores, %s suite (median of %d × %s)</text>`+"\n",
		peers, html.EscapeString(r.started.UTC().Format("2006-01-02")), r.m.cpus, r.o.mode, r.o.reps, r.o.dur)
	lx := svgWidth - 200
	if r.redisVersion != "" {
		lx -= 110
	}
	fmt.Fprintf(&b, `<rect x="%d" y="28" width="12" height="10" fill="%s"/><text x="%d" y="37" class="t">wisp</text>`+"\n", lx, colorWisp, lx+16)
	fmt.Fprintf(&b, `<rect x="%d" y="28" width="12" height="10" fill="%s"/><text x="%d" y="37" class="t">NATS JetStream</text>`+"\n", lx+60, colorNATS, lx+76)
	if r.redisVersion != "" {
		fmt.Fprintf(&b, `<rect x="%d" y="28" width="12" height="10" fill="%s"/><text x="%d" y="37" class="t">Redis Streams</text>`+"\n", lx+170, colorRedis, lx+186)
	}
	b.WriteString(body.String())
	b.WriteString("</svg>\n")
	return b.String()
}
