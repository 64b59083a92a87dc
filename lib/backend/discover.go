// Package backend chooses the GoMLX compute backend for the tutorial: the environment variable
// GOMLX_BACKEND when set; otherwise XLA with a PJRT CUDA plugin when an NVIDIA GPU and a plugin that
// can run on it are found; otherwise GoMLX's pure-Go backend, which runs anywhere.
//
// The GPUs come from nvidia-smi (name, compute capability, memory, driver), or from
// /proc/driver/nvidia when nvidia-smi is missing, in CUDA_VISIBLE_DEVICES's selection. The lowest
// compute capability decides the plugin: CUDA 13 dropped compute capability below 7.5 (Maxwell,
// Pascal and Volta: the tutorial's Tesla V100 is 7.0), so such cards need a CUDA 12 plugin; from 7.5
// up a CUDA 13 plugin is preferred. It also decides what other packages ask through
// [DefaultPrecision], [CheckBF16] and [FlashAttention]: bfloat16 and cuDNN's flash attention need
// 8.0 (Ampere).
//
// Plugins are looked for in PJRT_PLUGIN_LIBRARY_PATH; in go-xla's install locations: go-xla's
// installer puts the plugin and the NVIDIA libraries in ~/.local/lib/go-xla/nvidia (CUDA 13, see
// [Install]) or ~/.local/lib/go-xla-cuda12/nvidia (this package's folder for CUDA 12), also looked
// for under /usr/local/lib, and older installs lie flat in ~/.local/lib/go-xla or gomlx/pjrt; and in
// pip-installed JAX CUDA plugins (site-packages/jax_plugins/xla_cuda12|13/xla_cuda_plugin.so). A
// plugin's CUDA version comes from its name or from the NVIDIA libraries beside it. A JAX plugin
// needs the NVIDIA libraries that pip installs beside it (site-packages/nvidia/*/lib) on
// LD_LIBRARY_PATH before it is loaded; since the dynamic loader reads LD_LIBRARY_PATH only when a
// process starts, [New] re-executes the process once with those directories added.
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
	"regexp"
	"slices"
	"sort"
	"strconv"
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
	// CUDA is the CUDA major version the plugin was built for (12, 13), 0 when unknown.
	CUDA int
	// LibraryDirs are directories that must be on LD_LIBRARY_PATH before the plugin is loaded
	// (the NVIDIA libraries pip installs beside a JAX plugin). Empty for go-xla installs, whose
	// plugin finds its libraries itself.
	LibraryDirs []string
}

// label names the plugin in reasons: "jax plugin xla_cuda12", "go-xla plugin, CUDA 13".
func (p Plugin) label() string {
	if p.Source == "jax" {
		return "jax plugin " + filepath.Base(filepath.Dir(p.Path))
	}
	return p.Source + " plugin, " + p.cudaLabel()
}

// cudaLabel is "CUDA 13", or "CUDA version unknown".
func (p Plugin) cudaLabel() string {
	if p.CUDA == 0 {
		return "CUDA version unknown"
	}
	return fmt.Sprintf("CUDA %d", p.CUDA)
}

// Choice is the outcome of discovery: the backend configuration to use and why.
type Choice struct {
	// Config is the backend configuration string, as GOMLX_BACKEND takes it ("go", "xla:/path.so").
	Config string
	// Reason explains the choice in one sentence.
	Reason string
	// GPU summarizes the NVIDIA GPUs found in one line ("" if none).
	GPU string
	// GPUs are the NVIDIA GPUs visible to CUDA (nil when none, or when a GPU is present but could not
	// be listed: then GPU still says so).
	GPUs []GPU
	// Driver is the NVIDIA driver version ("" if unknown).
	Driver string
	// Plugin is the CUDA plugin chosen, if any.
	Plugin *Plugin
	// Skipped lists the plugins found that cannot run here, each with why.
	Skipped []string
	// Searched lists the places looked at for a plugin, for the report.
	Searched []string
}

// Name returns the backend name of the configuration ("go", "xla", ...).
func (c *Choice) Name() string {
	name, _, _ := strings.Cut(c.Config, ":")
	return name
}

// isCUDAConfig reports whether a backend configuration runs XLA on CUDA: "xla:cuda", or a plugin
// path naming CUDA or NVIDIA (go-xla's pjrt_c_api_cuda_plugin.so, JAX's xla_cuda13/xla_cuda_plugin.so),
// as go-xla itself tells CUDA plugins (pjrt.IsCUDAName).
func isCUDAConfig(config string) bool {
	name, rest, _ := strings.Cut(config, ":")
	rest = strings.ToLower(rest)
	return name == XLABackend && (strings.Contains(rest, "cuda") || strings.Contains(rest, "nvidia"))
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
	// NvidiaSMI runs nvidia-smi with the given arguments and returns its standard output; an error
	// when it is missing or fails (nil: no nvidia-smi).
	NvidiaSMI func(args ...string) ([]byte, error)
}

// HostSystem describes the machine this process runs on.
func HostSystem() System {
	home, _ := os.UserHomeDir()
	return System{
		LookupEnv:          os.LookupEnv,
		Home:               home,
		PythonSitePackages: pythonSitePackages,
		NvidiaSMI:          runNvidiaSMI,
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

func (s System) lookupEnv(key string) (string, bool) {
	if s.LookupEnv == nil {
		return "", false
	}
	return s.LookupEnv(key)
}

func (s System) getenv(key string) string {
	v, _ := s.lookupEnv(key)
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
	if cfg, ok := sys.lookupEnv(EnvBackend); ok && strings.TrimSpace(cfg) != "" {
		c := &Choice{Config: strings.TrimSpace(cfg), Reason: EnvBackend + " is set"}
		if isCUDAConfig(c.Config) {
			info := detectGPUs(sys)
			c.GPU, c.GPUs, c.Driver = info.summary, info.gpus, info.driver
		}
		return c
	}
	c := &Choice{Config: GoBackend}
	info := detectGPUs(sys)
	c.GPU, c.GPUs, c.Driver = info.summary, info.gpus, info.driver
	if info.summary == "" {
		c.Reason = "pure-Go backend: " + info.why
		return c
	}
	plugins, searched := FindCUDAPlugins(sys)
	c.Searched = searched
	pick := choosePlugin(c.GPUs, c.Driver, plugins)
	c.Reason, c.Skipped = pick.reason, pick.skipped
	if pick.plugin != nil {
		c.Plugin = pick.plugin
		c.Config = XLABackend + ":" + c.Plugin.Path
	}
	return c
}

// cudaNeeds holds, for each CUDA major version of a plugin, the lowest compute capability and
// driver it runs on.
var cudaNeeds = map[int]struct{ major, minor, driver int }{
	// JAX's CUDA 12 wheels are built for compute capability 5.2 and newer; CUDA 12 needs driver 525.
	12: {5, 2, 525},
	// CUDA 13 dropped compute capability below 7.5 (Maxwell, Pascal, Volta); it needs driver 580.
	13: {7, 5, 580},
}

// driverMajor is the major number of a driver version ("580.95.05": 580), 0 when unknown.
func driverMajor(version string) int {
	major, _, _ := strings.Cut(version, ".")
	n, _ := strconv.Atoi(major)
	return n
}

// cannotRun says why plugin p cannot run on GPUs whose weakest is w (known: its capability is
// known) with the given driver; "" when it can, or when the plugin's CUDA version is unknown.
func cannotRun(p Plugin, w GPU, known bool, driver string) string {
	need, ok := cudaNeeds[p.CUDA]
	if !ok {
		return ""
	}
	if known && !w.atLeast(need.major, need.minor) {
		if p.CUDA == 13 {
			return fmt.Sprintf("%s, which CUDA 13 no longer supports", hasCapability(w))
		}
		return fmt.Sprintf("%s; CUDA %d needs %d.%d or newer",
			hasCapability(w), p.CUDA, need.major, need.minor)
	}
	if d := driverMajor(driver); d > 0 && d < need.driver {
		return fmt.Sprintf("NVIDIA driver %s is too old for CUDA %d, which needs %d or newer", driver, p.CUDA, need.driver)
	}
	return ""
}

// gpuName is the GPU's name, "the NVIDIA GPU" when unknown.
func gpuName(g GPU) string {
	if g.Name == "" {
		return "the NVIDIA GPU"
	}
	return g.Name
}

// cardLabel names the GPU that decides, with its compute capability: the weakest w when known
// ("Tesla V100-SXM2-32GB (compute capability 7.0, the lowest of 2 GPUs)").
func cardLabel(gpus []GPU, w GPU, known bool) string {
	if !known {
		var g GPU
		if len(gpus) > 0 {
			g = gpus[0]
		}
		return gpuName(g) + " (compute capability unknown, assumed 7.5 or newer)"
	}
	for _, g := range gpus {
		if g.Major != w.Major || g.Minor != w.Minor {
			return fmt.Sprintf("%s (compute capability %s, the lowest of %d GPUs)", gpuName(w), w.ComputeCapability(), len(gpus))
		}
	}
	return w.label()
}

// pluginPick is choosePlugin's answer.
type pluginPick struct {
	plugin  *Plugin  // nil: no plugin can run here
	reason  string   // the choice's Reason
	skipped []string // plugins that cannot run here, with why
}

// choosePlugin picks the plugin to run on the GPUs from those found (in source order). Below compute
// capability 7.5 (known, on the weakest GPU) only CUDA 12 plugins run and come first; from 7.5 up, or
// when no capability is known, CUDA 13 is preferred, then CUDA 12. A plugin of unknown CUDA version
// is assumed to run, ranked with the preferred version from 7.5 up and after CUDA 12 below. Plugins
// that the driver is too old for cannot run.
func choosePlugin(gpus []GPU, driver string, plugins []Plugin) pluginPick {
	w, known := weakest(gpus)
	legacy := known && !w.atLeast(7, 5)
	card := cardLabel(gpus, w, known)
	var pick pluginPick
	var usable []Plugin
	only13 := len(plugins) > 0
	for _, p := range plugins {
		only13 = only13 && p.CUDA == 13
		if why := cannotRun(p, w, known, driver); why != "" {
			pick.skipped = append(pick.skipped, fmt.Sprintf("%s (%s): %s", p.Path, p.cudaLabel(), why))
			continue
		}
		usable = append(usable, p)
	}
	advice := installAdvice(gpus, driver)
	switch {
	case len(plugins) == 0:
		pick.reason = fmt.Sprintf("pure-Go backend: no PJRT CUDA plugin was found for %s; %s", card, advice)
		return pick
	case len(usable) == 0 && legacy && only13:
		var paths []string
		for _, p := range plugins {
			paths = append(paths, p.Path)
		}
		pick.reason = fmt.Sprintf("pure-Go backend: %s, which CUDA 13 no longer supports, "+
			"and only CUDA 13 plugins were found (%s); %s", hasCapability(w), strings.Join(paths, ", "), advice)
		return pick
	case len(usable) == 0:
		pick.reason = fmt.Sprintf("pure-Go backend: none of the PJRT CUDA plugins found can run on %s: %s; %s",
			card, strings.Join(pick.skipped, "; "), advice)
		return pick
	}
	preferred := 13
	if legacy {
		preferred = 12
	}
	rank := func(p Plugin) int {
		if p.CUDA == preferred || p.CUDA == 0 && !legacy {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(usable, func(a, b Plugin) int { return rank(a) - rank(b) })
	p := usable[0]
	pick.plugin = &p
	why := card
	switch {
	case legacy:
		why += " needs CUDA 12 (CUDA 13 dropped < 7.5)"
	case p.CUDA == 13 && slices.ContainsFunc(usable, func(q Plugin) bool { return q.CUDA == 12 }):
		why += ": CUDA 13 plugin preferred"
	}
	pick.reason = "XLA CUDA: " + why + ": " + p.label()
	return pick
}

// FindCUDAPlugins lists the PJRT CUDA plugins on the system, with their CUDA versions, in source
// order: those in PJRT_PLUGIN_LIBRARY_PATH, then go-xla's install locations, then pip-installed JAX
// plugins (newest CUDA major version first). It also returns the places searched. [Discover] then
// picks by the GPUs' compute capability.
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
			add(Plugin{Path: m, Source: EnvPluginPath, CUDA: pluginCUDA(m)})
		}
	}
	for _, dir := range goxlaDirs(sys.Home) {
		searched = append(searched, dir)
		for _, m := range sys.glob(filepath.Join(dir, "pjrt_c_api_cuda*_plugin.so")) {
			add(Plugin{Path: m, Source: "go-xla", CUDA: pluginCUDA(m)})
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
			add(Plugin{Path: m, Source: "jax", CUDA: cudaInName(filepath.Base(filepath.Dir(m))), LibraryDirs: libs})
		}
	}
	return plugins, searched
}

// goxlaDirs are the folders where go-xla installs put the CUDA plugin, as go-xla's loader searches
// them (pjrt/dynamiclib_posix.go), plus this package's CUDA 12 folder (see [Install]). go-xla's
// installer writes <dir>/nvidia/pjrt_c_api_cuda_plugin.so; older installs lie flat in <dir>.
func goxlaDirs(home string) []string {
	var dirs []string
	if home != "" {
		dirs = append(dirs,
			filepath.Join(home, ".local/lib/go-xla"),
			filepath.Join(home, ".local/lib/go-xla/nvidia"),
			filepath.Join(home, ".local/lib/go-xla-cuda12/nvidia"),
			filepath.Join(home, ".local/lib/gomlx/pjrt"))
	}
	return append(dirs, "/usr/local/lib/go-xla", "/usr/local/lib/go-xla/nvidia",
		"/usr/local/lib/go-xla-cuda12/nvidia", "/usr/local/lib/gomlx/pjrt")
}

var reCUDAVersion = regexp.MustCompile(`cuda(\d+)`)

// cudaInName reads a CUDA major version from a name ("xla_cuda12", "pjrt_c_api_cuda13_plugin.so"),
// 0 when it says none.
func cudaInName(name string) int {
	m := reCUDAVersion.FindStringSubmatch(name)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// pluginCUDA tells the CUDA major version of the plugin at path (a real path): from its file name
// when it says (pjrt_c_api_cuda12_plugin.so), else from the NVIDIA libraries where the plugin looks
// for them, ../nvidia from its folder (its RPATH, which go-xla's loader also uses): go-xla's cu13
// folder or libcublas.so.13 for CUDA 13, libcublas.so.12 for CUDA 12. 0 when unknown.
func pluginCUDA(path string) int {
	if n := cudaInName(filepath.Base(path)); n > 0 {
		return n
	}
	nvidia := filepath.Join(filepath.Dir(filepath.Dir(path)), "nvidia")
	if st, err := os.Stat(filepath.Join(nvidia, "cu13")); err == nil && st.IsDir() {
		return 13
	}
	libs, _ := filepath.Glob(filepath.Join(nvidia, "*", "lib", "libcublas.so.*"))
	version := 0
	for _, lib := range libs {
		major, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(lib), "libcublas.so."), ".")
		n, err := strconv.Atoi(major)
		if err != nil {
			continue
		}
		if version != 0 && n != version {
			return 0 // libraries of two CUDA versions: cannot tell
		}
		version = n
	}
	return version
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
