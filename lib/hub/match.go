package hub

import (
	"regexp"
	"strings"
)

// Match reports whether a repository path matches a pattern as `hf download --include` (and
// huggingface_hub's filter_repo_objects) decides: Python's fnmatch, where `*` matches any run of
// characters including `/`, `?` one character, `[seq]` / `[!seq]` a set, the whole path must
// match, case-sensitively; a pattern ending in `/` means everything under that folder.
func Match(pattern, name string) bool {
	return fnmatchRegexp(pattern).MatchString(name)
}

// Filter keeps the paths that match any of the patterns, in their order.
func Filter(paths, patterns []string) []string {
	res := make([]*regexp.Regexp, len(patterns))
	for i, p := range patterns {
		res[i] = fnmatchRegexp(p)
	}
	var out []string
	for _, p := range paths {
		for _, re := range res {
			if re.MatchString(p) {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// fnmatchRegexp translates a pattern as Python's fnmatch.translate does.
func fnmatchRegexp(pattern string) *regexp.Regexp {
	if strings.HasSuffix(pattern, "/") {
		pattern += "*"
	}
	var b strings.Builder
	b.WriteString(`^(?s:`)
	rs := []rune(pattern)
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; r {
		case '*':
			for i+1 < len(rs) && rs[i+1] == '*' {
				i++
			}
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		case '[':
			j := i + 1
			if j < len(rs) && rs[j] == '!' {
				j++
			}
			if j < len(rs) && rs[j] == ']' {
				j++
			}
			for j < len(rs) && rs[j] != ']' {
				j++
			}
			if j >= len(rs) { // no closing bracket: a literal '['
				b.WriteString(`\[`)
				continue
			}
			set := rs[i+1 : j]
			i = j
			var cls strings.Builder
			cls.WriteString("[")
			if len(set) > 0 && set[0] == '!' {
				cls.WriteString("^")
				set = set[1:]
			}
			for _, c := range set {
				if c == '\\' || c == '[' || c == ']' || c == '^' {
					cls.WriteRune('\\')
				}
				cls.WriteRune(c)
			}
			cls.WriteString("]")
			b.WriteString(cls.String())
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`)$`)
	re, err := regexp.Compile(b.String())
	if err != nil { // cannot happen for the classes built above; match literally then
		return regexp.MustCompile(`^` + regexp.QuoteMeta(pattern) + `$`)
	}
	return re
}
