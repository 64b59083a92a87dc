package corpus

import (
	"errors"
	"fmt"
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

// Footnote texts start with the note's number as <u>N</u>, <sup>N</sup> or <sup><u>N</u></sup>
// (War and Peace pages have the plain <sup> form); all are notes.
func TestExtractFootnoteForms(t *testing.T) {
	page := `<html><body><!--Section Begins-->
<dd>&nbsp;&nbsp;&nbsp;Текст<sup>1</sup> со сносками<sup><u>2</u></sup> трёх<sup>*</sup> видов.
<dd>&nbsp;&nbsp;&nbsp;<u>1</u> Первая.
<dd>&nbsp;&nbsp;&nbsp;<sup>2</sup> Вторая.
<dd>&nbsp;&nbsp;&nbsp;<sup><u>*</u></sup> Третья.
<dd>&nbsp;&nbsp;&nbsp;<sup>me</sup> не сноска.
<!--Section Ends--></body></html>`
	ex, err := Extract(page, ExtractOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ex.Lines(), "|"); got != "Текст со сносками трёх видов.|me не сноска." {
		t.Errorf("lines %q", got)
	}
	if ex.Dropped.Notes != 3 || ex.Dropped.Bytes != len("1 Первая.2 Вторая.* Третья.") {
		t.Errorf("dropped %+v", ex.Dropped)
	}
	ex, _ = Extract(page, ExtractOptions{KeepNotes: true})
	if got := strings.Join(ex.Lines(), "|"); got != "Текст со сносками трёх видов.|1 Первая.|2 Вторая.|* Третья.|me не сноска." {
		t.Errorf("with notes: %q", got)
	}
}

// The textual-variants apparatus after a work — a "Разночтения"/"Варианты" title followed by
// entries "Стр. N, строка N", or entries alone — is left out to the end of the work; prose that
// merely looks like it is not.
func TestExtractApparatus(t *testing.T) {
	var b strings.Builder
	b.WriteString("<dd>&nbsp;&nbsp;&nbsp;Варианты были разные, и князь выбрал худший.\n")
	b.WriteString("<dd>&nbsp;&nbsp;&nbsp;Варианты\n")
	b.WriteString("<dd>&nbsp;&nbsp;&nbsp;Стр. 5, строка 12 — так было написано на записке.\n")
	for i := range 10 {
		fmt.Fprintf(&b, "<dd>&nbsp;&nbsp;&nbsp;Абзац %d.\n", i)
	}
	b.WriteString("<dd>&nbsp;&nbsp;&nbsp;Конец романа.\n")
	text := b.String()
	const prose = 14
	for _, c := range []struct {
		name, apparatus string
		lines           int
	}{
		{"title heading", `<h4><div align="center"><p><b>РАЗНОЧТЕНИЯ</b></p></div></h4>
<dd>&nbsp;&nbsp;&nbsp;<i>Печатается по первому изданию.</i>
<dd>&nbsp;&nbsp;&nbsp;Стр. 5, строка 12. <i>В рукописи:</i> вернувшийся
<dd>&nbsp;&nbsp;&nbsp;Стр. 7, строки 3—4. <i>Вместо:</i> старик <i>было:</i> старый князь
`, 4},
		{"title paragraph", `<dd>&nbsp;&nbsp;&nbsp;Варианты из рукописей:
<dd>&nbsp;&nbsp;&nbsp;Стр. 9, строка 1 снизу. исправлено
`, 2},
		{"entries only", `<dd>&nbsp;&nbsp;&nbsp;Стр. 5, строка 12. вернувшийся
<dd>&nbsp;&nbsp;&nbsp;Стр. 6,строка 2. старый
<dd>&nbsp;&nbsp;&nbsp;<i>Далее в рукописи зачёркнуто.</i>
<dd>&nbsp;&nbsp;&nbsp;Стр. 8, строке 7. было
`, 4},
		{"none", "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			page := "<html><body><!--Section Begins-->\n" + text + c.apparatus + "<!--Section Ends--></body></html>"
			ex, err := Extract(page, ExtractOptions{})
			if err != nil {
				t.Fatal(err)
			}
			lines := ex.Lines()
			if len(lines) != prose || lines[prose-1] != "Конец романа." || ex.Dropped.Apparatus != c.lines {
				t.Errorf("%d lines, the last %q; dropped %+v", len(lines), lines[len(lines)-1], ex.Dropped)
			}
			all, _ := Extract(page, ExtractOptions{KeepNotes: true})
			if n := all.Count().Apparatus; n != c.lines || len(all.Lines()) != prose+c.lines {
				t.Errorf("KeepNotes: %d apparatus lines of %d", n, len(all.Lines()))
			}
		})
	}
}
