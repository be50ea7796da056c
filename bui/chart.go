package bui

import (
	"fmt"
	"html/template"
	"math"
	"strings"
)

// A chart is drawn on the server as inline SVG: no script, no external
// image, readable by a screen reader (role img, a title and a description
// that give the figures), colour plus a text summary.

// chartSize is the drawing's viewBox.
const (
	chartW, chartH = 720.0, 200.0
	chartPadL      = 56.0
	chartPadB      = 24.0
)

// series is one chart's data: one value per day, in order.
type series struct {
	Title  string
	Labels []string // the days
	Values []float64
	Max    float64 // the axis top; 0: the largest value
	Format func(float64) string
	Class  string // the bars' CSS class (colour)
}

// svg draws s as a bar chart.
func (s series) svg() template.HTML {
	top := s.Max
	for _, v := range s.Values {
		top = math.Max(top, v)
	}
	if top <= 0 {
		top = 1
	}
	var b strings.Builder
	esc := template.HTMLEscapeString
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-labelledby="%s-t %s-d" xmlns="http://www.w3.org/2000/svg">`, chartW, chartH, s.Class, s.Class)
	fmt.Fprintf(&b, `<title id="%s-t">%s</title><desc id="%s-d">%s</desc>`, s.Class, esc(s.Title), s.Class, esc(s.describe(top)))
	plotW, plotH := chartW-chartPadL-8, chartH-chartPadB-8
	for _, f := range []float64{0, 0.5, 1} {
		y := 8 + plotH*(1-f)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#c9d1d9"/>`, chartPadL, y, chartW-8, y)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="end" fill="#4a5560">%s</text>`, chartPadL-4, y+4, esc(s.Format(top*f)))
	}
	n := len(s.Values)
	if n > 0 {
		bw := plotW / float64(n)
		for i, v := range s.Values {
			h := plotH * v / top
			x := chartPadL + float64(i)*bw
			fmt.Fprintf(&b, `<rect class="%s" x="%.2f" y="%.2f" width="%.2f" height="%.2f"><title>%s: %s</title></rect>`,
				s.Class, x+bw*0.1, 8+plotH-h, math.Max(bw*0.8, 0.5), h, esc(s.Labels[i]), esc(s.Format(v)))
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" fill="#4a5560">%s</text>`, chartPadL, chartH-6, esc(s.Labels[0]))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="end" fill="#4a5560">%s</text>`, chartW-8, chartH-6, esc(s.Labels[n-1]))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every text in it is escaped above
}

// describe says in words what the chart shows.
func (s series) describe(top float64) string {
	if len(s.Values) == 0 {
		return s.Title + ": no data."
	}
	sum, last := 0.0, s.Values[len(s.Values)-1]
	for _, v := range s.Values {
		sum += v
	}
	return fmt.Sprintf("%s over %d days, from %s to %s: highest %s, average %s, last day %s.", s.Title, len(s.Values),
		s.Labels[0], s.Labels[len(s.Labels)-1], s.Format(top), s.Format(sum/float64(len(s.Values))), s.Format(last))
}
