package backend

import (
	"strings"
	"testing"
)

// What `gpt backend install` installs where; installing itself needs pypi.org and is not tested.
func TestInstallTarget(t *testing.T) {
	const (
		dir13 = "/home/u/.local/lib/go-xla"
		dir12 = "/home/u/.local/lib/go-xla-cuda12"
	)
	for _, tc := range []struct {
		what    string
		smi     func(args ...string) ([]byte, error)
		env     map[string]string
		variant string
		dir     string
		why     string // substring; for an error, of the error
	}{
		{what: "cuda12", smi: fakeSMI(smiH100, false), variant: "cuda12", dir: dir12},
		{what: "cuda13", smi: fakeSMI(smiV100, false), variant: "cuda13", dir: dir13},
		{what: "cpu", variant: "cpu"},
		{what: "cuda", smi: fakeSMI(smiV100, false), variant: "cuda12", dir: dir12,
			why: "Tesla V100-SXM2-32GB has compute capability 7.0, which CUDA 13 no longer supports"},
		{what: "cuda", smi: fakeSMI(smiV100x2, false), variant: "cuda12", dir: dir12},
		{what: "cuda", smi: fakeSMI(smiV100A100, false), variant: "cuda12", dir: dir12},
		{what: "cuda", smi: fakeSMI(smiV100A100, false), env: visible("1"), variant: "cuda13", dir: dir13,
			why: "NVIDIA A100-SXM4-80GB has compute capability 8.0, which CUDA 13 supports"},
		{what: "cuda", smi: fakeSMI(smiT4, false), variant: "cuda13", dir: dir13},
		{what: "cuda", smi: fakeSMI(smiH100, false), variant: "cuda13", dir: dir13},
		{what: "cuda", smi: fakeSMI(strings.ReplaceAll(smiH100, "580.95.05", "550.54.15"), false), variant: "cuda12", dir: dir12,
			why: "NVIDIA driver 550.54.15 is too old for CUDA 13"},
		{what: "cuda", variant: "cuda13", dir: dir13, why: "no NVIDIA GPU is visible"},
		{what: "cuda", smi: fakeSMI(smiOldV100, true), why: "NVIDIA driver 470.82.01 is too old for any PJRT CUDA plugin"},
		{what: "cuda", smi: fakeSMI("0, GPU-1, Tesla K80, 3.7, 11441, 470.82.01\n", false), why: "older than any PJRT CUDA plugin supports"},
		{what: "tpu", why: `unknown plugin "tpu"`},
	} {
		sys := fakeSystem(t, tc.env, nil)
		sys.NvidiaSMI = tc.smi
		variant, dir, why, err := installTarget(tc.what, sys)
		if err != nil {
			why = err.Error()
		}
		if variant != tc.variant || dir != tc.dir || !strings.Contains(why, tc.why) {
			t.Errorf("install %s: %q into %q (%s, err %v), want %q into %q (%s)", tc.what, variant, dir, why, err, tc.variant, tc.dir, tc.why)
		}
	}
}
