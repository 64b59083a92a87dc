// Package tensorfile reads and writes the files Hugging Face checkpoints come in: safetensors
// (single or sharded) and PyTorch's pytorch_model.bin in both of torch.save's formats — the zip
// archive of torch ≥ 1.6 and the legacy (pre-1.6) stream of pickles and raw storages, which older
// hub checkpoints such as ruGPT-3's use. Pickles are read with an allow-list of classes, so nothing
// in the file runs, and every size the file states is checked against the file before anything
// is allocated. Only torch < 0.4's tar format is refused (ErrTorchTarFormat). Tensors are float32
// in memory, whatever they were stored as.
package tensorfile

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gonb-gpt/tutorial/lib/fileutil"
)

// Tensor is a weight read from or written to a checkpoint file, converted to float32.
type Tensor struct {
	Shape []int
	Data  []float32
	// DType is the type it was stored as ("F32", "F16", "BF16", "F64").
	DType string
}

// Numel is the number of elements of a shape (an error when implausible: negative or over 2³¹).
func Numel(shape []int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 || (d > 0 && n > math.MaxInt32/d) {
			return 0, fmt.Errorf("shape %v is not plausible", shape)
		}
		n *= d
	}
	return n, nil
}

// maxHeader caps a safetensors header (the format's own limit is 100 MB).
const maxHeader = 100 << 20

type stEntry struct {
	DType       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// ReadSafetensors reads every tensor of a .safetensors file as float32. The header is checked
// against the file's size before anything is allocated, so a truncated or lying file is an error,
// never a huge allocation. (go-huggingface's reader needs a hub.Repo and has no writer, hence this
// small one.)
func ReadSafetensors(path string) (map[string]*Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	out, err := readSafetensors(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	return out, nil
}

func readSafetensors(r io.ReaderAt, size int64) (map[string]*Tensor, error) {
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("reading the header size: %w", err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > maxHeader || int64(n) > size-8 {
		return nil, fmt.Errorf("header of %d bytes does not fit in a file of %d bytes", n, size)
	}
	header := make([]byte, n)
	if _, err := r.ReadAt(header, 8); err != nil {
		return nil, fmt.Errorf("reading the header: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(header, &raw); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	dataStart := 8 + int64(n)
	dataSize := size - dataStart
	out := make(map[string]*Tensor, len(raw))
	for name, msg := range raw {
		if name == "__metadata__" {
			continue
		}
		var e stEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		count, err := Numel(e.Shape)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		elem := map[string]int64{"F32": 4, "F16": 2, "BF16": 2, "F64": 8}[e.DType]
		if elem == 0 {
			return nil, fmt.Errorf("tensor %q: dtype %q is not supported (F32, F16, BF16, F64)", name, e.DType)
		}
		s, end := e.DataOffsets[0], e.DataOffsets[1]
		if s < 0 || end < s || end > dataSize || end-s != int64(count)*elem {
			return nil, fmt.Errorf("tensor %q: data_offsets %v do not hold %d×%d bytes within %d bytes of data", name, e.DataOffsets, count, elem, dataSize)
		}
		buf := make([]byte, end-s)
		if _, err := r.ReadAt(buf, dataStart+s); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		t := &Tensor{Shape: e.Shape, DType: e.DType, Data: make([]float32, count)}
		for i := range count {
			switch e.DType {
			case "F32":
				t.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
			case "F16":
				t.Data[i] = halfToFloat32(binary.LittleEndian.Uint16(buf[2*i:]))
			case "BF16":
				t.Data[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(buf[2*i:])) << 16)
			case "F64":
				t.Data[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(buf[8*i:])))
			}
		}
		out[name] = t
	}
	return out, nil
}

// WriteSafetensors writes float32 tensors as a .safetensors file (atomically), names in sorted
// order, the header padded to 8 bytes, with metadata {"format": "pt"} as transformers writes it.
func WriteSafetensors(path string, tensors map[string]*Tensor) error {
	names := make([]string, 0, len(tensors))
	for n := range tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	header := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var offset int64
	for _, n := range names {
		t := tensors[n]
		count, err := Numel(t.Shape)
		if err != nil || count != len(t.Data) {
			return fmt.Errorf("safetensors: tensor %q: shape %v does not match %d values", n, t.Shape, len(t.Data))
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[n] = stEntry{DType: "F32", Shape: shape, DataOffsets: [2]int64{offset, offset + 4*int64(count)}}
		offset += 4 * int64(count)
	}
	hdr, err := json.Marshal(header)
	if err != nil {
		return err
	}
	for len(hdr)%8 != 0 {
		hdr = append(hdr, ' ')
	}
	return fileutil.WriteAtomic(path, 0o644, func(w io.Writer) error {
		var lenBuf [8]byte
		binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(hdr)))
		if _, err := w.Write(lenBuf[:]); err != nil {
			return err
		}
		if _, err := w.Write(hdr); err != nil {
			return err
		}
		buf := make([]byte, 0, 1<<16)
		for _, n := range names {
			for _, v := range tensors[n].Data {
				buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
				if len(buf) >= 1<<16-4 {
					if _, err := w.Write(buf); err != nil {
						return err
					}
					buf = buf[:0]
				}
			}
		}
		_, err := w.Write(buf)
		return err
	})
}

// ReadSafetensorsIndex reads a sharded checkpoint through its *.safetensors.index.json.
func ReadSafetensorsIndex(indexPath string) (map[string]*Tensor, error) {
	data, err := os.ReadFile(indexPath)
	if err != nil {
		return nil, fmt.Errorf("safetensors index: %w", err)
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("safetensors index %s: %w", indexPath, err)
	}
	files := map[string]bool{}
	for _, f := range idx.WeightMap {
		files[f] = true
	}
	out := map[string]*Tensor{}
	for f := range files {
		if strings.Contains(f, "..") || filepath.IsAbs(f) {
			return nil, fmt.Errorf("safetensors index %s: shard %q is outside the folder", indexPath, f)
		}
		part, err := ReadSafetensors(filepath.Join(filepath.Dir(indexPath), f))
		if err != nil {
			return nil, err
		}
		for k, v := range part {
			out[k] = v
		}
	}
	return out, nil
}

// Read reads a checkpoint file by its kind: *.safetensors, *.safetensors.index.json, or a PyTorch
// file (*.bin, *.pt, *.pth).
func Read(path string) (map[string]*Tensor, error) {
	switch {
	case strings.HasSuffix(path, ".safetensors.index.json"):
		return ReadSafetensorsIndex(path)
	case strings.HasSuffix(path, ".safetensors"):
		return ReadSafetensors(path)
	case strings.HasSuffix(path, ".bin"), strings.HasSuffix(path, ".pt"), strings.HasSuffix(path, ".pth"):
		return ReadTorchBin(path)
	}
	return nil, fmt.Errorf("%s: unknown weights format (want .safetensors, .safetensors.index.json or .bin)", path)
}

// halfToFloat32 converts an IEEE 754 half-precision value (kept here so the package needs no
// numeric library).
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		for frac&0x400 == 0 {
			frac <<= 1
			exp--
		}
		exp++
		frac &= 0x3ff
	case exp == 0x1f: // inf, NaN
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
}
