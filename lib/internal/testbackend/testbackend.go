// Package testbackend gives tests the compute backend to run on: GoMLX's pure-Go backend by default,
// or, with GPT_TEST_BACKEND=auto, the one lib/backend chooses (XLA CUDA on a GPU machine), so that
// the same parity tests check the GPU path in the device check (.ci/device-check).
package testbackend

import (
	"os"
	"sync"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gonb-gpt/tutorial/lib/backend"
)

// Env names the backend for tests: "" or "go" (the default), "auto" (lib/backend's choice) or a
// GOMLX_BACKEND configuration such as "xla:cuda".
const Env = "GPT_TEST_BACKEND"

var (
	once   sync.Once
	shared compute.Backend
	report string
	err    error
)

// Get returns the backend for this test process (one per process: a GPU client is costly to make).
func Get(t testing.TB) compute.Backend {
	t.Helper()
	once.Do(func() {
		cfg := os.Getenv(Env)
		switch cfg {
		case "", "go":
			shared, err = compute.NewWithConfig("go")
			report = "go"
		case "auto":
			var r *backend.Report
			shared, r, err = backend.New()
			if err == nil {
				report = r.Config
			}
		default:
			shared, err = compute.NewWithConfig(cfg)
			report = cfg
		}
	})
	if err != nil {
		t.Fatalf("%s=%q: %v", Env, os.Getenv(Env), err)
	}
	return shared
}

// IsGo reports whether the tests run on the pure-Go backend (also when "auto" chose it).
func IsGo(t testing.TB) bool {
	Get(t)
	return report == "go"
}
