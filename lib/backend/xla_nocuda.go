//go:build cgo && ((linux && arm64) || (darwin && arm64)) && !noxla

package backend

import "fmt"

// installCUDA: go-xla's installer has CUDA plugins for linux/amd64 only.
func installCUDA(variant, dir string) error {
	return fmt.Errorf("go-xla installs PJRT CUDA plugins on linux/amd64 only; install JAX's instead: pip install \"jax[%s]\"", variant)
}
