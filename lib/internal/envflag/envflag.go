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

// False reports whether v is an explicit false value: "0", "false", "no" or "off" (any case).
func False(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "0", "false", "no", "off":
		return true
	}
	return false
}
