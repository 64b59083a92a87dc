package backend

import (
	"strings"
	"testing"
)

// The precision, bf16 and attention answers on the GPU lists of a CUDA backend (nil: unknown GPUs).
func TestGPUAnswers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		gpus      []GPU
		precision string
		why       string
		bf16Err   string // "" when bf16 is fine
		flash     bool
	}{
		{"V100", gpusOf(t, smiV100), "fp16", "Tesla V100-SXM2-32GB has compute capability 7.0: no bfloat16",
			"bf16 needs a GPU of compute capability 8.0 (Ampere) or newer, and Tesla V100-SXM2-32GB has 7.0", false},
		{"2 V100", gpusOf(t, smiV100x2), "fp16", "Tesla V100-SXM2-32GB", "use --fp16", false},
		{"T4", gpusOf(t, smiT4), "fp16", "Tesla T4 has compute capability 7.5", "Tesla T4 has 7.5", false},
		{"A100", gpusOf(t, smiA100), "bf16", "NVIDIA A100-SXM4-80GB has compute capability 8.0, with bfloat16", "", true},
		{"H100", gpusOf(t, smiH100), "bf16", "NVIDIA H100 80GB HBM3 has compute capability 9.0", "", true},
		{"V100 and A100", gpusOf(t, smiV100A100), "fp16", "Tesla V100-SXM2-32GB", "Tesla V100-SXM2-32GB has 7.0", false},
		{"unknown GPUs", nil, "bf16", "compute capability is unknown", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			precision, why := defaultPrecision(tc.gpus, true, "")
			if precision != tc.precision || !strings.Contains(why, tc.why) {
				t.Errorf("defaultPrecision = %s (%s), want %s (%s)", precision, why, tc.precision, tc.why)
			}
			err := checkBF16(tc.gpus)
			if (err == nil) != (tc.bf16Err == "") || err != nil && !strings.Contains(err.Error(), tc.bf16Err) {
				t.Errorf("checkBF16 = %v, want %q", err, tc.bf16Err)
			}
			ok, why := flashAttention(tc.gpus)
			if ok != tc.flash || ok != (why == "") || !ok && !strings.Contains(why, "cuDNN flash attention needs 8.0 (Ampere)") {
				t.Errorf("flashAttention = %v, %q, want %v", ok, why, tc.flash)
			}
		})
	}
	if precision, why := defaultPrecision(nil, false, "pure-Go"); precision != "fp32" || !strings.Contains(why, "pure-Go backend runs on the CPU") {
		t.Errorf("defaultPrecision on the CPU = %s (%s)", precision, why)
	}
}

// The exported answers go through the registry New fills; a backend New did not make on CUDA is a
// CPU backend.
func TestGPUsOf(t *testing.T) {
	b, _, err := New(WithSystem(fakeSystem(t, nil, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	if gpus := GPUsOf(b); gpus != nil {
		t.Errorf("GPUsOf(pure-Go) = %v", gpus)
	}
	if p, why := DefaultPrecision(b); p != "fp32" || !strings.Contains(why, "pure-Go") {
		t.Errorf("DefaultPrecision(pure-Go) = %s (%s)", p, why)
	}
	if err := CheckBF16(b); err != nil {
		t.Errorf("CheckBF16(pure-Go) = %v", err)
	}
	if ok, why := FlashAttention(b); !ok || why != "" {
		t.Errorf("FlashAttention(pure-Go) = %v, %q", ok, why)
	}

	// Pretend New started b on a V100.
	registerCUDA(b, gpusOf(t, smiV100))
	if gpus := GPUsOf(b); len(gpus) != 1 || gpus[0].Name != "Tesla V100-SXM2-32GB" {
		t.Errorf("GPUsOf = %v", gpus)
	}
	if p, _ := DefaultPrecision(b); p != "fp16" {
		t.Errorf("DefaultPrecision(V100) = %s", p)
	}
	if err := CheckBF16(b); err == nil || !strings.Contains(err.Error(), "--fp16") {
		t.Errorf("CheckBF16(V100) = %v", err)
	}
	if ok, why := FlashAttention(b); ok || !strings.Contains(why, "Tesla V100-SXM2-32GB has compute capability 7.0") {
		t.Errorf("FlashAttention(V100) = %v, %q", ok, why)
	}
	if p, _ := DefaultPrecision(nil); p != "fp32" {
		t.Errorf("DefaultPrecision(nil) = %s", p)
	}
}

func TestReportGPULines(t *testing.T) {
	for _, tc := range []struct {
		name   string
		report Report
		want   []string
	}{
		{
			name: "V100 on CUDA 12",
			report: Report{Choice: Choice{Config: "xla:/g/nvidia/pjrt_c_api_cuda_plugin.so,tf32=false", GPUs: gpusOf(t, smiV100x2), Driver: "580.95.05",
				Plugin: &Plugin{Path: "/g/nvidia/pjrt_c_api_cuda_plugin.so", Source: "go-xla", CUDA: 12}}},
			want: []string{
				"gpu 0:   Tesla V100-SXM2-32GB (compute capability 7.0, 32 GiB)\n",
				"gpu 1:   Tesla V100-SXM2-32GB (compute capability 7.0, 32 GiB)\n",
				"driver:  580.95.05\n",
				"plugin:  /g/nvidia/pjrt_c_api_cuda_plugin.so (go-xla, CUDA 12)\n",
				"attention: eager (Tesla V100-SXM2-32GB has compute capability 7.0; cuDNN flash attention needs 8.0 (Ampere))\n",
				"precision: fp16 by default (Tesla V100-SXM2-32GB has compute capability 7.0: no bfloat16",
			},
		},
		{
			name: "H100 on CUDA 13",
			report: Report{Choice: Choice{Config: "xla:/sp/jax_plugins/xla_cuda13/xla_cuda_plugin.so", GPUs: gpusOf(t, smiH100),
				Plugin: &Plugin{Path: "/sp/jax_plugins/xla_cuda13/xla_cuda_plugin.so", Source: "jax", CUDA: 13}}},
			want: []string{
				"gpu 0:   NVIDIA H100 80GB HBM3 (compute capability 9.0, 80 GiB)\n",
				"plugin:  /sp/jax_plugins/xla_cuda13/xla_cuda_plugin.so (jax, CUDA 13)\n",
				"attention: cuDNN flash attention available (bf16/fp16)\n",
				"precision: bf16 by default (NVIDIA H100 80GB HBM3 has compute capability 9.0",
			},
		},
		{
			name:   "fell back to the pure-Go backend",
			report: Report{Choice: Choice{Config: "go", GPUs: gpusOf(t, smiV100)}, Fallback: "boom"},
			want:   []string{"gpu 0:   Tesla V100-SXM2-32GB", "precision: fp32 by default (the pure-Go backend runs on the CPU"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.report.String()
			for _, w := range tc.want {
				if !strings.Contains(s, w) {
					t.Errorf("report lacks %q:\n%s", w, s)
				}
			}
			if tc.report.Fallback != "" && strings.Contains(s, "attention:") {
				t.Errorf("report after a fallback shows the GPU's attention path:\n%s", s)
			}
		})
	}
}
