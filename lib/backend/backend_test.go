package backend

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/compute"
)

// fakeSystem builds a directory tree under a temporary root: each key is an absolute path of the
// fake machine, each value the file's content.
func fakeSystem(t *testing.T, env map[string]string, files map[string]string) System {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return System{
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Root:      root,
		Home:      "/home/u",
	}
}

var nvidiaProc = map[string]string{
	"/proc/driver/nvidia/version":                       "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.95.05\nGCC version: gcc 12\n",
	"/proc/driver/nvidia/gpus/0000:00:05.0/information": "Model: \t\t NVIDIA H100 80GB HBM3\nIRQ: 42\n",
	"/proc/driver/nvidia/gpus/0000:00:06.0/information": "Model: \t\t NVIDIA H100 80GB HBM3\nIRQ: 43\n",
}

// go-xla's installer layout (installer/cuda.go in go-xla v0.4.13): CudaInstall("cuda13", …,
// ~/.local/lib/go-xla) writes the plugin and the NVIDIA wheels' files into go-xla/nvidia; this
// package installs CUDA 12 the same way into ~/.local/lib/go-xla-cuda12.
const (
	goxla13Plugin = "/home/u/.local/lib/go-xla/nvidia/pjrt_c_api_cuda_plugin.so"
	goxla12Plugin = "/home/u/.local/lib/go-xla-cuda12/nvidia/pjrt_c_api_cuda_plugin.so"
)

var (
	goxla13 = map[string]string{
		goxla13Plugin: "elf",
		"/home/u/.local/lib/go-xla/nvidia/cu13/lib/libcublas.so.13": "elf",
		"/home/u/.local/lib/go-xla/nvidia/cu13/bin/ptxas":           "elf",
		"/home/u/.local/lib/go-xla/nvidia/cudnn/lib/libcudnn.so.9":  "elf",
	}
	goxla12 = map[string]string{
		goxla12Plugin: "elf",
		"/home/u/.local/lib/go-xla-cuda12/nvidia/cublas/lib/libcublas.so.12":       "elf",
		"/home/u/.local/lib/go-xla-cuda12/nvidia/cuda_nvcc/bin/ptxas":              "elf",
		"/home/u/.local/lib/go-xla-cuda12/nvidia/cudnn/lib/libcudnn.so.9":          "elf",
		"/home/u/.local/lib/go-xla-cuda12/nvidia/cuda_runtime/lib/libcudart.so.12": "elf",
	}
)

func with(base map[string]string, more map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range more {
		out[k] = v
	}
	return out
}

func TestDiscover(t *testing.T) {
	const jaxSP = "/venv/lib/python3.12/site-packages"
	jaxFiles := map[string]string{
		jaxSP + "/jax_plugins/xla_cuda12/xla_cuda_plugin.so": "elf",
		jaxSP + "/jax_plugins/xla_cuda13/xla_cuda_plugin.so": "elf",
		jaxSP + "/nvidia/cublas/lib/libcublas.so.13":         "elf",
		jaxSP + "/nvidia/cudnn/lib/libcudnn.so.9":            "elf",
		jaxSP + "/nvidia/README":                             "not a library dir",
	}
	for _, tc := range []struct {
		name       string
		env        map[string]string
		files      map[string]string
		wantConfig string
		wantReason string
		wantSource string
		wantLibs   []string
		wantGPU    string
		wantCUDA   int
		smi        func(args ...string) ([]byte, error)
	}{
		{
			name: "GOMLX_BACKEND wins", env: map[string]string{"GOMLX_BACKEND": "xla:cpu"},
			files: with(nvidiaProc, jaxFiles), wantConfig: "xla:cpu", wantReason: "GOMLX_BACKEND is set",
		},
		{
			name: "no GPU", wantConfig: "go", wantReason: "no NVIDIA GPU found",
			files: jaxFiles,
		},
		{
			name: "GPU hidden by CUDA_VISIBLE_DEVICES", env: map[string]string{"CUDA_VISIBLE_DEVICES": "-1", "VIRTUAL_ENV": "/venv"},
			files: with(nvidiaProc, jaxFiles), wantConfig: "go", wantReason: "CUDA_VISIBLE_DEVICES hides every GPU",
		},
		{
			name: "GPU without plugin", files: nvidiaProc, wantConfig: "go",
			wantReason: "no PJRT CUDA plugin was found for NVIDIA H100 80GB HBM3 (compute capability 9.0); install a CUDA 13 plugin: `gpt backend install cuda13`",
			wantGPU:    "2× NVIDIA H100 80GB HBM3 (compute capability 9.0); driver 580.95.05",
		},
		{
			name: "GPU device files only", files: with(goxla13, map[string]string{"/dev/nvidia0": ""}),
			wantConfig: "xla:" + goxla13Plugin, wantSource: "go-xla", wantGPU: "NVIDIA device files in /dev", wantCUDA: 13,
			wantReason: "XLA CUDA: the NVIDIA GPU (compute capability unknown, assumed 7.5 or newer): go-xla plugin, CUDA 13",
		},
		{
			name: "go-xla's installer layout in home: nvidia/ with cu13 libraries is CUDA 13", files: with(nvidiaProc, goxla13),
			wantConfig: "xla:" + goxla13Plugin, wantReason: "XLA CUDA: NVIDIA H100 80GB HBM3 (compute capability 9.0): go-xla plugin, CUDA 13",
			wantSource: "go-xla", wantCUDA: 13,
		},
		{
			name: "our CUDA 12 folder go-xla-cuda12/nvidia is CUDA 12", files: with(nvidiaProc, goxla12),
			wantConfig: "xla:" + goxla12Plugin, wantSource: "go-xla", wantCUDA: 12,
		},
		{
			name: "older flat go-xla install: CUDA version unknown", files: with(nvidiaProc, map[string]string{"/home/u/.local/lib/go-xla/pjrt_c_api_cuda_plugin.so": "elf"}),
			wantConfig: "xla:/home/u/.local/lib/go-xla/pjrt_c_api_cuda_plugin.so", wantReason: "go-xla plugin, CUDA version unknown", wantSource: "go-xla",
		},
		{
			name: "system go-xla install", files: with(nvidiaProc, map[string]string{
				"/usr/local/lib/go-xla/nvidia/pjrt_c_api_cuda_plugin.so": "elf",
				"/usr/local/lib/go-xla/nvidia/cu13/lib/libcublas.so.13":  "elf"}),
			wantConfig: "xla:/usr/local/lib/go-xla/nvidia/pjrt_c_api_cuda_plugin.so", wantSource: "go-xla", wantCUDA: 13,
		},
		{
			name: "V100 with go-xla CUDA 12 and 13: CUDA 12", files: with(goxla13, goxla12), smi: fakeSMI(smiV100, false),
			wantConfig: "xla:" + goxla12Plugin, wantSource: "go-xla", wantCUDA: 12, wantGPU: "Tesla V100-SXM2-32GB (compute capability 7.0, 32 GiB); driver 550.54.15",
			wantReason: "XLA CUDA: Tesla V100-SXM2-32GB (compute capability 7.0) needs CUDA 12 (CUDA 13 dropped < 7.5): go-xla plugin, CUDA 12",
		},
		{
			name: "H100 with go-xla CUDA 12 and 13: CUDA 13", files: with(goxla13, goxla12), smi: fakeSMI(smiH100, false),
			wantConfig: "xla:" + goxla13Plugin, wantSource: "go-xla", wantCUDA: 13,
			wantReason: "XLA CUDA: NVIDIA H100 80GB HBM3 (compute capability 9.0): CUDA 13 plugin preferred: go-xla plugin, CUDA 13",
		},
		{
			name: "V100 with only go-xla CUDA 13: pure Go, install CUDA 12", files: goxla13, smi: fakeSMI(smiV100, false), wantConfig: "go",
			wantReason: "pure-Go backend: Tesla V100-SXM2-32GB has compute capability 7.0, which CUDA 13 no longer supports, and only CUDA 13 plugins were found (" +
				"ROOT" + goxla13Plugin + "); install a CUDA 12 plugin: `gpt backend install cuda12` or `pip install \"jax[cuda12]\"`",
		},
		{
			name: "V100 with JAX's CUDA 12 and 13 plugins: xla_cuda12", env: map[string]string{"VIRTUAL_ENV": "/venv"},
			files: jaxFiles, smi: fakeSMI(smiV100, false),
			wantConfig: "xla:" + jaxSP + "/jax_plugins/xla_cuda12/xla_cuda_plugin.so", wantSource: "jax", wantCUDA: 12,
			wantReason: "XLA CUDA: Tesla V100-SXM2-32GB (compute capability 7.0) needs CUDA 12 (CUDA 13 dropped < 7.5): jax plugin xla_cuda12",
			wantLibs:   []string{jaxSP + "/nvidia/cublas/lib", jaxSP + "/nvidia/cudnn/lib"},
		},
		{
			name: "old driver: no compute_cap, T4 from the name table, driver too old for any plugin", files: with(goxla13, goxla12),
			smi: fakeSMI("0, GPU-0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a, Tesla T4, 15109, 470.82.01\n", true), wantConfig: "go",
			wantGPU:    "Tesla T4 (compute capability 7.5, 15 GiB); driver 470.82.01",
			wantReason: "NVIDIA driver 470.82.01 is too old for any PJRT CUDA plugin: update it",
		},
		{
			name: "CUDA_VISIBLE_DEVICES picks the A100 of a V100 and an A100: CUDA 13", env: map[string]string{"CUDA_VISIBLE_DEVICES": "GPU-a1"},
			files: with(goxla13, goxla12), smi: fakeSMI(smiV100A100, false), wantConfig: "xla:" + goxla13Plugin, wantSource: "go-xla", wantCUDA: 13,
			wantGPU: "NVIDIA A100-SXM4-80GB (compute capability 8.0, 80 GiB)",
		},
		{
			name: "GOMLX_BACKEND naming CUDA still lists the GPUs", env: map[string]string{"GOMLX_BACKEND": "xla:cuda"}, smi: fakeSMI(smiV100, false),
			wantConfig: "xla:cuda", wantReason: "GOMLX_BACKEND is set", wantGPU: "Tesla V100-SXM2-32GB",
		},
		{
			name: "JAX plugin in a virtualenv, newest CUDA first, with its NVIDIA libraries",
			env:  map[string]string{"VIRTUAL_ENV": "/venv"}, files: with(nvidiaProc, jaxFiles),
			wantConfig: "xla:" + jaxSP + "/jax_plugins/xla_cuda13/xla_cuda_plugin.so", wantSource: "jax", wantCUDA: 13,
			wantLibs: []string{jaxSP + "/nvidia/cublas/lib", jaxSP + "/nvidia/cudnn/lib"},
		},
		{
			name: "JAX plugin through GPT_SITE_PACKAGES", env: map[string]string{"GPT_SITE_PACKAGES": jaxSP},
			files: with(nvidiaProc, jaxFiles), wantConfig: "xla:" + jaxSP + "/jax_plugins/xla_cuda13/xla_cuda_plugin.so", wantSource: "jax", wantCUDA: 13,
			wantLibs: []string{jaxSP + "/nvidia/cublas/lib", jaxSP + "/nvidia/cudnn/lib"},
		},
		{
			name: "JAX plugin in the user's site-packages", files: with(nvidiaProc, map[string]string{
				"/home/u/.local/lib/python3.11/site-packages/jax_plugins/xla_cuda13/xla_cuda_plugin.so": "elf"}),
			wantConfig: "xla:/home/u/.local/lib/python3.11/site-packages/jax_plugins/xla_cuda13/xla_cuda_plugin.so", wantSource: "jax", wantCUDA: 13,
		},
		{
			name: "PJRT_PLUGIN_LIBRARY_PATH before go-xla and JAX",
			env:  map[string]string{"PJRT_PLUGIN_LIBRARY_PATH": "/opt/pjrt", "VIRTUAL_ENV": "/venv"},
			files: with(with(nvidiaProc, jaxFiles), map[string]string{
				"/opt/pjrt/pjrt_c_api_cuda_plugin.so":                 "elf",
				"/home/u/.local/lib/go-xla/pjrt_c_api_cuda_plugin.so": "elf"}),
			wantConfig: "xla:/opt/pjrt/pjrt_c_api_cuda_plugin.so", wantSource: "PJRT_PLUGIN_LIBRARY_PATH",
		},
		{
			name: "PJRT_PLUGIN_LIBRARY_PATH plugin named for CUDA 12, on a V100", env: map[string]string{"PJRT_PLUGIN_LIBRARY_PATH": "/opt/pjrt"},
			files: with(goxla13, map[string]string{"/opt/pjrt/pjrt_c_api_cuda12_plugin.so": "elf"}), smi: fakeSMI(smiV100, false),
			wantConfig: "xla:/opt/pjrt/pjrt_c_api_cuda12_plugin.so", wantSource: "PJRT_PLUGIN_LIBRARY_PATH", wantCUDA: 12,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sys := fakeSystem(t, tc.env, tc.files)
			sys.NvidiaSMI = tc.smi
			c := Discover(sys)
			tc.wantReason = strings.ReplaceAll(tc.wantReason, "ROOT", sys.Root)
			unroot := func(p string) string { return strings.TrimPrefix(p, sys.Root) }
			if c.Plugin != nil {
				c.Config = "xla:" + unroot(c.Plugin.Path)
				for i := range c.Plugin.LibraryDirs {
					c.Plugin.LibraryDirs[i] = unroot(c.Plugin.LibraryDirs[i])
				}
			}
			if c.Config != tc.wantConfig {
				t.Errorf("Config = %q, want %q (reason: %s)", c.Config, tc.wantConfig, c.Reason)
			}
			if !strings.Contains(c.Reason, tc.wantReason) {
				t.Errorf("Reason = %q, want it to contain %q", c.Reason, tc.wantReason)
			}
			if !strings.HasPrefix(c.GPU, tc.wantGPU) {
				t.Errorf("GPU = %q, want prefix %q", c.GPU, tc.wantGPU)
			}
			if tc.wantSource == "" {
				if c.Plugin != nil {
					t.Errorf("Plugin = %+v, want none", c.Plugin)
				}
				return
			}
			if c.Plugin == nil || c.Plugin.Source != tc.wantSource || c.Plugin.CUDA != tc.wantCUDA {
				t.Fatalf("Plugin = %+v, want source %q, CUDA %d", c.Plugin, tc.wantSource, tc.wantCUDA)
			}
			if strings.Join(c.Plugin.LibraryDirs, ",") != strings.Join(tc.wantLibs, ",") {
				t.Errorf("LibraryDirs = %q, want %q", c.Plugin.LibraryDirs, tc.wantLibs)
			}
		})
	}
}

func TestNewPureGo(t *testing.T) {
	b, report, err := New(WithSystem(fakeSystem(t, nil, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	if report.Config != "go" || len(report.Devices) == 0 || !strings.Contains(report.Backend, "Go") {
		t.Errorf("backend %q, report %+v", b.Name(), report)
	}
	s := report.String()
	for _, want := range []string{"backend: go", "why:     pure-Go backend: no NVIDIA GPU found", "device 0:"} {
		if !strings.Contains(s, want) {
			t.Errorf("report %q lacks %q", s, want)
		}
	}
	if err := Check(b); err != nil {
		t.Errorf("Check: %v", err)
	}
}

func TestNewUnknownBackendIsAnError(t *testing.T) {
	_, _, err := New(WithSystem(fakeSystem(t, map[string]string{"GOMLX_BACKEND": "nosuch"}, nil)))
	if err == nil || !strings.Contains(err.Error(), `backend "nosuch" is not compiled into this program`) {
		t.Fatalf("err = %v", err)
	}
}

// A plugin that cannot be loaded (here: not a shared library) makes the automatic choice fall back to
// the pure-Go backend, saying why; the same plugin named in GOMLX_BACKEND is an error.
func TestNewFallsBackWhenPluginFails(t *testing.T) {
	t.Setenv("XLA_FLAGS", "") // New adds the autotuning cache's flag
	sys := fakeSystem(t, nil, with(nvidiaProc, map[string]string{goxla13Plugin: "not an ELF file"}))
	b, report, err := New(WithSystem(sys), WithoutReexec())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	if report.Config != "go" || !strings.Contains(report.Backend, "Go") || !strings.Contains(report.Fallback, "pjrt_c_api_cuda_plugin.so") {
		t.Errorf("backend %q, report = %+v", b.Name(), report)
	}
	if !strings.Contains(report.String(), "the chosen backend failed to start") {
		t.Errorf("report does not say it fell back:\n%s", report)
	}

	plugin := filepath.Join(sys.Root, goxla13Plugin)
	sys.LookupEnv = func(k string) (string, bool) {
		if k == EnvBackend {
			return "xla:" + plugin, true
		}
		return "", false
	}
	if _, _, err := New(WithSystem(sys)); err == nil || !strings.Contains(err.Error(), "GOMLX_BACKEND is set") {
		t.Errorf("New with a broken plugin in GOMLX_BACKEND: err = %v", err)
	}
}

// GPT_TF32 becomes go-xla's tf32 option on an XLA configuration (off unless asked, as in PyTorch); a
// bad value is an error naming it.
func TestTF32Option(t *testing.T) {
	t.Setenv("XLA_FLAGS", "")
	files := with(nvidiaProc, map[string]string{goxla13Plugin: "not an ELF file"})
	for _, tc := range []struct{ value, want string }{{"", ",tf32=false"}, {"0", ",tf32=false"}, {"off", ",tf32=false"}, {"1", ",tf32=true"}} {
		env := map[string]string{EnvTF32: tc.value}
		if tc.value == "" {
			env = nil // unset: full float32, as PyTorch
		}
		sys := fakeSystem(t, env, files)
		b, report, err := New(WithSystem(sys), WithoutReexec())
		if err != nil {
			t.Fatal(err)
		}
		b.Finalize()
		// The broken plugin fails to start: the fallback note quotes the configuration tried.
		if !strings.Contains(report.Fallback, tc.want) {
			t.Errorf("GPT_TF32=%s: fallback %q does not show %q", tc.value, report.Fallback, tc.want)
		}
	}
	sys := fakeSystem(t, map[string]string{EnvTF32: "maybe"}, files)
	if _, _, err := New(WithSystem(sys), WithoutReexec()); err == nil || !strings.Contains(err.Error(), "GPT_TF32") {
		t.Errorf("GPT_TF32=maybe: err = %v", err)
	}
	sys = fakeSystem(t, map[string]string{EnvXLAAsync: "sometimes"}, files)
	if _, _, err := New(WithSystem(sys), WithoutReexec()); err == nil || !strings.Contains(err.Error(), "GPT_XLA_ASYNC") {
		t.Errorf("GPT_XLA_ASYNC=sometimes: err = %v", err)
	}
}

// XLA's autotuning and executable caches are on by default, in the (fake) user cache folder, and GPT_XLA_CACHE=0
// turns it off.
func TestXLACacheDefault(t *testing.T) {
	files := with(nvidiaProc, map[string]string{goxla13Plugin: "not an ELF file"})
	for _, off := range []bool{false, true} {
		t.Setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
		env := map[string]string{}
		if off {
			env[EnvXLACache] = "0"
		}
		sys := fakeSystem(t, env, files)
		b, report, err := New(WithSystem(sys), WithoutReexec())
		if err != nil {
			t.Fatal(err)
		}
		b.Finalize()
		flags := os.Getenv("XLA_FLAGS")
		if off {
			if report.XLACache != "" || flags != "--xla_dump_to=/tmp/x" || executableCacheDir() != "" {
				t.Errorf("GPT_XLA_CACHE=0: cache %q, XLA_FLAGS %q, executables %q", report.XLACache, flags, executableCacheDir())
			}
			continue
		}
		if want := filepath.Join(report.XLACache, "executables"); slices.Contains(compute.List(), XLABackend) && executableCacheDir() != want {
			t.Errorf("executable cache in %q, want %q", executableCacheDir(), want)
		}
		if !strings.HasPrefix(report.XLACache, filepath.Join(sys.Root, "home/u/.cache/gonb-gpt/xla")) ||
			!strings.Contains(flags, "--xla_dump_to=/tmp/x --xla_gpu_per_fusion_autotune_cache_dir="+report.XLACache) {
			t.Errorf("default: cache %q, XLA_FLAGS %q", report.XLACache, flags)
		}
	}
}

// ForFloat32Training sends XLA CUDA's gemms to cuBLAS (Triton's gemm fusions off), unless XLA_FLAGS
// already chooses; without it, or on the pure-Go backend, XLA_FLAGS keeps XLA's default.
func TestForFloat32Training(t *testing.T) {
	cuda := with(nvidiaProc, map[string]string{goxla13Plugin: "not an ELF file"})
	for _, tc := range []struct {
		name         string
		files        map[string]string
		opt          bool
		flags, want  string
		reportsGemms bool
	}{
		{"float32 on CUDA", cuda, true, "--xla_dump_to=/tmp/x", "--xla_dump_to=/tmp/x " + tritonGemmFlag + "=false", true},
		{"no option", cuda, false, "--xla_dump_to=/tmp/x", "--xla_dump_to=/tmp/x", false},
		{"the user's choice stays", cuda, true, tritonGemmFlag + "=true", tritonGemmFlag + "=true", false},
		{"no GPU", nil, true, "", "", false},
	} {
		t.Setenv("XLA_FLAGS", tc.flags)
		opts := []Option{WithSystem(fakeSystem(t, map[string]string{EnvXLACache: "0"}, tc.files)), WithoutReexec()}
		if tc.opt {
			opts = append(opts, ForFloat32Training())
		}
		b, report, err := New(opts...)
		if err != nil {
			t.Fatal(err)
		}
		b.Finalize()
		if got := os.Getenv("XLA_FLAGS"); got != tc.want || (report.Gemms != "") != tc.reportsGemms {
			t.Errorf("%s: XLA_FLAGS %q, want %q; report's gemms %q", tc.name, got, tc.want, report.Gemms)
		}
	}
}
