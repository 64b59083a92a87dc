//go:build cgo && ((linux && (amd64 || arm64)) || (darwin && arm64)) && !noxla

package backend

import (
	"fmt"

	// The XLA backend, without go-xla's auto-installer: nothing is downloaded unless Install is called.
	_ "github.com/gomlx/go-xla/compute/xla"
	"github.com/gomlx/go-xla/installer"
)

// Install downloads and installs the named PJRT plugin ("cuda" or "cpu") into go-xla's default
// location (~/.local/lib/go-xla), where [Discover] finds it. It is the one function of this package
// that uses the network, and only when called.
func Install(plugin string) error {
	if err := installer.AutoInstallPlugin(plugin, "", true, installer.Normal); err != nil {
		return fmt.Errorf("installing the PJRT %q plugin: %w", plugin, err)
	}
	return nil
}
