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
	"iter"
	"maps"
	"os"
	"regexp"
	"slices"
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

// parse reads .ipynb JSON.
func parse(ipynb []byte) (File, error) {
	var f File
	if err := json.Unmarshal(ipynb, &f); err != nil {
		return f, fmt.Errorf("not a notebook: %w", err)
	}
	return f, nil
}

// codeCells yields the code cells with their 1-based index among all cells.
func (f File) codeCells() iter.Seq2[int, Cell] {
	return func(yield func(int, Cell) bool) {
		for i, c := range f.Cells {
			if c.CellType == "code" && !yield(i+1, c) {
				return
			}
		}
	}
}

// Check lists the problems of an executed notebook given as .ipynb JSON.
func Check(ipynb []byte) ([]Problem, error) {
	f, err := parse(ipynb)
	if err != nil {
		return nil, err
	}
	var problems []Problem
	for n, c := range f.codeCells() {
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

// reAbsPath finds an absolute path of the machine that executed a notebook (a home, /root, /tmp,
// the work folders of CI machines) in an output: saved outputs show paths relative to the repository
// or its work folder, so that they read the same everywhere.
var reAbsPath = regexp.MustCompile(`(?:^|[\s"'(=\[:,])(/(?:work|root|tmp|home|Users|var/folders|private/var)/[^\s"'<>)\]]*)`)

// reTrainBlock finds the live training block's final state attributes.
var reTrainBlock = regexp.MustCompile(`class="gpt-train" data-step="(\d+)" data-max-steps="(\d+)"`)

// Clean lists what the outputs of a notebook meant to be read (committed, or executed by the
// tutorial's runner) must not hold: stderr stream outputs (progress is shown in live HTML blocks),
// absolute paths of the machine that ran it, and a training cell (one calling .Train) without its one
// live block (class "gpt-train") in its final state, with the loss table and the loss curve.
func Clean(ipynb []byte) ([]Problem, error) {
	f, err := parse(ipynb)
	if err != nil {
		return nil, err
	}
	var problems []Problem
	for n, c := range f.codeCells() {
		var blocks []string
		for _, o := range c.Outputs {
			if o.OutputType == "stream" && o.Name == "stderr" {
				problems = append(problems, Problem{n, "stderr output: " + firstLine(string(o.Text))})
			}
			for _, t := range append([]Text{o.Text}, textData(o)...) {
				if m := reAbsPath.FindStringSubmatch(string(t)); m != nil {
					problems = append(problems, Problem{n, "absolute path of the machine in an output: " + m[1]})
				}
			}
			if h := string(o.Data["text/html"]); strings.Contains(h, `class="gpt-train"`) {
				blocks = append(blocks, h)
			}
		}
		if !strings.Contains(string(c.Source), ".Train(") {
			continue
		}
		if len(blocks) != 1 {
			problems = append(problems, Problem{n, fmt.Sprintf("training cell with %d live training blocks (want one)", len(blocks))})
			continue
		}
		m := reTrainBlock.FindStringSubmatch(blocks[0])
		switch {
		case m == nil || m[1] != m[2]:
			problems = append(problems, Problem{n, "the training block is not in its final state (data-step ≠ data-max-steps)"})
		case !strings.Contains(blocks[0], "<table") || !strings.Contains(blocks[0], "<svg"):
			problems = append(problems, Problem{n, "the training block lacks the loss table or the loss curve"})
		}
	}
	return dedupe(problems), nil
}

// textData returns an output's textual payloads (HTML included, as markup).
func textData(o Output) []Text {
	var out []Text
	for mime, t := range o.Data {
		if strings.HasPrefix(mime, "text/") || mime == "image/svg+xml" {
			out = append(out, t)
		}
	}
	return out
}

// reLiveClass finds the class of one of the tutorial's live blocks.
var reLiveClass = regexp.MustCompile(`class="(gpt-[a-z]+)"`)

// kinds lists each code cell's kinds of output: "stdout", "stderr", "error", a live block by its
// class ("gpt-train", "gpt-generate"), or the MIME types of other display data. Progress blocks
// (gpt-progress) are left out: they show only when there is work to do (a cached step has none).
func kinds(f File) [][]string {
	var out [][]string
	for _, c := range f.codeCells() {
		set := map[string]bool{}
		for _, o := range c.Outputs {
			live := reLiveClass.FindStringSubmatch(string(o.Data["text/html"]))
			switch {
			case o.OutputType == "stream":
				set[o.Name] = true
			case o.OutputType == "error":
				set["error"] = true
			case live != nil:
				set[live[1]] = true
			default:
				var mimes []string
				for m := range o.Data {
					mimes = append(mimes, m)
				}
				slices.Sort(mimes)
				set[strings.Join(mimes, "+")] = true
			}
		}
		delete(set, "gpt-progress")
		out = append(out, slices.Sorted(maps.Keys(set)))
	}
	return out
}

// SameKinds lists the code cells whose kinds of output differ between a notebook as committed and
// as executed again (see kinds): the committed outputs then no longer show what a run shows.
func SameKinds(committed, executed []byte) ([]Problem, error) {
	a, err := parse(committed)
	if err != nil {
		return nil, fmt.Errorf("committed notebook: %w", err)
	}
	b, err := parse(executed)
	if err != nil {
		return nil, fmt.Errorf("executed notebook: %w", err)
	}
	ka, kb := kinds(a), kinds(b)
	if len(ka) != len(kb) {
		return []Problem{{What: fmt.Sprintf("%d code cells committed, %d executed", len(ka), len(kb))}}, nil
	}
	var problems []Problem
	code := 0
	for n := range b.codeCells() {
		if !slices.Equal(ka[code], kb[code]) {
			problems = append(problems, Problem{n, fmt.Sprintf("outputs %v, but the committed notebook shows %v (re-run `gpt notebooks --in-place` and commit)", kb[code], ka[code])})
		}
		code++
	}
	return problems, nil
}
