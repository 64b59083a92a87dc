package backend

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// GPU is one NVIDIA GPU visible to CUDA.
type GPU struct {
	Index        int    // nvidia-smi's index
	UUID         string // "GPU-…" ("" if unknown)
	Name         string // "Tesla V100-SXM2-32GB"
	Major, Minor int    // compute capability (0, 0: unknown)
	MemoryMiB    int    // 0: unknown
	Driver       string // driver version, "" if unknown
}

// known reports whether the compute capability is known.
func (g GPU) known() bool { return g.Major > 0 }

// atLeast reports whether the compute capability is known and at least major.minor.
func (g GPU) atLeast(major, minor int) bool {
	return g.known() && (g.Major > major || g.Major == major && g.Minor >= minor)
}

// ComputeCapability returns the compute capability as nvidia-smi prints it ("7.0"), or "unknown".
func (g GPU) ComputeCapability() string {
	if !g.known() {
		return "unknown"
	}
	return fmt.Sprintf("%d.%d", g.Major, g.Minor)
}

// HasBF16 reports whether the GPU computes in bfloat16: compute capability 8.0 (Ampere) or newer.
// It is false when the capability is unknown.
func (g GPU) HasBF16() bool { return g.atLeast(8, 0) }

// HasFlashAttention reports whether XLA can use cuDNN's fused (flash) attention on the GPU: it
// needs compute capability 8.0 (Ampere) or newer. It is false when the capability is unknown.
func (g GPU) HasFlashAttention() bool { return g.atLeast(8, 0) }

// String describes the GPU: "Tesla V100-SXM2-32GB (compute capability 7.0, 32 GiB)".
func (g GPU) String() string {
	name := g.Name
	if name == "" {
		name = "NVIDIA GPU"
	}
	s := name + " (compute capability " + g.ComputeCapability()
	if g.MemoryMiB > 0 {
		s += fmt.Sprintf(", %.0f GiB", math.Round(float64(g.MemoryMiB)/1024))
	}
	return s + ")"
}

// label names the GPU with its compute capability: "Tesla V100-SXM2-32GB (compute capability 7.0)".
func (g GPU) label() string {
	return fmt.Sprintf("%s (compute capability %s)", gpuName(g), g.ComputeCapability())
}

// hasCapability says the GPU's compute capability: "Tesla V100-SXM2-32GB has compute capability 7.0".
func hasCapability(g GPU) string {
	return gpuName(g) + " has compute capability " + g.ComputeCapability()
}

// weakest returns the GPU with the lowest known compute capability; ok is false when no GPU's
// capability is known. A GPU of unknown capability is assumed new enough, as everywhere in this
// package.
func weakest(gpus []GPU) (w GPU, ok bool) {
	for _, g := range gpus {
		if g.known() && (!ok || !g.atLeast(w.Major, w.Minor)) {
			w, ok = g, true
		}
	}
	return w, ok
}

// gpuInfo is what detectGPUs finds.
type gpuInfo struct {
	gpus    []GPU  // the GPUs visible to CUDA (nil when none, or when none could be listed)
	summary string // one line on the GPUs; "" when there is no usable GPU
	driver  string // NVIDIA driver version ("" if unknown)
	why     string // why there is no usable GPU (when summary is "")
}

// smiFields is the nvidia-smi query (see `nvidia-smi --help-query-gpu`); drivers older than the
// 510 series do not know compute_cap, and smiFieldsOld is asked instead.
const (
	smiFields    = "index,uuid,name,compute_cap,memory.total,driver_version"
	smiFieldsOld = "index,uuid,name,memory.total,driver_version"
	smiFormat    = "--format=csv,noheader,nounits"
)

// smiAnswers keeps nvidia-smi's answers for the process's lifetime: the GPUs do not change, and
// [New] (which runs discovery) is called by every notebook cell that needs a backend.
var smiAnswers = struct {
	sync.Mutex
	byArgs map[string]smiAnswer
}{byArgs: map[string]smiAnswer{}}

type smiAnswer struct {
	out []byte
	err error
}

// runNvidiaSMI runs nvidia-smi on the host, for at most 10 seconds, once per set of arguments.
func runNvidiaSMI(args ...string) ([]byte, error) {
	key := strings.Join(args, "\x00")
	smiAnswers.Lock()
	defer smiAnswers.Unlock()
	if a, ok := smiAnswers.byArgs[key]; ok {
		return a.out, a.err
	}
	out, err := execNvidiaSMI(args...)
	smiAnswers.byArgs[key] = smiAnswer{out, err}
	return out, err
}

func execNvidiaSMI(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nvidia-smi", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if msg := strings.TrimSpace(string(out) + " " + stderr.String()); msg != "" {
			err = fmt.Errorf("%w: %s", err, msg)
		}
		return nil, fmt.Errorf("nvidia-smi %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

// detectGPUs lists the NVIDIA GPUs visible to CUDA: from nvidia-smi when it runs, else from
// /proc/driver/nvidia/gpus (compute capability from the model name), in CUDA_VISIBLE_DEVICES's
// selection and order. A GPU may be present but not listed (only /dev/nvidia* or the driver's
// version file): then summary is set and gpus is nil.
func detectGPUs(sys System) gpuInfo {
	visible, restricted := sys.lookupEnv("CUDA_VISIBLE_DEVICES")
	visible = strings.TrimSpace(visible)
	if restricted && (visible == "" || visible == "-1") {
		return gpuInfo{why: "CUDA_VISIBLE_DEVICES hides every GPU"}
	}
	var info gpuInfo
	all, err := smiGPUs(sys)
	procDriver, procLine := procDriverVersion(sys)
	if err != nil || len(all) == 0 {
		all = procGPUs(sys, procDriver)
	}
	info.driver = procDriver
	if len(all) > 0 && all[0].Driver != "" {
		info.driver = all[0].Driver
	}
	if len(all) > 0 {
		info.gpus = all
		if restricted {
			info.gpus = selectVisible(all, visible)
			if len(info.gpus) == 0 {
				info.why = fmt.Sprintf("CUDA_VISIBLE_DEVICES=%q selects none of the %d GPU(s)", visible, len(all))
				return info
			}
		}
		info.summary = summarize(info.gpus, info.driver)
		return info
	}
	switch {
	case procLine != "":
		info.summary = "NVIDIA driver: " + procLine
	case sys.exists("/dev/nvidiactl") || len(sys.glob("/dev/nvidia[0-9]*")) > 0:
		info.summary = "NVIDIA device files in /dev"
	default:
		info.why = "no NVIDIA GPU found (no nvidia-smi, no /proc/driver/nvidia, no /dev/nvidia*)"
	}
	return info
}

// summarize describes GPUs in one line: "2× NVIDIA H100 80GB HBM3 (compute capability 9.0,
// 80 GiB); driver 580.95.05".
func summarize(gpus []GPU, driver string) string {
	var parts []string
	counts := map[string]int{}
	for _, g := range gpus {
		s := g.String()
		if counts[s] == 0 {
			parts = append(parts, s)
		}
		counts[s]++
	}
	for i, s := range parts {
		if n := counts[s]; n > 1 {
			parts[i] = fmt.Sprintf("%d× %s", n, s)
		}
	}
	s := strings.Join(parts, ", ")
	if driver != "" {
		s += "; driver " + driver
	}
	return s
}

// smiGPUs lists the GPUs with nvidia-smi, retrying without compute_cap for old drivers (which
// print `Field "compute_cap" is not a valid field to query.` and exit with status 2); the
// capability then comes from the model name.
func smiGPUs(sys System) ([]GPU, error) {
	if sys.NvidiaSMI == nil {
		return nil, fmt.Errorf("nvidia-smi: not available")
	}
	out, err := sys.NvidiaSMI("--query-gpu="+smiFields, smiFormat)
	if err == nil {
		return parseSMI(string(out), true)
	}
	if errors.Is(err, exec.ErrNotFound) {
		return nil, err
	}
	out, errOld := sys.NvidiaSMI("--query-gpu="+smiFieldsOld, smiFormat)
	if errOld != nil {
		return nil, err
	}
	return parseSMI(string(out), false)
}

// parseSMI parses nvidia-smi's CSV lines ("0, GPU-…, Tesla V100-SXM2-32GB, 7.0, 32768, 535.104.05";
// without the capability when withCC is false). A value nvidia-smi does not know ("[N/A]") is left
// zero; the capability is then looked up by the model name.
func parseSMI(out string, withCC bool) ([]GPU, error) {
	tail := 2 // memory.total, driver_version
	if withCC {
		tail = 3
	}
	var gpus []GPU
	for line := range strings.SplitSeq(out, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(line, ",")
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		if len(f) < 3+tail {
			return nil, fmt.Errorf("nvidia-smi: unexpected line %q", line)
		}
		index, err := strconv.Atoi(f[0])
		if err != nil {
			return nil, fmt.Errorf("nvidia-smi: unexpected GPU index in %q", line)
		}
		rest := f[len(f)-tail:]
		g := GPU{Index: index, UUID: f[1], Name: strings.Join(f[2:len(f)-tail], ", ")}
		if withCC {
			g.Major, g.Minor = parseCapability(rest[0])
			rest = rest[1:]
		}
		g.MemoryMiB, _ = strconv.Atoi(rest[0])
		if strings.HasPrefix(rest[1], "[") { // "[N/A]"
			rest[1] = ""
		}
		g.Driver = rest[1]
		if !g.known() {
			g.Major, g.Minor = capabilityOfModel(g.Name)
		}
		gpus = append(gpus, g)
	}
	return gpus, nil
}

// parseCapability parses "7.0"; (0, 0) when it is not a capability ("[N/A]").
func parseCapability(s string) (major, minor int) {
	a, b, ok := strings.Cut(s, ".")
	major, err1 := strconv.Atoi(a)
	minor, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || major <= 0 {
		return 0, 0
	}
	return major, minor
}

// modelCapabilities maps model names (one word of the GPU's name, before any "-") to compute
// capabilities, for drivers whose nvidia-smi cannot report it (NVIDIA's CUDA GPUs list).
var modelCapabilities = map[string][2]int{
	"K80": {3, 7}, "P100": {6, 0}, "P40": {6, 1}, "P4": {6, 1}, "V100": {7, 0}, "T4": {7, 5},
	"A100": {8, 0}, "A30": {8, 0}, "A10": {8, 6}, "A10G": {8, 6}, "L4": {8, 9}, "L40": {8, 9},
	"L40S": {8, 9}, "H100": {9, 0}, "H200": {9, 0}, "GH200": {9, 0},
}

// rtxCapabilities maps GeForce RTX series (the model number's thousands) to compute capabilities.
var rtxCapabilities = map[int][2]int{2: {7, 5}, 3: {8, 6}, 4: {8, 9}}

// capabilityOfModel guesses the compute capability from a GPU name ("Tesla V100-SXM2-16GB",
// "NVIDIA GeForce RTX 3090"); (0, 0) when the model is not in the table.
func capabilityOfModel(name string) (major, minor int) {
	words := strings.Fields(strings.ToUpper(name))
	for i, w := range words {
		model, _, _ := strings.Cut(w, "-")
		if c, ok := modelCapabilities[model]; ok {
			return c[0], c[1]
		}
		if w == "RTX" && i+1 < len(words) {
			if n, err := strconv.Atoi(words[i+1]); err == nil && n >= 1000 && n < 10000 {
				if c, ok := rtxCapabilities[n/1000]; ok {
					return c[0], c[1]
				}
			}
		}
	}
	return 0, 0
}

// reDriverVersion finds the version in /proc/driver/nvidia/version's first line ("NVRM version:
// NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 …", or "… Open Kernel Module for x86_64
// 580.95.05  Release Build …").
var reDriverVersion = regexp.MustCompile(`Kernel Module(?: for \S+)?\s+(\d+\.\d+(?:\.\d+)?)`)

// procDriverVersion reads the driver's version file: the version ("" if not found) and the file's
// first line ("" when there is no file).
func procDriverVersion(sys System) (version, line string) {
	data, err := os.ReadFile(sys.path("/proc/driver/nvidia/version"))
	if err != nil {
		return "", ""
	}
	line, _, _ = strings.Cut(string(data), "\n")
	line = strings.TrimSpace(line)
	if m := reDriverVersion.FindStringSubmatch(line); m != nil {
		version = m[1]
	}
	return version, line
}

// procGPUs lists the GPUs the driver describes in /proc/driver/nvidia/gpus/*/information ("Model:",
// "GPU UUID:"), in PCI bus order as nvidia-smi numbers them.
func procGPUs(sys System, driver string) []GPU {
	var gpus []GPU
	for i, file := range sys.glob("/proc/driver/nvidia/gpus/*/information") {
		data, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		g := GPU{Index: i, Driver: driver}
		for l := range strings.SplitSeq(string(data), "\n") {
			key, value, ok := strings.Cut(l, ":")
			switch key = strings.TrimSpace(key); {
			case !ok:
			case key == "Model":
				g.Name = strings.TrimSpace(value)
			case key == "GPU UUID":
				g.UUID = strings.TrimSpace(value)
			}
		}
		g.Major, g.Minor = capabilityOfModel(g.Name)
		gpus = append(gpus, g)
	}
	return gpus
}

// selectVisible applies CUDA_VISIBLE_DEVICES to the GPUs, as CUDA does: a comma list of indices or
// UUIDs (a unique prefix of "GPU-…", with or without "GPU-") selects and orders the GPUs; the first
// entry that matches no GPU ends the list. MIG instances ("MIG-…") cannot be mapped to their GPU
// here: then every GPU is kept.
func selectVisible(all []GPU, visible string) []GPU {
	var out []GPU
	for _, entry := range strings.Split(visible, ",") {
		entry = strings.TrimSpace(entry)
		if strings.HasPrefix(strings.ToUpper(entry), "MIG-") {
			return all
		}
		g, ok := findGPU(all, entry)
		if !ok {
			break
		}
		if !containsIndex(out, g.Index) {
			out = append(out, g)
		}
	}
	return out
}

func findGPU(all []GPU, entry string) (GPU, bool) {
	if n, err := strconv.Atoi(entry); err == nil {
		for _, g := range all {
			if g.Index == n {
				return g, true
			}
		}
		return GPU{}, false
	}
	prefix := strings.ToLower(entry)
	if !strings.HasPrefix(prefix, "gpu-") {
		prefix = "gpu-" + prefix
	}
	var found []GPU
	for _, g := range all {
		if g.UUID != "" && strings.HasPrefix(strings.ToLower(g.UUID), prefix) {
			found = append(found, g)
		}
	}
	if len(found) != 1 {
		return GPU{}, false
	}
	return found[0], true
}

func containsIndex(gpus []GPU, index int) bool {
	for _, g := range gpus {
		if g.Index == index {
			return true
		}
	}
	return false
}
