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
			wantReason: "no PJRT CUDA plugin was found", wantGPU: "NVIDIA H100 80GB HBM3 (2 GPU(s)",
		},
		{
			name: "GPU device files only", files: map[string]string{"/dev/nvidia0": "", "/home/u/.local/lib/go-xla/pjrt_c_api_cuda_plugin.so": "elf"},
			wantConfig: "xla:/home/u/.local/lib/go-xla/pjrt_c_api_cuda_plugin.so", wantSource: "go-xla", wantGPU: "NVIDIA device files in /dev",
		},
		{
			name: "go-xla install in home", files: with(nvidiaProc, map[string]string{"/home/u/.local/lib/go-xla/pjrt_c_api_cuda_plugin.so": "elf"}),
			wantConfig: "xla:/home/u/.local/lib/go-xla/pjrt_c_api_cuda_plugin.so", wantReason: "XLA CUDA", wantSource: "go-xla",
		},
		{
			name: "system go-xla install", files: with(nvidiaProc, map[string]string{"/usr/local/lib/go-xla/pjrt_c_api_cuda_plugin.so": "elf"}),
			wantConfig: "xla:/usr/local/lib/go-xla/pjrt_c_api_cuda_plugin.so", wantSource: "go-xla",
		},
		{
			name: "JAX plugin in a virtualenv, newest CUDA first, with its NVIDIA libraries",
			env:  map[string]string{"VIRTUAL_ENV": "/venv"}, files: with(nvidiaProc, jaxFiles),
			wantConfig: "xla:" + jaxSP + "/jax_plugins/xla_cuda13/xla_cuda_plugin.so", wantSource: "jax",
			wantLibs: []string{jaxSP + "/nvidia/cublas/lib", jaxSP + "/nvidia/cudnn/lib"},
		},
		{
			name: "JAX plugin through GPT_SITE_PACKAGES", env: map[string]string{"GPT_SITE_PACKAGES": jaxSP},
			files: with(nvidiaProc, jaxFiles), wantConfig: "xla:" + jaxSP + "/jax_plugins/xla_cuda13/xla_cuda_plugin.so", wantSource: "jax",
			wantLibs: []string{jaxSP + "/nvidia/cublas/lib", jaxSP + "/nvidia/cudnn/lib"},
		},
		{
			name: "JAX plugin in the user's site-packages", files: with(nvidiaProc, map[string]string{
				"/home/u/.local/lib/python3.11/site-packages/jax_plugins/xla_cuda13/xla_cuda_plugin.so": "elf"}),
			wantConfig: "xla:/home/u/.local/lib/python3.11/site-packages/jax_plugins/xla_cuda13/xla_cuda_plugin.so", wantSource: "jax",
		},
		{
			name: "PJRT_PLUGIN_LIBRARY_PATH before go-xla and JAX",
			env:  map[string]string{"PJRT_PLUGIN_LIBRARY_PATH": "/opt/pjrt", "VIRTUAL_ENV": "/venv"},
			files: with(with(nvidiaProc, jaxFiles), map[string]string{
				"/opt/pjrt/pjrt_c_api_cuda_plugin.so":                 "elf",
				"/home/u/.local/lib/go-xla/pjrt_c_api_cuda_plugin.so": "elf"}),
			wantConfig: "xla:/opt/pjrt/pjrt_c_api_cuda_plugin.so", wantSource: "PJRT_PLUGIN_LIBRARY_PATH",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sys := fakeSystem(t, tc.env, tc.files)
			c := Discover(sys)
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
			if c.Plugin == nil || c.Plugin.Source != tc.wantSource {
				t.Fatalf("Plugin = %+v, want source %q", c.Plugin, tc.wantSource)
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
	sys := fakeSystem(t, nil, with(nvidiaProc, map[string]string{"/home/u/.local/lib/go-xla/pjrt_c_api_cuda_plugin.so": "not an ELF file"}))
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

	plugin := filepath.Join(sys.Root, "home/u/.local/lib/go-xla/pjrt_c_api_cuda_plugin.so")
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
	files := with(nvidiaProc, map[string]string{"/home/u/.local/lib/go-xla/pjrt_c_api_cuda_plugin.so": "not an ELF file"})
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
	files := with(nvidiaProc, map[string]string{"/home/u/.local/lib/go-xla/pjrt_c_api_cuda_plugin.so": "not an ELF file"})
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
