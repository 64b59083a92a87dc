package main

import (
	"bytes"
	"strings"
	"testing"
)

// `gpt backend install` takes cuda, cuda12, cuda13 or cpu; anything else is a usage error that
// lists them (installing itself needs pypi.org and is not tested).
func TestBackendInstallUsage(t *testing.T) {
	for _, args := range [][]string{{"backend", "install", "cuda11"}, {"backend", "install"}, {"backend", "install", "cuda12", "cuda13"}} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "install cuda|cuda12|cuda13|cpu") {
			t.Errorf("gpt %q: exit %d, stderr %q", args, code, errOut.String())
		}
	}
}

// `gpt backend` prints the report, with the default precision, and checks the backend.
func TestBackendReport(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "go")
	var out, errOut bytes.Buffer
	if code := run([]string{"backend"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	for _, want := range []string{"backend: go (", "why:     GOMLX_BACKEND is set", "precision: fp32 by default (the pure-Go backend runs on the CPU",
		"device 0:", "check:   x²+1 over [1 2 3] = [2 5 10]"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
