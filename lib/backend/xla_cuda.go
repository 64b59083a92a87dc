//go:build cgo && linux && amd64 && !noxla

package backend

import "github.com/gomlx/go-xla/installer"

// installCUDA installs go-xla's PJRT CUDA plugin variant ("cuda12", "cuda13") and its NVIDIA
// libraries from pypi.org into dir/nvidia.
func installCUDA(variant, dir string) error {
	return installer.CudaInstall(variant, "latest", dir, true, installer.Normal)
}
