package corpus

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// DefaultMaxLineBytes bounds a line of a [TextDataset] when MaxLineBytes is 0.
const DefaultMaxLineBytes = 16 << 20

// TextDataset reads text files the way datasets.load_dataset("text", data_files=Paths,
// encoding_errors=EncodingErrors) does: one example per line, the files one after the other, in
// order, line breaks removed; "\r\n" and "\r" count as line breaks (Python's universal newlines),
// empty lines are examples too, and a final line break adds no empty example. A file that starts
// with gzip's magic bytes is decompressed (HF infers compression from a ".gz" name; the content is
// the surer sign, and no UTF-8 text starts with byte 0x8b). The files are streamed, never read
// whole, and must not change while they are read: a file that grows, shrinks, is replaced or
// removed meanwhile is an error (the caller's cache would describe content it did not read).
type TextDataset struct {
	Paths []string
	// EncodingErrors is HF's encoding_errors: "strict" (or "", the default) makes invalid UTF-8 an
	// error naming the file and line; "replace" decodes each maximal invalid subsequence as
	// U+FFFD, as Python's UTF-8 decoder does, and counts the lines so changed
	// (TextReader.Replaced).
	EncodingErrors string
	// MaxLineBytes bounds the length of a line (0: DefaultMaxLineBytes). HF has no such bound; here
	// a longer line is an error, since a text corpus whose "line" is tens of megabytes is almost
	// always a wrong file (a JSON dump, a binary), and tokenizing it would need memory in proportion.
	MaxLineBytes int
	// FS holds the files (nil: the operating system's).
	FS fs.FS
}

// OpenText checks that each path is a readable file and returns their dataset.
func OpenText(paths ...string) (*TextDataset, error) {
	d := &TextDataset{Paths: paths}
	if err := d.Check(); err != nil {
		return nil, err
	}
	return d, nil
}

// Check reports the first path that is not a readable file, and a bad EncodingErrors.
func (d *TextDataset) Check() error {
	if len(d.Paths) == 0 {
		return errors.New("text dataset: no files")
	}
	switch d.EncodingErrors {
	case "", "strict", "replace":
	default:
		return fmt.Errorf("text dataset: encoding_errors %q: want strict or replace", d.EncodingErrors)
	}
	for _, p := range d.Paths {
		st, err := d.stat(p)
		if err != nil {
			return fmt.Errorf("text dataset: %w", err)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("text dataset: %s is not a regular file", p)
		}
	}
	return nil
}

func (d *TextDataset) stat(path string) (fs.FileInfo, error) {
	if d.FS == nil {
		return os.Stat(path)
	}
	return fs.Stat(d.FS, path)
}

// OpenFile opens one of the files for reading (from FS when set).
func (d *TextDataset) OpenFile(path string) (fs.File, error) {
	if d.FS == nil {
		return os.Open(path)
	}
	return d.FS.Open(path)
}

// Size is the files' total size on disk (compressed, for gzip files): what TextReader.BytesRead
// counts up to.
func (d *TextDataset) Size() (int64, error) {
	var n int64
	for _, p := range d.Paths {
		st, err := d.stat(p)
		if err != nil {
			return 0, fmt.Errorf("text dataset: %w", err)
		}
		n += st.Size()
	}
	return n, nil
}

// TextReader reads a TextDataset's examples one by one. It is not safe for concurrent use, except
// BytesRead.
type TextReader struct {
	d        *TextDataset
	next     int // the next file to open
	path     string
	start    fs.FileInfo // the open file's state when opened
	f        fs.File
	sc       *bufio.Scanner
	gz       *gzip.Reader
	fileRead atomic.Int64 // bytes read from the open file
	done     atomic.Int64 // bytes read from the files already closed
	line     int          // the open file's lines so far
	replaced int
	err      error
}

// Open starts reading the examples.
func (d *TextDataset) Open() (*TextReader, error) {
	if err := d.Check(); err != nil {
		return nil, err
	}
	return &TextReader{d: d}, nil
}

// BytesRead is the number of bytes read from the files so far (before decompression).
func (r *TextReader) BytesRead() int64 { return r.done.Load() + r.fileRead.Load() }

// Replaced is the number of lines in which invalid UTF-8 was replaced (EncodingErrors "replace").
func (r *TextReader) Replaced() int { return r.replaced }

// Close closes the open file, if any.
func (r *TextReader) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (r *TextReader) openNext() error {
	r.path = r.d.Paths[r.next]
	r.next++
	f, err := r.d.OpenFile(r.path)
	if err != nil {
		return fmt.Errorf("text dataset: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("text dataset: %s: %w", r.path, err)
	}
	r.f, r.start, r.line = f, st, 0
	r.fileRead.Store(0)
	br := bufio.NewReaderSize(countingReader{f, &r.fileRead}, 1<<16)
	var src io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		if r.gz, err = gzip.NewReader(br); err != nil {
			return fmt.Errorf("text dataset: %s: %w", r.path, err)
		}
		src = r.gz
	}
	maxLine := r.maxLine()
	r.sc = bufio.NewScanner(src)
	// The scanner needs room for the line and the byte after it (a "\r" waits for a "\n").
	r.sc.Buffer(make([]byte, min(1<<20, maxLine+2)), maxLine+2)
	r.sc.Split(scanUniversalLines)
	return nil
}

// changed reports whether the open file is no longer the one opened, whole and unchanged.
func (r *TextReader) changed() error {
	now, err := r.d.stat(r.path)
	switch {
	case err != nil:
		return fmt.Errorf("text dataset: %s was removed while it was read (%w)", r.path, err)
	case r.d.FS == nil && !os.SameFile(r.start, now) || now.Size() != r.start.Size() || !now.ModTime().Equal(r.start.ModTime()):
		return fmt.Errorf("text dataset: %s changed while it was read (%d bytes modified %s when opened, now %d bytes modified %s)",
			r.path, r.start.Size(), r.start.ModTime().Format(time.RFC3339Nano), now.Size(), now.ModTime().Format(time.RFC3339Nano))
	}
	return nil
}

// finishFile checks that the file was read whole and unchanged, and closes it.
func (r *TextReader) finishFile() error {
	read := r.fileRead.Load()
	r.done.Add(read)
	r.fileRead.Store(0)
	_ = r.Close()
	if err := r.changed(); err != nil {
		return err
	}
	if read != r.start.Size() {
		return fmt.Errorf("text dataset: %s changed while it was read: %d of its %d bytes could be read", r.path, read, r.start.Size())
	}
	return nil
}

func (r *TextReader) maxLine() int {
	if r.d.MaxLineBytes > 0 {
		return r.d.MaxLineBytes
	}
	return DefaultMaxLineBytes
}

// tooLong is the error for line r.line.
func (r *TextReader) tooLong() error {
	return fmt.Errorf("text dataset %s: line %d is longer than %d bytes (MaxLineBytes, --max-line-bytes): is it a text file with line breaks?", r.path, r.line, r.maxLine())
}

// Next returns the next example, or io.EOF after the last. After an error it returns that error.
func (r *TextReader) Next() (string, error) {
	if r.err != nil {
		return "", r.err
	}
	s, err := r.next1()
	if err != nil && err != io.EOF && r.f != nil {
		// A file that changed meanwhile explains any error (a line cut in the middle of a
		// character, say): report that instead.
		if cerr := r.changed(); cerr != nil {
			err = cerr
		}
	}
	if err != nil {
		_ = r.Close()
		r.err = err
	}
	return s, err
}

func (r *TextReader) next1() (string, error) {
	for {
		if r.f == nil {
			if r.next == len(r.d.Paths) {
				return "", io.EOF
			}
			if err := r.openNext(); err != nil {
				return "", err
			}
		}
		// The scanner hands out the data before a read error as a last line: the error comes first.
		if r.sc.Scan() && r.sc.Err() == nil {
			r.line++
			line := r.sc.Bytes()
			if len(line) > r.maxLine() {
				return "", r.tooLong()
			}
			if utf8.Valid(line) {
				return string(line), nil
			}
			if r.d.EncodingErrors == "replace" {
				r.replaced++
				return replaceInvalid(line), nil
			}
			return "", fmt.Errorf("text dataset %s: line %d is not valid UTF-8 (at byte %d of the line); encoding_errors \"replace\" (--encoding-errors replace) decodes it with U+FFFD instead",
				r.path, r.line, firstInvalid(line))
		}
		err := r.sc.Err()
		if r.gz != nil && err == nil {
			err = r.gz.Close()
			r.gz = nil
		}
		switch {
		case errors.Is(err, bufio.ErrTooLong):
			r.line++
			return "", r.tooLong()
		case err != nil:
			return "", fmt.Errorf("text dataset %s: reading line %d: %w", r.path, r.line+1, err)
		}
		if err := r.finishFile(); err != nil {
			return "", err
		}
	}
}

// Lines yields the examples. On an error it yields ("", err) once and stops.
func (d *TextDataset) Lines() iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		r, err := d.Open()
		if err != nil {
			yield("", err)
			return
		}
		defer r.Close()
		for {
			s, err := r.Next()
			if err == io.EOF {
				return
			}
			if !yield(s, err) || err != nil {
				return
			}
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

// firstInvalid is the offset of the first invalid UTF-8 sequence in b.
func firstInvalid(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// replaceInvalid decodes b as Python's bytes.decode("utf-8", errors="replace") does: each maximal
// subpart of an ill-formed sequence (Unicode's "U+FFFD substitution of maximal subparts", which
// CPython implements) becomes one U+FFFD. Go's own decoders replace each invalid byte instead, so
// "\xe2\x82" would give two replacement characters where Python gives one.
func replaceInvalid(b []byte) string {
	out := make([]byte, 0, len(b)+8)
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || n > 1 {
			out = append(out, b[i:i+n]...)
			i += n
			continue
		}
		// The lead byte's sequence length and the range of its second byte (Unicode Table 3-7).
		c, want, lo, hi := b[i], 0, byte(0x80), byte(0xBF)
		switch {
		case c >= 0xC2 && c <= 0xDF:
			want = 2
		case c == 0xE0:
			want, lo = 3, 0xA0
		case c >= 0xE1 && c <= 0xEF:
			want = 3
			if c == 0xED {
				hi = 0x9F
			}
		case c == 0xF0:
			want, lo = 4, 0x90
		case c >= 0xF1 && c <= 0xF3:
			want = 4
		case c == 0xF4:
			want, hi = 4, 0x8F
		}
		k := 1
		if want > 0 && i+1 < len(b) && b[i+1] >= lo && b[i+1] <= hi {
			k = 2
			for k < want && i+k < len(b) && b[i+k] >= 0x80 && b[i+k] <= 0xBF {
				k++
			}
		}
		out = utf8.AppendRune(out, utf8.RuneError)
		i += k
	}
	return string(out)
}
