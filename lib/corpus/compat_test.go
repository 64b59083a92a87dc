package corpus

import (
	"bytes"
	"os"
	"path"
	"testing"

	"github.com/gonb-gpt/tutorial/lib/internal/sharedtest"
)

// The fixture was made by the tutorial's own Python (to_text + beautify, "\n\n" after each page)
// on the mirror decoded as windows-1251.
func TestTutorialCompatMatchesFixture(t *testing.T) {
	want, err := os.ReadFile(sharedtest.Path(t, "fixtures", "tutorial-dataset.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	for _, u := range DefaultURLs {
		d, err := Decode(mirrorPage(t, path.Base(u)), "")
		if err != nil {
			t.Fatal(err)
		}
		got.WriteString(TutorialText(d.Text))
		got.WriteString("\n\n")
	}
	if !bytes.Equal(got.Bytes(), want) {
		i := 0
		for i < min(got.Len(), len(want)) && got.Bytes()[i] == want[i] {
			i++
		}
		t.Fatalf("differs from the fixture at byte %d (len %d vs %d): got %q, want %q", i, got.Len(), len(want),
			got.Bytes()[i:min(i+80, got.Len())], want[i:min(i+80, len(want))])
	}
}

func TestTutorialBeautifyQuirks(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a\n-->\nb\n  c  \n\n", "b\nc"},
		{"no marker\nat all", ""},              // fewer than 100 lines, no "-->": all dropped
		{"\u00a0x\u00a0\n-->\n\x1cy\x1f", "y"}, // Python strips U+00A0 and U+001C..U+001F
		{"", ""},
	} {
		if got := tutorialBeautify(tc.in); got != tc.want {
			t.Errorf("beautify(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	var long bytes.Buffer
	for i := range 105 {
		long.WriteString(string(rune('a'+i%26)) + "\n")
	}
	// No "-->" among the first 100 lines: the first 100 are dropped, the rest kept.
	if got := tutorialBeautify(long.String()); got != "w\nx\ny\nz\na" {
		t.Errorf("beautify(105 lines) = %q", got)
	}
	// A comment spanning lines is not matched by "<!--.*?-->" (no DOTALL): "<[^>]*>" takes it,
	// up to its first ">", as in Python.
	if got := reTutorialTags.ReplaceAllString("x<!--a\nb-->y<b>z</b><!-- c -->w<!-- d > e -->v", ""); got != "xyzwv" {
		t.Errorf("tag regex: %q", got)
	}
}

// Expected values are what Python's html.unescape returns.
func TestPyHTMLUnescape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"&#103&#97&#98", "gab"},
		{"G&ecirc;nes &amp; pr&#233;viens", "Gênes & préviens"},
		{"&nbsp,", "\u00a0,"},
		{"&amp", "&"},
		{"&ampx", "&x"},
		{"&#x41;&#X42", "AB"},
		{"&#128;&#150;", "€–"},
		{"&#0;", "\ufffd"},
		{"&#1;x&#11;", "x"},
		{"&#xD800;", "\ufffd"},
		{"&#1114112;", "\ufffd"},
		{"&#99999999999999999999;", "\ufffd"},
		{"&#xFFFE;", ""},
		{"&nosuchentity; & x", "&nosuchentity; & x"},
		{"&lt;b&gt;", "<b>"},
		{"&notit;", "¬it;"},
	} {
		if got := pyHTMLUnescape(tc.in); got != tc.want {
			t.Errorf("unescape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
