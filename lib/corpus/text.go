package corpus

import (
	"bufio"
	"bytes"
	"fmt"
	"iter"
	"os"
	"unicode/utf8"
)

// TextDataset reads a text file the way datasets.load_dataset("text", data_files=path) does: one
// example per line, in order, line breaks removed; "\r\n" and "\r" count as line breaks (Python's
// universal newlines), empty lines are examples too, and a final line break adds no empty example.
// The file is streamed, never read whole. Invalid UTF-8 is an error naming the line, as HF's strict
// decoding is.
type TextDataset struct {
	Path string
}

// OpenText checks that path is a readable file and returns its dataset.
func OpenText(path string) (*TextDataset, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("text dataset: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("text dataset: %s is a folder", path)
	}
	return &TextDataset{Path: path}, nil
}

// Lines yields the examples with their 0-based index. On a read error it yields ("", err) once and
// stops.
func (d *TextDataset) Lines() iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		f, err := os.Open(d.Path)
		if err != nil {
			yield("", fmt.Errorf("text dataset: %w", err))
			return
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<30)
		sc.Split(scanUniversalLines)
		n := 0
		for sc.Scan() {
			n++
			line := sc.Bytes()
			if !utf8.Valid(line) {
				yield("", fmt.Errorf("text dataset %s: line %d is not valid UTF-8", d.Path, n))
				return
			}
			if !yield(string(line), nil) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			yield("", fmt.Errorf("text dataset %s: %w", d.Path, err))
		}
	}
}

// Count returns the number of examples.
func (d *TextDataset) Count() (int, error) {
	n := 0
	for _, err := range d.Lines() {
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// scanUniversalLines splits on "\n", "\r\n" and "\r".
func scanUniversalLines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if atEOF && len(data) == 0 {
		return 0, nil, nil
	}
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		if data[i] == '\n' {
			return i + 1, data[:i], nil
		}
		// "\r": a "\r\n" pair is one break; at the buffer's end, wait for the next byte.
		if i+1 < len(data) {
			if data[i+1] == '\n' {
				return i + 2, data[:i], nil
			}
			return i + 1, data[:i], nil
		}
		if atEOF {
			return i + 1, data[:i], nil
		}
		return 0, nil, nil
	}
	if atEOF {
		return len(data), data, nil
	}
	return 0, nil, nil
}
