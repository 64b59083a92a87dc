// Package tensorfile reads and writes the files Hugging Face checkpoints come in: safetensors
// (single or sharded) and PyTorch's pytorch_model.bin (zip + pickle, read with an allow-list of
// classes, so nothing in the file runs). Tensors are float32 in memory, whatever they were stored as.
package tensorfile

import (
	"archive/zip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gonb-gpt/tutorial/lib/fileutil"
	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/pytorch"
	"github.com/nlpodyssey/gopickle/types"
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

// allowedPickleClass is the allow-list of classes a PyTorch state_dict may reference. Anything else
// is refused before it is built: nothing in the file is ever executed.
func allowedPickleClass(module, name string) (any, error) {
	switch module + "." + name {
	case "torch._utils._rebuild_tensor_v2":
		return &pytorch.RebuildTensorV2{}, nil
	case "torch.FloatStorage":
		return &pytorch.FloatStorageClass{}, nil
	case "torch.HalfStorage":
		return &pytorch.HalfStorageClass{}, nil
	case "torch.BFloat16Storage":
		return &pytorch.BFloat16StorageClass{}, nil
	case "torch.DoubleStorage":
		return &pytorch.DoubleStorageClass{}, nil
	case "torch.ByteStorage": // old GPT-2 checkpoints' causal-mask buffers
		return &pytorch.ByteStorageClass{}, nil
	case "torch.BoolStorage":
		return &pytorch.BoolStorageClass{}, nil
	case "torch.LongStorage":
		return &pytorch.LongStorageClass{}, nil
	case "torch.IntStorage":
		return &pytorch.IntStorageClass{}, nil
	case "collections.OrderedDict":
		return &types.OrderedDictClass{}, nil
	}
	return nil, fmt.Errorf("the pickle references %s.%s, which is not on the allow-list of a state_dict: refusing to load it (nothing was executed)", module, name)
}

// ErrLegacyTorchFormat is returned for pre-1.6 (non-zip) PyTorch files.
var ErrLegacyTorchFormat = errors.New("not a zip-format PyTorch file (saved before torch 1.6?): convert it to safetensors")

// ReadTorchBin reads a PyTorch state_dict (pytorch_model.bin, zip format) as float32 tensors,
// unpickling data.pkl with an allow-list of classes and checking every storage's size against its
// record in the archive before allocating it.
func ReadTorchBin(path string) (map[string]*Tensor, error) {
	out, err := readTorchBin(path)
	if err != nil {
		return nil, fmt.Errorf("pytorch %s: %w", path, err)
	}
	return out, nil
}

func readTorchBin(filename string) (out map[string]*Tensor, err error) {
	// gopickle panics on some malformed input (unknown opcodes): a bad file is an error here.
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("malformed pickle: %v", r)
		}
	}()
	zr, err := zip.OpenReader(filename)
	if err != nil {
		if errors.Is(err, zip.ErrFormat) {
			return nil, ErrLegacyTorchFormat
		}
		return nil, err
	}
	defer zr.Close()
	records := map[string]*zip.File{}
	var dataPkl *zip.File
	for _, f := range zr.File {
		records[f.Name] = f
		if path.Base(f.Name) == "data.pkl" && dataPkl == nil {
			dataPkl = f
		}
	}
	if dataPkl == nil {
		return nil, errors.New("no data.pkl in the archive")
	}
	prefix := path.Dir(dataPkl.Name)
	rc, err := dataPkl.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	u := pickle.NewUnpickler(io.LimitReader(rc, 64<<20))
	u.FindClass = allowedPickleClass
	storages := map[string]pytorch.StorageInterface{}
	u.PersistentLoad = func(id any) (any, error) {
		tuple, ok := id.(*types.Tuple)
		if !ok || tuple.Len() < 5 {
			return nil, fmt.Errorf("persistent id %v is not a storage", id)
		}
		if kind, _ := tuple.Get(0).(string); kind != "storage" {
			return nil, fmt.Errorf("persistent id of kind %v", tuple.Get(0))
		}
		class, ok1 := tuple.Get(1).(pytorch.StorageClassInterface)
		key, ok2 := tuple.Get(2).(string)
		location, ok3 := tuple.Get(3).(string)
		size, ok4 := tuple.Get(4).(int)
		if !ok1 || !ok2 || !ok3 || !ok4 || size < 0 || size > math.MaxInt32 {
			return nil, fmt.Errorf("malformed storage reference %v", id)
		}
		if s, ok := storages[key]; ok {
			return s, nil
		}
		rec := records[path.Join(prefix, "data", key)]
		if rec == nil {
			return nil, fmt.Errorf("storage %q has no record in the archive", key)
		}
		elem := map[string]uint64{"*pytorch.FloatStorageClass": 4, "*pytorch.HalfStorageClass": 2,
			"*pytorch.BFloat16StorageClass": 2, "*pytorch.DoubleStorageClass": 8, "*pytorch.ByteStorageClass": 1,
			"*pytorch.BoolStorageClass": 1, "*pytorch.LongStorageClass": 8, "*pytorch.IntStorageClass": 4}[fmt.Sprintf("%T", class)]
		if elem == 0 || rec.UncompressedSize64 != uint64(size)*elem {
			return nil, fmt.Errorf("storage %q: %d elements do not match its record of %d bytes", key, size, rec.UncompressedSize64)
		}
		f, err := rec.Open()
		if err != nil {
			return nil, err
		}
		defer f.Close()
		s := class.New(size, location)
		if err := s.SetFromFileWithSize(f, size); err != nil {
			return nil, fmt.Errorf("storage %q: %w", key, err)
		}
		storages[key] = s
		return s, nil
	}
	obj, err := u.Load()
	if err != nil {
		return nil, fmt.Errorf("unpickling data.pkl: %w", err)
	}
	entries := map[string]any{}
	switch d := obj.(type) {
	case *types.OrderedDict:
		for k, e := range d.Map {
			if ks, ok := k.(string); ok {
				entries[ks] = e.Value
			}
		}
	case *types.Dict:
		for _, e := range *d {
			if ks, ok := e.Key.(string); ok {
				entries[ks] = e.Value
			}
		}
	default:
		return nil, fmt.Errorf("data.pkl holds a %T, not a state_dict", obj)
	}
	out = make(map[string]*Tensor, len(entries))
	for name, v := range entries {
		t, ok := v.(*pytorch.Tensor)
		if !ok {
			continue // non-tensor entries (e.g. metadata) are ignored
		}
		ft, err := torchToFloat32(t)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		if ft != nil {
			out[name] = ft
		}
	}
	return out, nil
}

// contiguous reports a row-major (C order) layout.
func contiguous(size, stride []int) bool {
	want := 1
	for k := len(size) - 1; k >= 0; k-- {
		if size[k] != 1 && stride[k] != want {
			return false
		}
		want *= size[k]
	}
	return true
}

// torchToFloat32 copies a (possibly strided) view of a floating-point storage; integer storages
// (buffers) give nil.
func torchToFloat32(t *pytorch.Tensor) (*Tensor, error) {
	var data []float32
	dtype := "F32"
	switch s := t.Source.(type) {
	case *pytorch.FloatStorage:
		data = s.Data
	case *pytorch.HalfStorage:
		data, dtype = s.Data, "F16"
	case *pytorch.BFloat16Storage:
		data, dtype = s.Data, "BF16"
	case *pytorch.DoubleStorage:
		data, dtype = make([]float32, len(s.Data)), "F64"
		for i, v := range s.Data {
			data[i] = float32(v)
		}
	case *pytorch.ByteStorage, *pytorch.BoolStorage, *pytorch.LongStorage, *pytorch.IntStorage:
		return nil, nil // integer buffers (attention masks): no parameter
	default:
		return nil, fmt.Errorf("storage type %T is not supported", t.Source)
	}
	count, err := Numel(t.Size)
	if err != nil || len(t.Stride) != len(t.Size) {
		return nil, fmt.Errorf("size %v / stride %v", t.Size, t.Stride)
	}
	out := &Tensor{Shape: append([]int(nil), t.Size...), DType: dtype, Data: make([]float32, count)}
	if contiguous(t.Size, t.Stride) {
		if t.StorageOffset < 0 || t.StorageOffset+count > len(data) {
			return nil, fmt.Errorf("view (offset %d, size %v) outside its storage of %d", t.StorageOffset, t.Size, len(data))
		}
		copy(out.Data, data[t.StorageOffset:t.StorageOffset+count])
		return out, nil
	}
	idx := make([]int, len(t.Size))
	for i := range count {
		off := t.StorageOffset
		for k, v := range idx {
			off += v * t.Stride[k]
		}
		if off < 0 || off >= len(data) {
			return nil, fmt.Errorf("view (offset %d, size %v, stride %v) outside its storage of %d", t.StorageOffset, t.Size, t.Stride, len(data))
		}
		out.Data[i] = data[off]
		for k := len(idx) - 1; k >= 0; k-- {
			idx[k]++
			if idx[k] < t.Size[k] {
				break
			}
			idx[k] = 0
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
