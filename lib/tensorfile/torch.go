package tensorfile

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"path"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/pytorch"
	"github.com/nlpodyssey/gopickle/types"
)

// maxPickle caps a state_dict's pickle (data.pkl of a zip file, the main pickle of a legacy one)
// and a legacy file's list of storage keys: a few hundred bytes per tensor in practice.
const maxPickle = 64 << 20

// ErrTorchTarFormat is returned for the tar-based format of torch < 0.4 (2018), which this package
// does not read: load the file with torch and save it again (or as safetensors).
var ErrTorchTarFormat = errors.New("a PyTorch file in the tar format of torch < 0.4, which is not supported: load it with torch and save it again")

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

// noClass is the allow-list of the small pickles around a legacy file's state_dict (magic number,
// protocol version, sys info, storage keys), which reference no class at all.
func noClass(module, name string) (any, error) {
	return nil, fmt.Errorf("the pickle references %s.%s where no class belongs: refusing to load it (nothing was executed)", module, name)
}

// ReadTorchBin reads a PyTorch state_dict (pytorch_model.bin, *.pt) as float32 tensors, in either
// of torch.save's formats: the zip archive of torch ≥ 1.6, or the legacy format before it (a
// sequence of pickles, then the storages' raw data; torch.save writes it still with
// _use_new_zipfile_serialization=False). Pickles are read with an allow-list of classes, and every
// storage's size is checked against the file (its zip record, or the bytes left) before it is
// allocated. The tar format of torch < 0.4 is refused with ErrTorchTarFormat.
func ReadTorchBin(path string) (map[string]*Tensor, error) {
	out, err := readTorchBin(path)
	if err != nil {
		return nil, fmt.Errorf("pytorch %s: %w", path, err)
	}
	return out, nil
}

func readTorchBin(filename string) (map[string]*Tensor, error) {
	return readFile(filename, readTorch)
}

// readFile opens a file and reads it with read. unpickle turns gopickle's panics into errors; this
// is the last guard, so that whatever a malformed file may still trigger is an error too, never a
// crash.
func readFile[T any](filename string, read func(io.ReaderAt, int64) (T, error)) (out T, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero T
			out, err = zero, fmt.Errorf("malformed file: %v", r)
		}
	}()
	f, err := os.Open(filename)
	if err != nil {
		return out, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return out, err
	}
	return read(f, st.Size())
}

// readTorch tells the formats apart as torch.load does: a zip archive starts with a local file
// header, a tar archive has "ustar" at byte 257, and a legacy file starts with a pickled magic
// number.
func readTorch(r io.ReaderAt, size int64) (map[string]*Tensor, error) {
	head := make([]byte, 512)
	n, err := r.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return readTorchZip(r, size)
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return nil, ErrTorchTarFormat
	}
	out, legacy, err := readTorchLegacy(io.NewSectionReader(r, 0, size), size)
	if err != nil && !legacy {
		return nil, fmt.Errorf("not a PyTorch checkpoint: neither a zip archive (torch ≥ 1.6) nor a legacy file (%w)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("legacy (pre-1.6) format: %w", err)
	}
	return out, nil
}

// readTorchZip reads the zip format: archive/data.pkl and a record archive/data/KEY per storage.
func readTorchZip(r io.ReaderAt, size int64) (map[string]*Tensor, error) {
	obj, err := readTorchZipObject(r, size)
	if err != nil {
		return nil, err
	}
	return stateDictTensors(obj)
}

// ReadTorchObject reads a file torch.save wrote in its zip format (torch ≥ 1.6) holding other than
// a state_dict of tensors, such as an optimizer's or a scheduler's state_dict, through the same
// allow-listed unpickler (nothing in the file is executed). The result is plain Go values: dicts
// (OrderedDict too) as map[any]any, lists and tuples as []any, floating-point tensors as *Tensor
// (float32; integer tensors as nil), strings, booleans, int and float64, None as nil.
func ReadTorchObject(path string) (any, error) {
	obj, err := readFile(path, readTorchZipObject)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out, err := plainValue(obj, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// plainValue converts an unpickled object (see ReadTorchObject), refusing anything else and
// nesting deeper than a state_dict's.
func plainValue(v any, depth int) (any, error) {
	if depth > 32 {
		return nil, errors.New("objects nested too deeply")
	}
	switch x := v.(type) {
	case nil, bool, string, int, int64, float64:
		return x, nil
	case *big.Int:
		return nil, fmt.Errorf("integer %s out of range", x)
	case *pytorch.Tensor:
		return torchToFloat32(x)
	case *types.Dict:
		out := make(map[any]any, len(*x))
		for _, e := range *x {
			val, err := plainValue(e.Value, depth+1)
			if err != nil {
				return nil, err
			}
			out[e.Key] = val
		}
		return out, nil
	case *types.OrderedDict:
		out := make(map[any]any, len(x.Map))
		for k, e := range x.Map {
			val, err := plainValue(e.Value, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = val
		}
		return out, nil
	case *types.List:
		return plainList(*x, depth)
	case *types.Tuple:
		return plainList(*x, depth)
	}
	return nil, fmt.Errorf("unexpected %T in the pickle", v)
}

func plainList(items []any, depth int) (any, error) {
	out := make([]any, len(items))
	for i, e := range items {
		val, err := plainValue(e, depth+1)
		if err != nil {
			return nil, err
		}
		out[i] = val
	}
	return out, nil
}

// readTorchZipObject unpickles the zip format's data.pkl with its storages.
func readTorchZipObject(r io.ReaderAt, size int64) (any, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, err
	}
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
	if dataPkl.UncompressedSize64 > maxPickle {
		return nil, fmt.Errorf("data.pkl of %d bytes is over the limit of %d", dataPkl.UncompressedSize64, maxPickle)
	}
	prefix := path.Dir(dataPkl.Name)
	rc, err := dataPkl.Open()
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(rc, maxPickle))
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("data.pkl: %w", err)
	}
	pkl, err := readPickle(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("data.pkl: %w", err)
	}
	storages := newStorageTable()
	obj, err := unpickle(pkl, allowedPickleClass, func(id any) (any, error) {
		ref, err := parseStorageID(id, 5)
		if err != nil {
			return nil, err
		}
		s, created, err := storages.root(ref)
		if err != nil || !created {
			return s, err
		}
		rec := records[path.Join(prefix, "data", ref.key)]
		if rec == nil {
			return nil, fmt.Errorf("storage %q has no record in the archive", ref.key)
		}
		if rec.UncompressedSize64 != uint64(ref.numel)*uint64(ref.elem) {
			return nil, fmt.Errorf("storage %q: %d elements do not match its record of %d bytes", ref.key, ref.numel, rec.UncompressedSize64)
		}
		f, err := rec.Open()
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := fillStorage(s, f, ref.numel); err != nil {
			return nil, fmt.Errorf("storage %q: %w", ref.key, err)
		}
		return s, nil
	})
	if err != nil {
		return nil, fmt.Errorf("unpickling data.pkl: %w", err)
	}
	return obj, nil
}

// unpickle builds the object of one pickle held in memory (read by readPickle, which checked its
// lengths), with findClass as its only source of classes. gopickle's panics on malformed input
// become errors.
func unpickle(pkl []byte, findClass func(module, name string) (any, error), persistentLoad func(any) (any, error)) (obj any, err error) {
	defer func() {
		if r := recover(); r != nil {
			obj, err = nil, fmt.Errorf("malformed pickle: %v", r)
		}
	}()
	u := pickle.NewUnpickler(bytes.NewReader(pkl))
	u.FindClass = findClass
	u.PersistentLoad = persistentLoad
	return u.Load()
}

// storageRef is a storage's persistent id in a state_dict's pickle: ('storage', storage type,
// key, location, numel) in the zip format, with a sixth field, view metadata (None or (view key,
// offset, size)), in the legacy format.
type storageRef struct {
	class         pytorch.StorageClassInterface
	typeName      string // "FloatStorage", …
	elem          int    // bytes per element
	key, location string
	numel         int
	view          *storageView
}

// storageView is a legacy storage that is a slice of its root storage (in elements).
type storageView struct {
	key          string
	offset, size int
}

// storageType names a storage class of the allow-list and gives its element size.
func storageType(c pytorch.StorageClassInterface) (name string, elem int) {
	switch c.(type) {
	case *pytorch.FloatStorageClass:
		return "FloatStorage", 4
	case *pytorch.HalfStorageClass:
		return "HalfStorage", 2
	case *pytorch.BFloat16StorageClass:
		return "BFloat16Storage", 2
	case *pytorch.DoubleStorageClass:
		return "DoubleStorage", 8
	case *pytorch.ByteStorageClass:
		return "ByteStorage", 1
	case *pytorch.BoolStorageClass:
		return "BoolStorage", 1
	case *pytorch.LongStorageClass:
		return "LongStorage", 8
	case *pytorch.IntStorageClass:
		return "IntStorage", 4
	}
	return "", 0
}

// parseStorageID checks a persistent id of fields fields (5: zip, 6: legacy) and its plausibility.
func parseStorageID(id any, fields int) (storageRef, error) {
	tuple, ok := id.(*types.Tuple)
	if !ok || tuple.Len() == 0 {
		return storageRef{}, fmt.Errorf("persistent id %v is not a storage", id)
	}
	if kind, _ := tuple.Get(0).(string); kind != "storage" {
		return storageRef{}, fmt.Errorf("persistent id of kind %v (only storages belong in a state_dict)", tuple.Get(0))
	}
	if tuple.Len() != fields {
		return storageRef{}, fmt.Errorf("storage reference %s has %d fields, want %d", describeID(tuple), tuple.Len(), fields)
	}
	var ref storageRef
	var ok1, ok2, ok3, ok4 bool
	ref.class, ok1 = tuple.Get(1).(pytorch.StorageClassInterface)
	ref.key, ok2 = tuple.Get(2).(string)
	ref.location, ok3 = tuple.Get(3).(string)
	ref.numel, ok4 = tuple.Get(4).(int)
	if !ok1 || !ok2 || !ok3 || !ok4 || ref.numel < 0 || ref.numel > math.MaxInt32 {
		return storageRef{}, fmt.Errorf("malformed storage reference %s", describeID(tuple))
	}
	if ref.typeName, ref.elem = storageType(ref.class); ref.elem == 0 {
		return storageRef{}, fmt.Errorf("storage %q: type %T is not supported", ref.key, ref.class)
	}
	if fields == 6 {
		switch vm := tuple.Get(5).(type) {
		case nil:
		case *types.Tuple:
			var v storageView
			var ok1, ok2, ok3 bool
			if vm.Len() == 3 {
				v.key, ok1 = vm.Get(0).(string)
				v.offset, ok2 = vm.Get(1).(int)
				v.size, ok3 = vm.Get(2).(int)
			}
			if !ok1 || !ok2 || !ok3 {
				return storageRef{}, fmt.Errorf("storage %q: malformed view metadata %v", ref.key, vm)
			}
			if v.offset < 0 || v.size < 0 || v.offset > ref.numel-v.size {
				return storageRef{}, fmt.Errorf("storage %q: view %q (offset %d, %d elements) is outside its storage of %d elements", ref.key, v.key, v.offset, v.size, ref.numel)
			}
			ref.view = &v
		default:
			return storageRef{}, fmt.Errorf("storage %q: malformed view metadata %v", ref.key, vm)
		}
	}
	return ref, nil
}

// describeID formats a persistent id for an error, storage classes by name.
func describeID(tuple *types.Tuple) string {
	parts := make([]string, tuple.Len())
	for i := range parts {
		v := tuple.Get(i)
		if c, ok := v.(pytorch.StorageClassInterface); ok {
			if name, _ := storageType(c); name != "" {
				v = name
			}
		}
		parts[i] = fmt.Sprintf("%v", v)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// storageTable holds the root storages of a file by key: each is made once, and every later
// reference to its key must agree on its type and size.
type storageTable struct {
	refs     map[string]storageRef
	storages map[string]pytorch.StorageInterface
}

func newStorageTable() *storageTable {
	return &storageTable{refs: map[string]storageRef{}, storages: map[string]pytorch.StorageInterface{}}
}

// root returns the storage of ref's key, made (empty) on its first reference.
func (t *storageTable) root(ref storageRef) (s pytorch.StorageInterface, created bool, err error) {
	if prev, ok := t.refs[ref.key]; ok {
		if prev.typeName != ref.typeName || prev.numel != ref.numel {
			return nil, false, fmt.Errorf("storage %q is referenced both as %d × %s and as %d × %s", ref.key, prev.numel, prev.typeName, ref.numel, ref.typeName)
		}
		return t.storages[ref.key], false, nil
	}
	s = ref.class.New(ref.numel, ref.location)
	t.refs[ref.key] = ref
	t.storages[ref.key] = s
	return s, true, nil
}

// fillStorage reads numel little-endian elements into s. gopickle's reader takes what one Read
// returns as a full buffer, so every Read here fills its buffer or fails.
func fillStorage(s pytorch.StorageInterface, r io.Reader, numel int) error {
	return s.SetFromFileWithSize(fullReader{r}, numel)
}

type fullReader struct{ r io.Reader }

func (f fullReader) Read(p []byte) (int, error) {
	n, err := io.ReadFull(f.r, p)
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// stateDictTensors converts an unpickled state_dict to float32 tensors: its floating-point
// tensors, by name; integer buffers and non-tensor entries are left out.
func stateDictTensors(obj any) (map[string]*Tensor, error) {
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
		return nil, fmt.Errorf("the pickle holds a %T, not a state_dict", obj)
	}
	out := make(map[string]*Tensor, len(entries))
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

// checkView checks, before anything is allocated, that every element of a tensor of count
// elements lies in its storage of n, and that it has no more elements than the storage: a view
// that repeats elements (stride 0, overlapping strides), which torch keeps as a view, would be
// copied out here, so a file of a few bytes could ask for gigabytes. Strides are never negative in
// torch. The sums cannot overflow: each term is at most 2³¹·2³¹ and the running offset stays < n.
func checkView(t *pytorch.Tensor, count, n int) error {
	if count == 0 {
		return nil
	}
	if count > n {
		return fmt.Errorf("view of size %v has more elements than its storage of %d (repeated elements are not supported)", t.Size, n)
	}
	if t.StorageOffset < 0 || t.StorageOffset >= n {
		return fmt.Errorf("view (offset %d, size %v) outside its storage of %d", t.StorageOffset, t.Size, n)
	}
	last := t.StorageOffset
	for k, size := range t.Size {
		if size <= 1 {
			continue
		}
		if s := t.Stride[k]; s < 0 || s > n {
			return fmt.Errorf("view (offset %d, size %v, stride %v) outside its storage of %d", t.StorageOffset, t.Size, t.Stride, n)
		}
		if last += (size - 1) * t.Stride[k]; last >= n {
			return fmt.Errorf("view (offset %d, size %v, stride %v) outside its storage of %d", t.StorageOffset, t.Size, t.Stride, n)
		}
	}
	return nil
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
	if err := checkView(t, count, len(data)); err != nil {
		return nil, err
	}
	out := &Tensor{Shape: append([]int(nil), t.Size...), DType: dtype, Data: make([]float32, count)}
	if contiguous(t.Size, t.Stride) {
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
