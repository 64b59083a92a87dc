// Package backend chooses the GoMLX compute backend for the tutorial: the environment variable
// GOMLX_BACKEND when set; otherwise XLA with a PJRT CUDA plugin when an NVIDIA GPU and a plugin are
// found; otherwise GoMLX's pure-Go backend, which runs anywhere.
//
// Plugins are looked for in go-xla's own install locations and in pip-installed JAX CUDA plugins
// (site-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so). A JAX plugin needs the NVIDIA libraries
// that pip installs beside it (site-packages/nvidia/*/lib) on LD_LIBRARY_PATH before it is loaded;
// since the dynamic loader reads LD_LIBRARY_PATH only when a process starts, [New] re-executes the
// process once with those directories added.
//
// Nothing is ever downloaded: this package does not import go-xla's auto-installer. Installing a
// plugin is an explicit step (see [Install]).
package backend

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// EnvBackend is the environment variable that, when set, names the backend configuration outright
// (GoMLX's own convention, e.g. "go", "xla:cuda" or "xla:/abs/path/plugin.so").
const EnvBackend = "GOMLX_BACKEND"

// EnvPluginPath is go-xla's list of directories (":"-separated) searched for PJRT plugins.
const EnvPluginPath = "PJRT_PLUGIN_LIBRARY_PATH"

// EnvSitePackages lists extra Python site-packages directories (":"-separated) to search for a
// pip-installed JAX CUDA plugin, before the ones Python itself reports.
const EnvSitePackages = "GPT_SITE_PACKAGES"

// envReexec marks a process that was re-executed with LD_LIBRARY_PATH set, so it is not done twice.
const envReexec = "GPT_BACKEND_REEXEC"

// Names of the backends this package chooses between.
const (
	GoBackend  = "go"
	XLABackend = "xla"
)

// Plugin is a PJRT CUDA plugin found on disk.
type Plugin struct {
	// Path is the absolute path of the plugin's shared library.
	Path string
	// Source says where it was found: "PJRT_PLUGIN_LIBRARY_PATH", "go-xla" or "jax".
	Source string
	// LibraryDirs are directories that must be on LD_LIBRARY_PATH before the plugin is loaded
	// (the NVIDIA libraries pip installs beside a JAX plugin). Empty for go-xla installs, whose
	// plugin finds its libraries itself.
	LibraryDirs []string
}

// Choice is the outcome of discovery: the backend configuration to use and why.
type Choice struct {
	// Config is the backend configuration string, as GOMLX_BACKEND takes it ("go", "xla:/path.so").
	Config string
	// Reason explains the choice in one sentence.
	Reason string
	// GPU describes the NVIDIA GPU found ("" if none).
	GPU string
	// Plugin is the CUDA plugin chosen, if any.
	Plugin *Plugin
	// Searched lists the places looked at for a plugin, for the report.
	Searched []string
}

// Name returns the backend name of the configuration ("go", "xla", ...).
func (c *Choice) Name() string {
	name, _, _ := strings.Cut(c.Config, ":")
	return name
}

// System is what discovery reads from the machine. The zero value is not useful: use [HostSystem],
// or fill the fields in tests to describe a fake machine.
type System struct {
	// LookupEnv reads an environment variable.
	LookupEnv func(key string) (string, bool)
	// Root is prepended to every absolute path that is probed, and found paths are under it (for
	// fake directory trees in tests); "" or "/" for the real file system.
	Root string
	// Home is the user's home directory ("" if unknown).
	Home string
	// PythonSitePackages returns the site-packages directories of the Python interpreters on the
	// machine (may be nil).
	PythonSitePackages func() []string
}

// HostSystem describes the machine this process runs on.
func HostSystem() System {
	home, _ := os.UserHomeDir()
	return System{
		LookupEnv:          os.LookupEnv,
		Home:               home,
		PythonSitePackages: pythonSitePackages,
	}
}

func (s System) path(p string) string {
	if s.Root == "" || s.Root == "/" {
		return p
	}
	return filepath.Join(s.Root, p)
}

// cacheDir is os.UserCacheDir on the (possibly fake) system: $XDG_CACHE_HOME, else ~/.cache.
func (s System) cacheDir() string {
	if d := s.getenv("XDG_CACHE_HOME"); filepath.IsAbs(d) {
		return s.path(d)
	}
	if s.Home == "" {
		return ""
	}
	return s.path(filepath.Join(s.Home, ".cache"))
}

func (s System) getenv(key string) string {
	if s.LookupEnv == nil {
		return ""
	}
	v, _ := s.LookupEnv(key)
	return v
}

func (s System) exists(p string) bool {
	_, err := os.Stat(s.path(p))
	return err == nil
}

// glob returns the paths matching an absolute pattern of the (possibly fake) system. The paths are
// real: under Root when Root is set.
func (s System) glob(pattern string) []string {
	matches, _ := filepath.Glob(s.path(pattern))
	return matches
}

// Discover decides which backend to use on the given system, without loading anything.
func Discover(sys System) *Choice {
	if cfg, ok := sys.LookupEnv(EnvBackend); ok && strings.TrimSpace(cfg) != "" {
		return &Choice{Config: strings.TrimSpace(cfg), Reason: EnvBackend + " is set"}
	}
	c := &Choice{Config: GoBackend}
	gpu, why := detectGPU(sys)
	c.GPU = gpu
	if gpu == "" {
		c.Reason = "pure-Go backend: " + why
		return c
	}
	plugins, searched := FindCUDAPlugins(sys)
	c.Searched = searched
	if len(plugins) == 0 {
		c.Reason = "pure-Go backend: an NVIDIA GPU is present but no PJRT CUDA plugin was found " +
			"(install one: `gpt backend install` or pip install \"jax[cuda13]\")"
		return c
	}
	c.Plugin = &plugins[0]
	c.Config = XLABackend + ":" + plugins[0].Path
	c.Reason = fmt.Sprintf("XLA CUDA: NVIDIA GPU found and a %s PJRT CUDA plugin", plugins[0].Source)
	return c
}

// detectGPU reports an NVIDIA GPU ("" and the reason when none is usable).
func detectGPU(sys System) (gpu, why string) {
	if v, ok := sys.LookupEnv("CUDA_VISIBLE_DEVICES"); ok {
		if v = strings.TrimSpace(v); v == "" || v == "-1" {
			return "", "CUDA_VISIBLE_DEVICES hides every GPU"
		}
	}
	if data, err := os.ReadFile(sys.path("/proc/driver/nvidia/version")); err == nil {
		line, _, _ := strings.Cut(string(data), "\n")
		if gpus := sys.glob("/proc/driver/nvidia/gpus/*/information"); len(gpus) > 0 {
			if info, err := os.ReadFile(gpus[0]); err == nil {
				for l := range strings.SplitSeq(string(info), "\n") {
					if model, ok := strings.CutPrefix(l, "Model:"); ok {
						return fmt.Sprintf("%s (%d GPU(s); %s)", strings.TrimSpace(model), len(gpus), strings.TrimSpace(line)), ""
					}
				}
			}
		}
		return "NVIDIA driver: " + strings.TrimSpace(line), ""
	}
	if sys.exists("/dev/nvidiactl") || len(sys.glob("/dev/nvidia[0-9]*")) > 0 {
		return "NVIDIA device files in /dev", ""
	}
	return "", "no NVIDIA GPU found (no /proc/driver/nvidia, no /dev/nvidia*)"
}

// FindCUDAPlugins lists the PJRT CUDA plugins on the system, best first: those in
// PJRT_PLUGIN_LIBRARY_PATH, then go-xla's install locations, then pip-installed JAX plugins
// (newest CUDA major version first). It also returns the places searched.
func FindCUDAPlugins(sys System) (plugins []Plugin, searched []string) {
	seen := map[string]bool{}
	add := func(p Plugin) {
		if !seen[p.Path] {
			seen[p.Path] = true
			plugins = append(plugins, p)
		}
	}
	for _, dir := range filepath.SplitList(sys.getenv(EnvPluginPath)) {
		if dir == "" {
			continue
		}
		searched = append(searched, dir)
		for _, m := range sys.glob(filepath.Join(dir, "pjrt_c_api_cuda*_plugin.so")) {
			add(Plugin{Path: m, Source: EnvPluginPath})
		}
	}
	var goxlaDirs []string
	if sys.Home != "" {
		goxlaDirs = append(goxlaDirs, filepath.Join(sys.Home, ".local/lib/go-xla"),
			filepath.Join(sys.Home, ".local/lib/gomlx/pjrt"))
	}
	goxlaDirs = append(goxlaDirs, "/usr/local/lib/go-xla", "/usr/local/lib/gomlx/pjrt")
	for _, dir := range goxlaDirs {
		searched = append(searched, dir)
		for _, m := range sys.glob(filepath.Join(dir, "pjrt_c_api_cuda*_plugin.so")) {
			add(Plugin{Path: m, Source: "go-xla"})
		}
	}
	for _, sp := range sitePackages(sys) {
		searched = append(searched, filepath.Join(sp, "jax_plugins"))
		matches := sys.glob(filepath.Join(sp, "jax_plugins/xla_cuda*/xla_cuda_plugin.so"))
		// xla_cuda13 before xla_cuda12: the newest CUDA first.
		sort.Sort(sort.Reverse(sort.StringSlice(matches)))
		for _, m := range matches {
			// pip installs the NVIDIA libraries beside jax_plugins: site-packages/nvidia/*/lib.
			realSP := filepath.Dir(filepath.Dir(filepath.Dir(m)))
			libs, _ := filepath.Glob(filepath.Join(realSP, "nvidia/*/lib"))
			add(Plugin{Path: m, Source: "jax", LibraryDirs: libs})
		}
	}
	return plugins, searched
}

// sitePackages lists the Python site-packages directories to search, without duplicates, as glob
// patterns of the (possibly fake) system.
func sitePackages(sys System) []string {
	var dirs []string
	dirs = append(dirs, filepath.SplitList(sys.getenv(EnvSitePackages))...)
	for _, env := range []string{"VIRTUAL_ENV", "CONDA_PREFIX"} {
		if prefix := sys.getenv(env); prefix != "" {
			dirs = append(dirs, filepath.Join(prefix, "lib/python3*/site-packages"))
		}
	}
	if sys.PythonSitePackages != nil {
		dirs = append(dirs, sys.PythonSitePackages()...)
	}
	if sys.Home != "" {
		dirs = append(dirs, filepath.Join(sys.Home, ".local/lib/python3*/site-packages"))
	}
	dirs = append(dirs, "/usr/local/lib/python3*/dist-packages", "/usr/lib/python3/dist-packages")
	var out []string
	for _, d := range dirs {
		if d != "" && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// pythonSitePackages asks the Python interpreters on PATH for their site-packages directories.
// It gives up quietly (nil) when there is no Python or it takes too long.
func pythonSitePackages() []string {
	var dirs []string
	for _, py := range []string{"python3", "python"} {
		if _, err := exec.LookPath(py); err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		out, err := exec.CommandContext(ctx, py, "-c",
			"import site,sys; print('\\n'.join(site.getsitepackages()+[site.getusersitepackages()]))").Output()
		cancel()
		if err != nil {
			continue
		}
		for l := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				dirs = append(dirs, l)
			}
		}
	}
	return dirs
}
