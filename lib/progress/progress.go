// Package progress shows progress bars for long work in terminals and in GoNB notebooks (the same
// library, schollz/progressbar, that GoMLX's training-loop progress bar uses). A nil writer turns
// a bar off.
package progress

import (
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Bar is a progress bar; its methods are no-ops on a nil *Bar.
type Bar struct{ bar *progressbar.ProgressBar }

// Bytes starts a bar counting bytes up to total (-1 when unknown), described by desc.
func Bytes(w io.Writer, total int64, desc string) *Bar {
	if w == nil {
		return nil
	}
	return &Bar{progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true), progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionShowCount(),
		progressbar.OptionOnCompletion(func() { _, _ = io.WriteString(w, "\n") }),
		progressbar.OptionSetTheme(progressbar.ThemeASCII))}
}

// Count starts a bar counting items up to total, described by desc.
func Count(w io.Writer, total int64, desc string) *Bar {
	if w == nil {
		return nil
	}
	return &Bar{progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWidth(30), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionOnCompletion(func() { _, _ = io.WriteString(w, "\n") }),
		progressbar.OptionSetTheme(progressbar.ThemeASCII))}
}

// Add advances the bar by n.
func (b *Bar) Add(n int64) {
	if b != nil {
		_ = b.bar.Add64(n)
	}
}

// Describe changes the bar's description.
func (b *Bar) Describe(desc string) {
	if b != nil {
		b.bar.Describe(desc)
	}
}

// Finish completes the bar.
func (b *Bar) Finish() {
	if b != nil {
		_ = b.bar.Finish()
	}
}
