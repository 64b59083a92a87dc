package train

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// LossCurveSVG draws the training loss (and the evaluation loss, if logged) against the step as an
// SVG image, for notebooks (GoNB displays it with gonbui.DisplaySVG) and for output_dir/loss.svg.
func LossCurveSVG(history []LogEntry, width, height int) string {
	type pt struct{ x, y float64 }
	var train, eval []pt
	for _, e := range history {
		if e.Loss != nil {
			train = append(train, pt{float64(e.Step), *e.Loss})
		}
		if e.EvalLoss != nil {
			eval = append(eval, pt{float64(e.Step), *e.EvalLoss})
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`, width, height)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>`)
	all := append(append([]pt(nil), train...), eval...)
	if len(all) == 0 {
		fmt.Fprintf(&b, `<text x="10" y="20">no loss logged yet</text></svg>`)
		return b.String()
	}
	minX, maxX, minY, maxY := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, p := range all {
		minX, maxX = math.Min(minX, p.x), math.Max(maxX, p.x)
		minY, maxY = math.Min(minY, p.y), math.Max(maxY, p.y)
	}
	if maxX == minX {
		maxX = minX + 1
	}
	if maxY == minY {
		maxY = minY + 1
	}
	const left, right, top, bottom = 55, 15, 25, 35
	pw, ph := float64(width-left-right), float64(height-top-bottom)
	sx := func(x float64) float64 { return left + (x-minX)/(maxX-minX)*pw }
	sy := func(y float64) float64 { return top + (maxY-y)/(maxY-minY)*ph }
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`, left, top, left, height-bottom)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`, left, height-bottom, width-right, height-bottom)
	for _, y := range niceTicks(minY, maxY) {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`, left, sy(y), width-right, sy(y))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`, left-5, sy(y)+4, strconv.FormatFloat(y, 'f', -1, 64))
	}
	for _, x := range niceTicks(minX, maxX) {
		if x == math.Trunc(x) {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%.0f</text>`, sx(x), height-bottom+15, x)
		}
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">шаг (step)</text>`, left+int(pw/2), height-5)
	line := func(ps []pt, color, name string, row int) {
		if len(ps) == 0 {
			return
		}
		var d strings.Builder
		for i, p := range ps {
			cmd := "L"
			if i == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&d, "%s%.1f,%.1f ", cmd, sx(p.x), sy(p.y))
		}
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="2"/>`, strings.TrimSpace(d.String()), color)
		for _, p := range ps {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"/>`, sx(p.x), sy(p.y), color)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s">%s</text>`, left+10, 15+row*14, color, name)
	}
	line(train, "#1f77b4", "training loss", 0)
	line(eval, "#d62728", "eval loss", 1)
	b.WriteString(`</svg>`)
	return b.String()
}

// niceTicks returns three to seven round values (1, 2 or 5 times a power of ten apart) in [lo, hi].
func niceTicks(lo, hi float64) []float64 {
	raw := (hi - lo) / 4
	if !(raw > 0) || math.IsInf(raw, 0) {
		return []float64{lo}
	}
	// The round step nearest to a quarter of the range.
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	step := p
	for _, m := range []float64{2, 5, 10} {
		if math.Abs(math.Log(m*p/raw)) < math.Abs(math.Log(step/raw)) {
			step = m * p
		}
	}
	var ticks []float64
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		// Rounded to the step's precision, so that 0.1+0.2 prints as 0.3.
		digits := max(0, -int(math.Floor(math.Log10(step))))
		r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', digits, 64), 64)
		ticks = append(ticks, r)
	}
	return ticks
}
