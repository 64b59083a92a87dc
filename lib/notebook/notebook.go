// Package notebook runs Jupyter notebooks headless with the GoNB kernel and decides whether they
// passed.
//
// Notebooks are executed by `jupyter nbconvert --execute` with errors allowed, so that the executed
// copy is always written and can be read afterwards; [Check] then reads it. A run fails when any
// cell produced an error output, when any output holds a Go panic ("panic: ...", "goroutine N
// [running]") or a non-zero exit status (GoNB prints a runtime panic as a cell output and
// nbconvert still exits 0), when a code cell was not executed, or when nbconvert itself failed.
//
// Parameters reach notebooks through environment variables: the kernel inherits the environment of
// the runner, plus [Options.Env].
package notebook

import (
	"encoding/json"
	"fmt"
	"html"
	"os"
	"regexp"
	"strings"
)

// Problem is one reason a notebook failed.
type Problem struct {
	// Cell is the 1-based index of the cell among all cells (0 when not about a cell).
	Cell int
	// What describes the problem, with the offending text.
	What string
}

func (p Problem) String() string {
	if p.Cell == 0 {
		return p.What
	}
	return fmt.Sprintf("cell %d: %s", p.Cell, p.What)
}

// File is the part of the .ipynb format the checker reads.
type File struct {
	Cells []Cell `json:"cells"`
}

// Cell is a notebook cell.
type Cell struct {
	CellType       string   `json:"cell_type"`
	Source         Text     `json:"source"`
	ExecutionCount *int     `json:"execution_count"`
	Outputs        []Output `json:"outputs"`
}

// Output is a code cell's output.
type Output struct {
	OutputType string          `json:"output_type"`
	Name       string          `json:"name"`
	Text       Text            `json:"text"`
	Data       map[string]Text `json:"data"`
	EName      string          `json:"ename"`
	EValue     string          `json:"evalue"`
}

// Text is a notebook string, stored either as one string or as a list of lines.
type Text string

// UnmarshalJSON accepts a string or a list of strings.
func (t *Text) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*t = Text(s)
		return nil
	}
	var lines []string
	if err := json.Unmarshal(b, &lines); err != nil {
		// Other MIME payloads (e.g. JSON objects) carry no text to check.
		*t = ""
		return nil
	}
	*t = Text(strings.Join(lines, ""))
	return nil
}

var (
	rePanic      = regexp.MustCompile(`(?m)^panic: .*$`)
	reGoroutine  = regexp.MustCompile(`goroutine \d+ \[running\]`)
	reExitStatus = regexp.MustCompile(`(?m)^exit status [1-9]\d*$`)
	reHTMLTags   = regexp.MustCompile(`<[^>]*>`)
	reHTMLStyle  = regexp.MustCompile(`(?s)<style>.*?</style>`)
)

// htmlText returns the visible text of an HTML output (GoNB shows compile and `go get` errors so).
func htmlText(h string) string {
	return html.UnescapeString(reHTMLTags.ReplaceAllString(reHTMLStyle.ReplaceAllString(h, ""), ""))
}

// errorDetail returns the lines of a cell's HTML outputs that explain its error output, skipping
// the line the error itself already says.
func errorDetail(c Cell, evalue string) string {
	var lines []string
	for _, o := range c.Outputs {
		for l := range strings.SplitSeq(htmlText(string(o.Data["text/html"])), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.Contains(l, strings.TrimSpace(evalue)) && len(lines) < 3 {
				lines = append(lines, l)
			}
		}
	}
	return strings.Join(lines, " | ")
}

// CheckFile reads an executed notebook and lists its problems.
func CheckFile(path string) ([]Problem, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading executed notebook: %w", err)
	}
	problems, err := Check(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return problems, nil
}

// Check lists the problems of an executed notebook given as .ipynb JSON.
func Check(ipynb []byte) ([]Problem, error) {
	var f File
	if err := json.Unmarshal(ipynb, &f); err != nil {
		return nil, fmt.Errorf("not a notebook: %w", err)
	}
	var problems []Problem
	for i, c := range f.Cells {
		if c.CellType != "code" {
			continue
		}
		n := i + 1
		if c.ExecutionCount == nil && strings.TrimSpace(string(c.Source)) != "" {
			problems = append(problems, Problem{n, "was not executed"})
			continue
		}
		for _, o := range c.Outputs {
			if o.OutputType == "error" {
				what := fmt.Sprintf("error output: %s: %s", o.EName, firstLine(o.EValue))
				if detail := errorDetail(c, o.EValue); detail != "" {
					what += " — " + detail
				}
				problems = append(problems, Problem{n, what})
				continue
			}
			texts := []string{string(o.Text)}
			for mime, t := range o.Data {
				switch {
				case mime == "text/html":
					texts = append(texts, htmlText(string(t)))
				case strings.HasPrefix(mime, "text/"):
					texts = append(texts, string(t))
				}
			}
			for _, t := range texts {
				if m := rePanic.FindString(t); m != "" {
					problems = append(problems, Problem{n, "Go panic: " + strings.TrimPrefix(m, "panic: ")})
				} else if reGoroutine.MatchString(t) {
					problems = append(problems, Problem{n, "goroutine dump (a crash) in the output"})
				}
				if m := reExitStatus.FindString(t); m != "" {
					problems = append(problems, Problem{n, "program ended with " + m})
				}
			}
		}
	}
	return dedupe(problems), nil
}

func dedupe(ps []Problem) []Problem {
	seen := map[Problem]bool{}
	out := ps[:0]
	for _, p := range ps {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
