// Package envflag reads boolean environment variables the way huggingface_hub and the notebooks'
// parameters do: "1", "true", "yes" and "on" (any case) are true.
package envflag

import "strings"

// True reports whether v is a true value.
func True(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// Parse reads a boolean variable's value: def when it is empty (or blank), true or false for the
// values True and False accept; ok is false for anything else, which the caller reports.
func Parse(v string, def bool) (value, ok bool) {
	switch {
	case strings.TrimSpace(v) == "":
		return def, true
	case True(v):
		return true, true
	case False(v):
		return false, true
	}
	return false, false
}

// False reports whether v is an explicit false value: "0", "false", "no" or "off" (any case).
func False(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "0", "false", "no", "off":
		return true
	}
	return false
}
