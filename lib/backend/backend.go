package backend

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/gomlx/compute"
	"github.com/gonb-gpt/tutorial/lib/internal/envflag"
	// The pure-Go backend is always compiled in: it is the default that runs anywhere.
	_ "github.com/gomlx/compute/gobackend"
)

// Report describes the backend in use and how it was chosen. Print it in CLIs and notebooks.
type Report struct {
	Choice
	// Backend is the backend's own description (name and platform).
	Backend string
	// Devices lists the backend's devices.
	Devices []string
	// Fallback holds the error of the automatically chosen backend when it failed to start and the
	// pure-Go backend was used instead ("" otherwise).
	Fallback string
	// XLACache is the folder of the compiled-program and autotuning caches (on unless GPT_XLA_CACHE=0).
	XLACache string
	// Gemms says where XLA's matrix products go when New chose for them ([ForFloat32Training]).
	Gemms string
}

// String formats the report on a few lines: the backend and why; the GPUs, their driver and the
// plugin; on GPUs the attention path and the default precision; the caches and devices.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "backend: %s (%s)\n", r.Config, r.Backend)
	fmt.Fprintf(&b, "why:     %s\n", r.Reason)
	if r.Fallback != "" {
		fmt.Fprintf(&b, "note:    the chosen backend failed to start, using the pure-Go backend: %s\n", r.Fallback)
	}
	for _, g := range r.GPUs {
		fmt.Fprintf(&b, "gpu %d:   %s\n", g.Index, g)
	}
	if len(r.GPUs) == 0 && r.GPU != "" {
		fmt.Fprintf(&b, "gpu:     %s\n", r.GPU)
	}
	if r.Driver != "" && len(r.GPUs) > 0 {
		fmt.Fprintf(&b, "driver:  %s\n", r.Driver)
	}
	if r.Plugin != nil {
		fmt.Fprintf(&b, "plugin:  %s (%s, %s)\n", r.Plugin.Path, r.Plugin.Source, r.Plugin.cudaLabel())
		if len(r.Plugin.LibraryDirs) > 0 {
			fmt.Fprintf(&b, "libs:    %d NVIDIA library directories added to LD_LIBRARY_PATH\n", len(r.Plugin.LibraryDirs))
		}
	} else if len(r.Searched) > 0 {
		fmt.Fprintf(&b, "plugins searched: %s\n", strings.Join(r.Searched, ", "))
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(&b, "skipped: %s\n", s)
	}
	cuda := r.onCUDA()
	if cuda {
		if ok, why := flashAttention(r.GPUs); ok {
			fmt.Fprintf(&b, "attention: cuDNN flash attention available (bf16/fp16)\n")
		} else {
			fmt.Fprintf(&b, "attention: eager (%s)\n", why)
		}
	}
	if cuda && r.Gemms != "" {
		fmt.Fprintf(&b, "gemms:   %s\n", r.Gemms)
	}
	precision, why := defaultPrecision(r.GPUs, cuda, cpuLabel(r.Name()))
	fmt.Fprintf(&b, "precision: %s by default (%s)\n", precision, why)
	if r.XLACache != "" {
		fmt.Fprintf(&b, "xla cache: %s\n", r.XLACache)
	}
	for i, d := range r.Devices {
		fmt.Fprintf(&b, "device %d: %s\n", i, d)
	}
	return strings.TrimRight(b.String(), "\n")
}

// onCUDA reports whether the backend in use runs XLA on CUDA (not after a fallback).
func (r *Report) onCUDA() bool { return r.Fallback == "" && isCUDAConfig(r.Config) }

// EnvTF32 chooses, on XLA, whether float32 matrix products may use TF32 tensor cores: "1" (faster,
// about 10 bits of mantissa: torch.backends.cuda.matmul.allow_tf32 = True, TrainingArguments'
// tf32=True) or "0", the default (full float32, as PyTorch does by default, so that float32 numbers
// match transformers'; go-xla's own default would be TF32 on CUDA).
const EnvTF32 = "GPT_TF32"

// EnvXLAAsync set to "0" makes each XLA program call wait until the device has finished it, as
// upstream go-xla does. By default (this project's go-xla fork) a call returns once the program is
// enqueued, as PJRT allows and JAX does: the host prepares the next training step while the device
// computes this one, and waits only when it reads a result (a loss, a generated token). Measured on
// an H200 (docs/benchmarks.md): the bf16 training step left the GPU idle for 10 of its 27 ms.
const EnvXLAAsync = "GPT_XLA_ASYNC"

// Option configures [New].
type Option func(*options)

type options struct {
	noReexec bool
	system   *System
	float32  bool
}

// WithoutReexec stops [New] from re-executing the process to put a JAX plugin's NVIDIA libraries on
// LD_LIBRARY_PATH; loading such a plugin may then fail (and New falls back to the pure-Go backend).
func WithoutReexec() Option { return func(o *options) { o.noReexec = true } }

// ForFloat32Training says the program trains in float32. On XLA CUDA, [New] then sends XLA's
// matrix products to cuBLAS instead of Triton gemm fusions (XLA_FLAGS
// --xla_gpu_enable_triton_gemm=false, unless XLA_FLAGS already sets it): measured on an H200 for
// the tutorial's float32 training step (docs/benchmarks.md, 2026-11-27), the cold compile went from
// 60.7 s to 19.2 s (XLA no longer autotunes Triton tilings of float32 gemms) and the step from 161.0
// to 156.3 ms. bf16 and fp16 keep XLA's default: not measured without Triton yet, and Triton fuses
// their casts into the gemms. XLA reads its flags once per process, so pass this to the first New.
func ForFloat32Training() Option { return func(o *options) { o.float32 = true } }

// tritonGemmFlag is the XLA flag ForFloat32Training sets.
const tritonGemmFlag = "--xla_gpu_enable_triton_gemm"

// WithSystem makes [New] discover on the given system instead of [HostSystem] (for tests).
func WithSystem(sys System) Option { return func(o *options) { o.system = &sys } }

// New chooses a backend (see the package documentation), starts it and reports the choice.
//
// When the chosen plugin needs library directories that are not yet on LD_LIBRARY_PATH, New
// re-executes the current program once with them added: call it early, before the program has done
// work it should not repeat.
func New(opts ...Option) (compute.Backend, *Report, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	sys := HostSystem()
	if o.system != nil {
		sys = *o.system
	}
	choice := Discover(sys)
	if choice.Plugin != nil && !o.noReexec {
		if err := ensureLibraryPath(choice.Plugin.LibraryDirs); err != nil {
			return nil, nil, err
		}
	}
	report := &Report{Choice: *choice}
	if choice.Name() == XLABackend && !strings.Contains(choice.Config, "tf32") {
		tf32 := sys.getenv(EnvTF32)
		on, ok := envflag.Parse(tf32, false)
		if !ok {
			return nil, nil, fmt.Errorf("%s=%q: want 1 (TF32 matmuls for float32) or 0 (full float32)", EnvTF32, tf32)
		}
		report.Config += fmt.Sprintf(",tf32=%v", on)
	}
	async := strings.TrimSpace(sys.getenv(EnvXLAAsync))
	on, ok := envflag.Parse(async, true)
	if !ok {
		return nil, nil, fmt.Errorf("%s=%q: want 1 (XLA programs run asynchronously, the default) or 0 (each call waits for its program)", EnvXLAAsync, async)
	}
	setAsyncExecution(on)
	setExecutableCache("")
	if cache := strings.TrimSpace(sys.getenv(EnvXLACache)); choice.Plugin != nil && (cache == "" || envflag.True(cache)) {
		if root := sys.cacheDir(); root != "" {
			if flags, dir, err := CacheFlags(filepath.Join(root, "gonb-gpt"), choice.Plugin, os.Getenv("XLA_FLAGS")); err == nil {
				_ = os.Setenv("XLA_FLAGS", flags)
				setExecutableCache(filepath.Join(dir, "executables"))
				report.XLACache = dir
			}
		}
	}
	if o.float32 && isCUDAConfig(report.Config) && !strings.Contains(os.Getenv("XLA_FLAGS"), tritonGemmFlag+"=") {
		_ = os.Setenv("XLA_FLAGS", strings.TrimSpace(os.Getenv("XLA_FLAGS")+" "+tritonGemmFlag+"=false"))
		report.Gemms = "cuBLAS (float32 training: Triton gemm fusions off)"
	}
	b, err := start(report.Config)
	if err != nil {
		_, fromEnv := sys.LookupEnv(EnvBackend)
		if fromEnv || choice.Name() == GoBackend {
			return nil, nil, fmt.Errorf("backend %q (%s): %w", report.Config, choice.Reason, err)
		}
		report.Fallback = err.Error()
		report.Config = GoBackend
		if b, err = start(GoBackend); err != nil {
			return nil, nil, fmt.Errorf("backend %q: %w", GoBackend, err)
		}
	}
	if report.onCUDA() {
		registerCUDA(b, report.GPUs)
	}
	report.Backend = b.Description()
	for i := range b.NumDevices() {
		report.Devices = append(report.Devices, b.DeviceDescription(compute.DeviceNum(i)))
	}
	return b, report, nil
}

// start creates the backend for a configuration, turning GoMLX's panics into errors.
func start(config string) (b compute.Backend, err error) {
	name, _, _ := strings.Cut(config, ":")
	if !slices.Contains(compute.List(), name) {
		return nil, fmt.Errorf("backend %q is not compiled into this program (available: %s)",
			name, strings.Join(compute.List(), ", "))
	}
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("starting backend %q: %v", config, r)
		}
	}()
	b, err = compute.NewWithConfig(config)
	if err != nil {
		return nil, fmt.Errorf("starting backend %q: %w", config, err)
	}
	return b, nil
}

// ensureLibraryPath re-executes the process with dirs prepended to LD_LIBRARY_PATH, unless they are
// already there or the process was already re-executed once.
func ensureLibraryPath(dirs []string) error {
	current := filepath.SplitList(os.Getenv("LD_LIBRARY_PATH"))
	var missing []string
	for _, d := range dirs {
		if !slices.Contains(current, d) {
			missing = append(missing, d)
		}
	}
	if len(missing) == 0 || os.Getenv(envReexec) != "" {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("re-executing with the CUDA libraries on LD_LIBRARY_PATH: %w", err)
	}
	env := os.Environ()
	env = slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "LD_LIBRARY_PATH=") })
	env = append(env, "LD_LIBRARY_PATH="+strings.Join(append(missing, current...), string(filepath.ListSeparator)),
		envReexec+"=1")
	err = syscall.Exec(exe, os.Args, env)
	return fmt.Errorf("re-executing %s with the CUDA libraries on LD_LIBRARY_PATH: %w", exe, err)
}
