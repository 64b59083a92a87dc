package corpus

import (
	"errors"
	"path"
	"strings"
	"testing"
)

func TestExtractMirrorPages(t *testing.T) {
	for _, u := range DefaultURLs {
		name := path.Base(u)
		t.Run(name, func(t *testing.T) {
			page := cp1251(t, mirrorPage(t, name))
			ex, err := Extract(page, ExtractOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if ex.Method != "section-markers" || ex.Warning != "" {
				t.Errorf("method %q, warning %q", ex.Method, ex.Warning)
			}
			wantH, wantP, wantN := countFromHTML(page)
			c := ex.Count()
			if c.Headings != wantH || c.Paragraphs != wantP || c.Notes != 0 || c.Apparatus != 0 {
				t.Errorf("kept %+v; the HTML has %d headings, %d paragraphs (and %d notes, dropped)", c, wantH, wantP, wantN)
			}
			if ex.Dropped.Notes != wantN || ex.Dropped.Apparatus != 0 {
				t.Errorf("dropped %+v, want the %d notes", ex.Dropped, wantN)
			}
			if len(ex.Lines()) != wantH+wantP {
				t.Errorf("%d lines, want headings+paragraphs = %d", len(ex.Lines()), wantH+wantP)
			}
			for i, l := range ex.Lines() {
				if l == "" || l != strings.TrimSpace(l) || strings.Contains(l, "  ") || strings.ContainsAny(l, "<&\u00a0\n\t") {
					t.Fatalf("line %d not clean: %q", i, l)
				}
			}
			withNotes, err := Extract(page, ExtractOptions{KeepNotes: true})
			if err != nil {
				t.Fatal(err)
			}
			if n := withNotes.Count().Notes; n != wantN || withNotes.Dropped != (Counts{}) {
				t.Errorf("KeepNotes: %d notes (the HTML has %d), dropped %+v", n, wantN, withNotes.Dropped)
			}
		})
	}
}

func TestExtractWarAndPeaceBeginning(t *testing.T) {
	ex, err := Extract(cp1251(t, mirrorPage(t, "text_0040.shtml")), ExtractOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lines := ex.Lines()
	// The section opens with the title headings and the editors; the novel's first paragraph
	// follows its first chapter heading.
	wantStart := []string{"Лев Николаевич Толстой", "ВОЙНА И МИР", "РЕДАКТОРЫ:", "Г. А. ВОЛКОВ", "М. А. ЦЯВЛОВСКИЙ", "ТОМ ПЕРВЫЙ", "ЧАСТЬ ПЕРВАЯ.", "I."}
	for i, w := range wantStart {
		if lines[i] != w {
			t.Fatalf("line %d = %q, want %q", i, lines[i], w)
		}
	}
	first := lines[len(wantStart)]
	if !strings.HasPrefix(first, "— Eh bien, mon prince. Gênes et Lucques ne sont plus que des apanages") {
		t.Errorf("first paragraph = %q", first)
	}
	// Footnote calls (<sup><u>1</u></sup>) are gone, the text around them joined by one space.
	if !strings.Contains(first, "comme vous dites. Ну, здравствуйте, здравствуйте. Je vois que je vous fais peur, садитесь") {
		t.Errorf("footnote calls not removed cleanly: %q", first)
	}
	if !ex.Paragraphs[0].Heading || ex.Paragraphs[2].Heading || ex.Paragraphs[len(wantStart)].Heading {
		t.Errorf("heading flags wrong: %+v", ex.Paragraphs[:len(wantStart)+1])
	}
}

func TestExtractFallbacks(t *testing.T) {
	page := cp1251(t, mirrorPage(t, "text_1860_dekabristy.shtml"))
	full, err := Extract(page, ExtractOptions{})
	if err != nil {
		t.Fatal(err)
	}

	noMarkers := strings.NewReplacer("<!--Section Begins-->", "", "<!--Section Ends-->", "").Replace(page)
	ex, err := Extract(noMarkers, ExtractOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ex.Method != "work-comment" || ex.Warning == "" {
		t.Errorf("method %q warning %q", ex.Method, ex.Warning)
	}
	if strings.Join(ex.Lines(), "\n") != strings.Join(full.Lines(), "\n") {
		t.Errorf("the work-comment fallback gives other text than the markers: %d vs %d lines", len(ex.Lines()), len(full.Lines()))
	}

	// Neither marker: not a page with a work (an error or challenge page); no guessing.
	bare := strings.ReplaceAll(noMarkers, "Собственно произведение", "")
	if _, err = Extract(bare, ExtractOptions{}); !errors.Is(err, ErrNotWork) {
		t.Errorf("a page without markers: err = %v, want ErrNotWork", err)
	}
}

func TestExtractNoText(t *testing.T) {
	for page, want := range map[string]error{
		"<html><body><!--Section Begins--><dd>&nbsp;&nbsp;<!--Section Ends--><p>footer</p></body></html>":           ErrNoText,
		"<html><body><!--Section Begins--><dd>&nbsp;<u>1</u> Сноска.<!--Section Ends--><p>footer</p></body></html>": ErrNoText,
		"": ErrNotWork,
		"<html><head><title>x</title></head><body><script>var a=1;</script></body></html>": ErrNotWork,
	} {
		if _, err := Extract(page, ExtractOptions{}); !errors.Is(err, want) {
			t.Errorf("Extract(%q) error = %v, want %v", page, err, want)
		}
	}
}

func TestExtractSmall(t *testing.T) {
	page := `<html><body>nav<!--Section Begins--><h4><div><p><b>ГЛАВА I.</b></p></div></h4>
<dd>&nbsp;&nbsp;&nbsp;Мсье<sup>me</sup> Пьер &#233;crit<sup><u>12</u></sup>  и&nbsp;всё.
<dd>&nbsp;&nbsp;&nbsp;<u>важно</u>: не сноска.
<dd>&nbsp;&nbsp;&nbsp;<u>12</u> Пишет.
<!--Section Ends--><script>var _acic=1</script>Связаться с программистом сайта</body></html>`
	ex, err := Extract(page, ExtractOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ГЛАВА I.", "Мсьеme Пьер écrit и всё.", "важно: не сноска."}
	if got := ex.Lines(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines = %q, want %q", got, want)
	}
	ex, _ = Extract(page, ExtractOptions{KeepNotes: true})
	if got := ex.Lines(); len(got) != 4 || got[3] != "12 Пишет." || !ex.Paragraphs[3].Note {
		t.Errorf("with notes: %q", got)
	}
}
