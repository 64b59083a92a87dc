package backend

import (
	"fmt"
	"path/filepath"
)

// installTargets are the plugins [Install] knows: "cuda" picks "cuda12" or "cuda13" by the visible
// GPUs.
var installTargets = []string{"cuda", "cuda12", "cuda13", "cpu"}

// suggestVariant says which go-xla CUDA installer variant ("cuda12", "cuda13") fits the GPUs and
// driver, and why; variant is "" when none can run (why then says what to do).
func suggestVariant(gpus []GPU, driver string) (variant, why string) {
	w, known := weakest(gpus)
	d := driverMajor(driver)
	switch {
	case known && !w.atLeast(cudaNeeds[12].major, cudaNeeds[12].minor):
		return "", fmt.Sprintf("%s, older than any PJRT CUDA plugin supports (CUDA 12 needs %d.%d)",
			hasCapability(w), cudaNeeds[12].major, cudaNeeds[12].minor)
	case d > 0 && d < cudaNeeds[12].driver:
		return "", fmt.Sprintf("NVIDIA driver %s is too old for any PJRT CUDA plugin: update it (CUDA 12 needs %d or newer, CUDA 13 %d)",
			driver, cudaNeeds[12].driver, cudaNeeds[13].driver)
	case known && !w.atLeast(cudaNeeds[13].major, cudaNeeds[13].minor):
		return "cuda12", fmt.Sprintf("%s, which CUDA 13 no longer supports", hasCapability(w))
	case d > 0 && d < cudaNeeds[13].driver:
		return "cuda12", fmt.Sprintf("NVIDIA driver %s is too old for CUDA 13, which needs %d or newer", driver, cudaNeeds[13].driver)
	case known:
		return "cuda13", fmt.Sprintf("%s, which CUDA 13 supports", hasCapability(w))
	default:
		return "cuda13", "the GPU's compute capability is unknown: assuming 7.5 or newer, which CUDA 13 supports"
	}
}

// installAdvice says what to install for the GPUs: "install a CUDA 12 plugin: `gpt backend install
// cuda12` or `pip install "jax[cuda12]"`", or why nothing can run.
func installAdvice(gpus []GPU, driver string) string {
	variant, why := suggestVariant(gpus, driver)
	if variant == "" {
		return why
	}
	return fmt.Sprintf("install a CUDA %s plugin: `gpt backend install %s` or `pip install \"jax[%s]\"`",
		variant[len("cuda"):], variant, variant)
}

// installTarget decides what `gpt backend install <what>` installs: go-xla's installer variant
// ("cuda12", "cuda13" or "cpu"), the go-xla folder to install into ("" for go-xla's default, for
// "cpu") and, for "cuda", why that variant. CUDA 13 goes into go-xla's default ~/.local/lib/go-xla:
// its installer links libcublas into the folder above by the relative path ./go-xla/nvidia/cu13/lib,
// so it only works there. CUDA 12 goes into ~/.local/lib/go-xla-cuda12, because the installer first
// wipes <folder>/nvidia and both variants use the same file name. [Discover] searches both.
func installTarget(what string, sys System) (variant, dir, why string, err error) {
	lib := ""
	if sys.Home != "" {
		lib = filepath.Join(sys.Home, ".local/lib")
	}
	switch what {
	case "cpu":
		return "cpu", "", "", nil
	case "cuda":
		info := detectGPUs(sys)
		if info.summary == "" {
			variant = "cuda13"
			why = fmt.Sprintf("no NVIDIA GPU is visible (%s): installing CUDA 13, which needs compute capability 7.5 or newer; "+
				"for older GPUs (V100, P100) use `gpt backend install cuda12`", info.why)
			break
		}
		variant, why = suggestVariant(info.gpus, info.driver)
		if variant == "" {
			return "", "", "", fmt.Errorf("no PJRT CUDA plugin can run here: %s", why)
		}
	case "cuda12", "cuda13":
		variant = what
	default:
		return "", "", "", fmt.Errorf("unknown plugin %q (want one of %q)", what, installTargets)
	}
	if lib == "" {
		return "", "", "", fmt.Errorf("installing the %s plugin: no home directory to install into", variant)
	}
	dir = filepath.Join(lib, "go-xla")
	if variant == "cuda12" {
		dir = filepath.Join(lib, "go-xla-cuda12")
	}
	return variant, dir, why, nil
}
