package corpus

import (
	"html"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// This file reproduces the tutorial's Python cleaning byte for byte:
//
//	striptags_re = re.compile(r"(<!--.*?-->|<[^>]*>)")
//	def to_text(s): return html.unescape(striptags_re.sub("", s))
//	def beautify(s):
//	    lines = [x.strip() for x in s.split("\n") if x.strip() != ""]
//	    for i in range(min(100, len(lines))):
//	        if lines[i] == "-->": break
//	    return "\n".join(lines[i + 1 :] if i < 100 else lines)
//
// and, per page, f.write(beautify(to_text(page)) + "\n\n"). Its quirks are kept on purpose: "." does
// not match a newline, so multi-line comments lose only their "<!--" line part; the text of
// <script> blocks and the site footer stay; and when no "-->" line is among the first 100 lines,
// those 100 lines are dropped all the same.

// The tutorial's tag regex. RE2 has no lazy-quantifier difference here: ".*?" up to the first "-->"
// on the same line is what both engines match.
var reTutorialTags = regexp.MustCompile(`<!--.*?-->|<[^>]*>`)

// TutorialText is the tutorial's to_text + beautify applied to one decoded page.
func TutorialText(page string) string {
	return tutorialBeautify(pyHTMLUnescape(reTutorialTags.ReplaceAllString(page, "")))
}

func tutorialBeautify(s string) string {
	var lines []string
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimFunc(l, pyIsSpace); l != "" {
			lines = append(lines, l)
		}
	}
	n := min(100, len(lines))
	i := 0
	for i = 0; i < n; i++ {
		if lines[i] == "-->" {
			break
		}
	}
	// Python leaves i at n-1 when the loop ends without a break, and then keeps lines[n:].
	if i == n {
		i = n - 1
	}
	if i+1 > len(lines) {
		return ""
	}
	return strings.Join(lines[i+1:], "\n")
}

// pyIsSpace is Python's str.isspace for one character: Unicode white space plus the separators
// U+001C..U+001F, which Python counts and Go's unicode.IsSpace does not.
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// reCharRef is Python's html._charref: numeric references with an optional ";", and named ones.
var reCharRef = regexp.MustCompile(`&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)`)

// pyInvalidCharrefs is Python's html._invalid_charrefs: numeric references the HTML5 spec maps to
// other characters (mostly windows-1252's 0x80–0x9F).
var pyInvalidCharrefs = map[int]rune{
	0x00: '\ufffd', 0x0d: '\r', 0x80: '\u20ac', 0x81: '\x81', 0x82: '\u201a', 0x83: '\u0192',
	0x84: '\u201e', 0x85: '\u2026', 0x86: '\u2020', 0x87: '\u2021', 0x88: '\u02c6', 0x89: '\u2030',
	0x8a: '\u0160', 0x8b: '\u2039', 0x8c: '\u0152', 0x8d: '\x8d', 0x8e: '\u017d', 0x8f: '\x8f',
	0x90: '\x90', 0x91: '\u2018', 0x92: '\u2019', 0x93: '\u201c', 0x94: '\u201d', 0x95: '\u2022',
	0x96: '\u2013', 0x97: '\u2014', 0x98: '\u02dc', 0x99: '\u2122', 0x9a: '\u0161', 0x9b: '\u203a',
	0x9c: '\u0153', 0x9d: '\x9d', 0x9e: '\u017e', 0x9f: '\u0178',
}

// pyInvalidCodepoint is Python's html._invalid_codepoints: references to these become "".
func pyInvalidCodepoint(n int) bool {
	switch {
	case n >= 0x1 && n <= 0x8, n == 0xb, n >= 0xe && n <= 0x1f, n >= 0x7f && n <= 0x9f,
		n >= 0xfdd0 && n <= 0xfdef:
		return true
	case n <= 0x10ffff && (n&0xfffe) == 0xfffe:
		return true // 0xfffe, 0xffff, 0x1fffe, ... 0x10ffff
	}
	return false
}

// pyHTMLUnescape is Python's html.unescape. Numeric references follow Python's rules exactly;
// named ones are resolved by Go's html.UnescapeString, which implements the same HTML5 table and
// the same longest-prefix rule for legacy names written without ";".
func pyHTMLUnescape(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	return reCharRef.ReplaceAllStringFunc(s, func(m string) string {
		ref := m[1:]
		if ref[0] != '#' {
			return html.UnescapeString(m)
		}
		digits := strings.TrimSuffix(ref[1:], ";")
		var n int64
		var err error
		if digits[0] == 'x' || digits[0] == 'X' {
			n, err = strconv.ParseInt(digits[1:], 16, 64)
		} else {
			n, err = strconv.ParseInt(digits, 10, 64)
		}
		if err != nil || n > 0x10ffff {
			// Python: too large for a code point (its int has no overflow).
			return "\ufffd"
		}
		num := int(n)
		if r, ok := pyInvalidCharrefs[num]; ok {
			return string(r)
		}
		if (num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff {
			return "\ufffd"
		}
		if pyInvalidCodepoint(num) {
			return ""
		}
		return string(rune(num))
	})
}
