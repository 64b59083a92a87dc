package train

import (
	"fmt"
	"math"
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
	for i := 0; i <= 4; i++ {
		y := minY + (maxY-minY)*float64(i)/4
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%.2f</text>`, left-5, sy(y)+4, y)
		x := minX + (maxX-minX)*float64(i)/4
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%.0f</text>`, sx(x), height-bottom+15, x)
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
