package backend

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// nvidia-smi's answers to `nvidia-smi --query-gpu=index,uuid,name,compute_cap,memory.total,driver_version
// --format=csv,noheader,nounits` (fields as `nvidia-smi --help-query-gpu` documents them; memory in
// MiB; compute_cap exists since the 510-era drivers' nvidia-smi).
const (
	smiV100   = "0, GPU-6f2c9a4e-1b7d-3c5e-8a9f-0d1e2f3a4b5c, Tesla V100-SXM2-32GB, 7.0, 32768, 550.54.15\n"
	smiV100x2 = "0, GPU-6f2c9a4e-1b7d-3c5e-8a9f-0d1e2f3a4b5c, Tesla V100-SXM2-32GB, 7.0, 32768, 580.95.05\n" +
		"1, GPU-b3d1e7f0-2a4c-6e8b-9d0f-1a2b3c4d5e6f, Tesla V100-SXM2-32GB, 7.0, 32768, 580.95.05\n"
	smiT4       = "0, GPU-0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a, Tesla T4, 7.5, 15360, 580.95.05\n"
	smiA100     = "0, GPU-a1c2e3f4-5b6d-7e8f-9a0b-1c2d3e4f5a6b, NVIDIA A100-SXM4-80GB, 8.0, 81920, 580.95.05\n"
	smiH100     = "0, GPU-9e8d7c6b-5a4f-3e2d-1c0b-a9f8e7d6c5b4, NVIDIA H100 80GB HBM3, 9.0, 81559, 580.95.05\n"
	smiV100A100 = "0, GPU-6f2c9a4e-1b7d-3c5e-8a9f-0d1e2f3a4b5c, Tesla V100-SXM2-32GB, 7.0, 32768, 580.95.05\n" +
		"1, GPU-a1c2e3f4-5b6d-7e8f-9a0b-1c2d3e4f5a6b, NVIDIA A100-SXM4-80GB, 8.0, 81920, 580.95.05\n"
	// A driver of the 470 series: its nvidia-smi does not know compute_cap, so the answer is to the
	// query without it.
	smiOldV100 = "0, GPU-6f2c9a4e-1b7d-3c5e-8a9f-0d1e2f3a4b5c, Tesla V100-SXM2-16GB, 16160, 470.82.01\n"
)

// fakeSMI is a System.NvidiaSMI that answers the GPU query with csv. With oldDriver it behaves as
// the nvidia-smi of drivers older than the 510 series: asked for compute_cap it fails (exit status
// 2, `Field "compute_cap" is not a valid field to query.`), and csv answers the query without it.
func fakeSMI(csv string, oldDriver bool) func(args ...string) ([]byte, error) {
	return func(args ...string) ([]byte, error) {
		query := "--query-gpu=index,uuid,name,compute_cap,memory.total,driver_version"
		if oldDriver {
			query = "--query-gpu=index,uuid,name,memory.total,driver_version"
		}
		switch {
		case len(args) == 2 && args[0] == query && args[1] == "--format=csv,noheader,nounits":
			return []byte(csv), nil
		case oldDriver && strings.Contains(strings.Join(args, " "), "compute_cap"):
			return nil, errors.New(`nvidia-smi: exit status 2: Field "compute_cap" is not a valid field to query.`)
		}
		return nil, fmt.Errorf("fake nvidia-smi: unexpected arguments %q", args)
	}
}

// smiFailing is nvidia-smi when the driver sees no GPU (exit status 6).
func smiFailing(args ...string) ([]byte, error) {
	return nil, errors.New("nvidia-smi: exit status 6: No devices were found")
}

var procV100 = map[string]string{
	"/proc/driver/nvidia/version": "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.95.05  Release Build  (dvs-builder@U16-I3-B03-4-3)  Tue Sep 23 09:55:41 UTC 2025\n",
	"/proc/driver/nvidia/gpus/0000:00:04.0/information": "Model: \t\t Tesla V100-SXM2-32GB\nIRQ: \t\t 40\n" +
		"GPU UUID: \t GPU-6f2c9a4e-1b7d-3c5e-8a9f-0d1e2f3a4b5c\nBus Location: \t 0000:00:04.0\nDevice Minor: \t 0\n",
	"/proc/driver/nvidia/gpus/0000:00:05.0/information": "Model: \t\t Tesla V100-SXM2-32GB\nIRQ: \t\t 41\n" +
		"GPU UUID: \t GPU-b3d1e7f0-2a4c-6e8b-9d0f-1a2b3c4d5e6f\nBus Location: \t 0000:00:05.0\nDevice Minor: \t 1\n",
}

// visible sets CUDA_VISIBLE_DEVICES.
func visible(v string) map[string]string { return map[string]string{"CUDA_VISIBLE_DEVICES": v} }

func TestDetectGPUs(t *testing.T) {
	for _, tc := range []struct {
		name       string
		smi        func(args ...string) ([]byte, error)
		env        map[string]string
		files      map[string]string
		want       []string // "index name capability MiB"
		wantDriver string
		wantWhy    string // when no GPU is usable
	}{
		{name: "V100", smi: fakeSMI(smiV100, false), want: []string{"0 Tesla V100-SXM2-32GB 7.0 32768"}, wantDriver: "550.54.15"},
		{name: "2 V100", smi: fakeSMI(smiV100x2, false),
			want: []string{"0 Tesla V100-SXM2-32GB 7.0 32768", "1 Tesla V100-SXM2-32GB 7.0 32768"}, wantDriver: "580.95.05"},
		{name: "T4", smi: fakeSMI(smiT4, false), want: []string{"0 Tesla T4 7.5 15360"}},
		{name: "A100", smi: fakeSMI(smiA100, false), want: []string{"0 NVIDIA A100-SXM4-80GB 8.0 81920"}},
		{name: "H100", smi: fakeSMI(smiH100, false), want: []string{"0 NVIDIA H100 80GB HBM3 9.0 81559"}},
		{name: "V100 and A100", smi: fakeSMI(smiV100A100, false),
			want: []string{"0 Tesla V100-SXM2-32GB 7.0 32768", "1 NVIDIA A100-SXM4-80GB 8.0 81920"}},
		{name: "CUDA_VISIBLE_DEVICES by index", smi: fakeSMI(smiV100A100, false), env: visible("1"),
			want: []string{"1 NVIDIA A100-SXM4-80GB 8.0 81920"}},
		{name: "CUDA_VISIBLE_DEVICES by UUID", smi: fakeSMI(smiV100A100, false), env: visible("GPU-6f2c9a4e-1b7d-3c5e-8a9f-0d1e2f3a4b5c"),
			want: []string{"0 Tesla V100-SXM2-32GB 7.0 32768"}},
		{name: "CUDA_VISIBLE_DEVICES by UUID prefixes, reordered", smi: fakeSMI(smiV100A100, false), env: visible("GPU-a1c2, 6f2c"),
			want: []string{"1 NVIDIA A100-SXM4-80GB 8.0 81920", "0 Tesla V100-SXM2-32GB 7.0 32768"}},
		{name: "CUDA_VISIBLE_DEVICES stops at an entry matching no GPU", smi: fakeSMI(smiV100A100, false), env: visible("0,7,1"),
			want: []string{"0 Tesla V100-SXM2-32GB 7.0 32768"}},
		{name: "CUDA_VISIBLE_DEVICES=-1", smi: fakeSMI(smiV100A100, false), env: visible("-1"), wantWhy: "CUDA_VISIBLE_DEVICES hides every GPU"},
		{name: "CUDA_VISIBLE_DEVICES empty", smi: fakeSMI(smiV100A100, false), env: visible(""), wantWhy: "CUDA_VISIBLE_DEVICES hides every GPU"},
		{name: "CUDA_VISIBLE_DEVICES out of range", smi: fakeSMI(smiV100A100, false), env: visible("5"),
			wantWhy: `CUDA_VISIBLE_DEVICES="5" selects none of the 2 GPU(s)`},
		{name: "old driver without compute_cap: from the model name", smi: fakeSMI(smiOldV100, true),
			want: []string{"0 Tesla V100-SXM2-16GB 7.0 16160"}, wantDriver: "470.82.01"},
		{name: "no nvidia-smi: /proc/driver/nvidia", files: procV100,
			want: []string{"0 Tesla V100-SXM2-32GB 7.0 0", "1 Tesla V100-SXM2-32GB 7.0 0"}, wantDriver: "580.95.05"},
		{name: "no nvidia-smi: /proc and CUDA_VISIBLE_DEVICES by UUID", files: procV100, env: visible("GPU-b3d1"),
			want: []string{"1 Tesla V100-SXM2-32GB 7.0 0"}},
		{name: "nvidia-smi fails: /proc/driver/nvidia", smi: smiFailing, files: procV100,
			want: []string{"0 Tesla V100-SXM2-32GB 7.0 0", "1 Tesla V100-SXM2-32GB 7.0 0"}},
		{name: "nothing", wantWhy: "no NVIDIA GPU found"},
		{name: "device files only: a GPU, not listed", files: map[string]string{"/dev/nvidiactl": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sys := fakeSystem(t, tc.env, tc.files)
			sys.NvidiaSMI = tc.smi
			info := detectGPUs(sys)
			var got []string
			for _, g := range info.gpus {
				got = append(got, fmt.Sprintf("%d %s %s %d", g.Index, g.Name, g.ComputeCapability(), g.MemoryMiB))
			}
			if strings.Join(got, "; ") != strings.Join(tc.want, "; ") {
				t.Errorf("GPUs = %q, want %q", got, tc.want)
			}
			if tc.wantDriver != "" && info.driver != tc.wantDriver {
				t.Errorf("driver = %q, want %q", info.driver, tc.wantDriver)
			}
			if (info.summary == "") != (tc.wantWhy != "") || !strings.Contains(info.why, tc.wantWhy) {
				t.Errorf("summary %q, why %q; want why %q", info.summary, info.why, tc.wantWhy)
			}
		})
	}
}

func TestCapabilityOfModel(t *testing.T) {
	for name, want := range map[string]string{
		"Tesla V100-SXM2-32GB": "7.0", "Tesla V100-PCIE-16GB": "7.0", "Tesla T4": "7.5", "NVIDIA A10G": "8.6",
		"NVIDIA A10": "8.6", "NVIDIA A100-SXM4-80GB": "8.0", "NVIDIA A100 80GB PCIe": "8.0", "NVIDIA L4": "8.9",
		"NVIDIA H100 80GB HBM3": "9.0", "NVIDIA H200": "9.0", "NVIDIA GeForce RTX 3090": "8.6",
		"NVIDIA GeForce RTX 4090": "8.9", "Tesla P100-PCIE-16GB": "6.0", "Tesla K80": "3.7", "NVIDIA Mystery": "unknown",
	} {
		major, minor := capabilityOfModel(name)
		if got := (GPU{Major: major, Minor: minor}).ComputeCapability(); got != want {
			t.Errorf("capabilityOfModel(%q) = %s, want %s", name, got, want)
		}
	}
}

func TestGPUString(t *testing.T) {
	for _, tc := range []struct {
		gpu  GPU
		want string
	}{
		{GPU{Name: "Tesla V100-SXM2-32GB", Major: 7, MemoryMiB: 32768}, "Tesla V100-SXM2-32GB (compute capability 7.0, 32 GiB)"},
		{GPU{Name: "NVIDIA H100 80GB HBM3", Major: 9, MemoryMiB: 81559}, "NVIDIA H100 80GB HBM3 (compute capability 9.0, 80 GiB)"},
		{GPU{Name: "NVIDIA Mystery"}, "NVIDIA Mystery (compute capability unknown)"},
	} {
		if got := tc.gpu.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

// GPU lists of the tests, as detectGPUs returns them.
func gpusOf(t *testing.T, csv string) []GPU {
	t.Helper()
	gpus, err := parseSMI(csv, true)
	if err != nil {
		t.Fatal(err)
	}
	return gpus
}

func TestChoosePlugin(t *testing.T) {
	var (
		go13  = Plugin{Path: "/go-xla/nvidia/pjrt_c_api_cuda_plugin.so", Source: "go-xla", CUDA: 13}
		go12  = Plugin{Path: "/go-xla-cuda12/nvidia/pjrt_c_api_cuda_plugin.so", Source: "go-xla", CUDA: 12}
		jax13 = Plugin{Path: "/sp/jax_plugins/xla_cuda13/xla_cuda_plugin.so", Source: "jax", CUDA: 13}
		jax12 = Plugin{Path: "/sp/jax_plugins/xla_cuda12/xla_cuda_plugin.so", Source: "jax", CUDA: 12}
		env0  = Plugin{Path: "/opt/pjrt_c_api_cuda_plugin.so", Source: EnvPluginPath}
	)
	k80 := []GPU{{Name: "Tesla K80", Major: 3, Minor: 7, Driver: "470.82.01"}}
	for _, tc := range []struct {
		name    string
		gpus    []GPU
		driver  string
		plugins []Plugin
		want    string // the chosen plugin's path, "" for none
		reason  string
		skipped int
	}{
		{"V100: CUDA 12 of both", gpusOf(t, smiV100), "550.54.15", []Plugin{go13, go12, jax13, jax12}, go12.Path,
			"Tesla V100-SXM2-32GB (compute capability 7.0) needs CUDA 12 (CUDA 13 dropped < 7.5): go-xla plugin, CUDA 12", 2},
		{"2 V100: JAX's CUDA 12", gpusOf(t, smiV100x2), "580.95.05", []Plugin{jax13, jax12}, jax12.Path, "jax plugin xla_cuda12", 1},
		{"T4: CUDA 13 preferred", gpusOf(t, smiT4), "580.95.05", []Plugin{go12, go13}, go13.Path,
			"XLA CUDA: Tesla T4 (compute capability 7.5): CUDA 13 plugin preferred: go-xla plugin, CUDA 13", 0},
		{"A100: CUDA 13", gpusOf(t, smiA100), "580.95.05", []Plugin{jax12, go13}, go13.Path, "CUDA 13 plugin preferred", 0},
		{"H100: CUDA 13 preferred", gpusOf(t, smiH100), "580.95.05", []Plugin{go12, jax13}, jax13.Path,
			"NVIDIA H100 80GB HBM3 (compute capability 9.0): CUDA 13 plugin preferred: jax plugin xla_cuda13", 0},
		{"H100 only CUDA 12", gpusOf(t, smiH100), "580.95.05", []Plugin{go12}, go12.Path,
			"XLA CUDA: NVIDIA H100 80GB HBM3 (compute capability 9.0): go-xla plugin, CUDA 12", 0},
		{"H100 on driver 550: CUDA 13 skipped", gpusOf(t, smiH100), "550.54.15", []Plugin{go13, go12}, go12.Path, "go-xla plugin, CUDA 12", 1},
		{"V100 and A100: the V100 decides", gpusOf(t, smiV100A100), "580.95.05", []Plugin{go13, go12}, go12.Path,
			"Tesla V100-SXM2-32GB (compute capability 7.0, the lowest of 2 GPUs) needs CUDA 12", 1},
		{"V100 only CUDA 13: install CUDA 12", gpusOf(t, smiV100), "550.54.15", []Plugin{go13, jax13}, "",
			"pure-Go backend: Tesla V100-SXM2-32GB has compute capability 7.0, which CUDA 13 no longer supports, and only CUDA 13 plugins were found " +
				"(" + go13.Path + ", " + jax13.Path + "); install a CUDA 12 plugin: `gpt backend install cuda12` or `pip install \"jax[cuda12]\"`", 2},
		{"V100 no plugin: install CUDA 12", gpusOf(t, smiV100), "550.54.15", nil, "",
			"pure-Go backend: no PJRT CUDA plugin was found for Tesla V100-SXM2-32GB (compute capability 7.0); install a CUDA 12 plugin: `gpt backend install cuda12`", 0},
		{"H100 no plugin: install CUDA 13", gpusOf(t, smiH100), "580.95.05", nil, "", "install a CUDA 13 plugin: `gpt backend install cuda13`", 0},
		{"K80: nothing runs", k80, "470.82.01", []Plugin{go12, go13}, "",
			"none of the PJRT CUDA plugins found can run on Tesla K80 (compute capability 3.7)", 2},
		{"unknown capability: CUDA 13 assumed to run", nil, "", []Plugin{go12, go13}, go13.Path,
			"XLA CUDA: the NVIDIA GPU (compute capability unknown, assumed 7.5 or newer): CUDA 13 plugin preferred", 0},
		{"H100: unknown CUDA version ranks with CUDA 13, in source order", gpusOf(t, smiH100), "580.95.05", []Plugin{env0, go13}, env0.Path,
			"PJRT_PLUGIN_LIBRARY_PATH plugin, CUDA version unknown", 0},
		{"V100: unknown CUDA version after CUDA 12", gpusOf(t, smiV100), "550.54.15", []Plugin{env0, go12}, go12.Path, "go-xla plugin, CUDA 12", 0},
		{"V100: unknown CUDA version when nothing else runs", gpusOf(t, smiV100), "550.54.15", []Plugin{env0, go13}, env0.Path,
			"needs CUDA 12 (CUDA 13 dropped < 7.5): PJRT_PLUGIN_LIBRARY_PATH plugin, CUDA version unknown", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pick := choosePlugin(tc.gpus, tc.driver, tc.plugins)
			got := ""
			if pick.plugin != nil {
				got = pick.plugin.Path
			}
			if got != tc.want || !strings.Contains(pick.reason, tc.reason) || len(pick.skipped) != tc.skipped {
				t.Errorf("choosePlugin = %q, %q, skipped %q; want %q, reason with %q, %d skipped", got, pick.reason, pick.skipped, tc.want, tc.reason, tc.skipped)
			}
		})
	}
}
