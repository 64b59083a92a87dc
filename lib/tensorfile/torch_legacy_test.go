package tensorfile

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/nlpodyssey/gopickle/types"

	"github.com/gonb-gpt/tutorial/lib/internal/sharedtest"
)

// pickler writes protocol-2 pickles by hand, for test files.
type pickler struct{ bytes.Buffer }

func (p *pickler) op(s string) *pickler { p.WriteString(s); return p }

func (p *pickler) str(s string) *pickler {
	p.WriteByte('X')
	_ = binary.Write(p, binary.LittleEndian, uint32(len(s)))
	p.WriteString(s)
	return p
}

func (p *pickler) int(v int) *pickler {
	p.WriteByte('J')
	_ = binary.Write(p, binary.LittleEndian, int32(v))
	return p
}

func (p *pickler) global(module, name string) *pickler {
	p.WriteString("c" + module + "\n" + name + "\n")
	return p
}

func (p *pickler) ints(v []int) *pickler {
	p.op("(")
	for _, x := range v {
		p.int(x)
	}
	return p.op("t")
}

// legacyTensor is one entry of a hand-made legacy state_dict.
type legacyTensor struct {
	name, storage, key string // storage: "FloatStorage", …
	numel              int    // the root storage's size in the persistent id
	view               []any  // nil, or view key, offset, size
	offset             int
	size, stride       []int
}

// legacyStorage is one record of the data section: a count and raw bytes.
type legacyStorage struct {
	count int64
	data  []byte
}

// legacyPrelude pickles the magic number and the protocol version.
func legacyPrelude() []byte {
	var p pickler
	magic := legacyMagic.Bytes() // big endian; LONG1 wants little endian
	slices.Reverse(magic)
	p.op("\x80\x02\x8a").op(string([]byte{byte(len(magic))})).op(string(magic)).op(".")
	p.op("\x80\x02").int(legacyProtocolVersion).op(".")
	return p.Bytes()
}

// legacyHeader is the prelude and a sys info whose little_endian is the pickle opcode le.
func legacyHeader(le string) []byte {
	var p pickler
	p.op("\x80\x02}(").str("protocol_version").int(legacyProtocolVersion).str("little_endian").op(le).op("u.")
	return slices.Concat(legacyPrelude(), p.Bytes())
}

// legacyStateDict pickles a state_dict of tensors with legacy persistent ids.
func legacyStateDict(tensors []legacyTensor) []byte {
	var p pickler
	p.op("\x80\x02").global("collections", "OrderedDict").op(")R(")
	for _, t := range tensors {
		p.str(t.name).global("torch._utils", "_rebuild_tensor_v2").op("((").str("storage").global("torch", t.storage).str(t.key).str("cpu").int(t.numel)
		if t.view == nil {
			p.op("N")
		} else {
			p.op("(").str(t.view[0].(string)).int(t.view[1].(int)).int(t.view[2].(int)).op("t")
		}
		p.op("tQ").int(t.offset).ints(t.size).ints(t.stride).op("\x89Nt").op("R")
	}
	return p.op("u.").Bytes()
}

func legacyKeys(keys ...string) []byte {
	var p pickler
	p.op("\x80\x02(")
	for _, k := range keys {
		p.str(k)
	}
	return p.op("l.").Bytes()
}

func floats(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func legacyFile(header, stateDict, keys []byte, storages ...legacyStorage) []byte {
	b := slices.Concat(header, stateDict, keys)
	for _, s := range storages {
		b = binary.LittleEndian.AppendUint64(b, uint64(s.count))
		b = append(b, s.data...)
	}
	return b
}

func writeTemp(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pytorch_model.bin")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// sampleLegacy is a small valid legacy file: a 2×3 tensor on a root storage of 8 floats (from
// offset 1), a view of elements [4, 8) of that same root, and a byte buffer.
func sampleLegacy() []byte {
	sd := legacyStateDict([]legacyTensor{
		{name: "a", storage: "FloatStorage", key: "0", numel: 8, offset: 1, size: []int{2, 3}, stride: []int{3, 1}},
		{name: "v", storage: "FloatStorage", key: "0", numel: 8, view: []any{"9", 4, 4}, offset: 0, size: []int{2, 2}, stride: []int{1, 2}},
		{name: "mask", storage: "ByteStorage", key: "1", numel: 4, size: []int{4}, stride: []int{1}},
	})
	return legacyFile(legacyHeader("\x88"), sd, legacyKeys("0", "1"),
		legacyStorage{8, floats(0, 1, 2, 3, 4, 5, 6, 7)}, legacyStorage{4, []byte{1, 0, 1, 1}})
}

func TestReadTorchLegacyViews(t *testing.T) {
	got, err := ReadTorchBin(writeTemp(t, sampleLegacy()))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["mask"] != nil {
		t.Errorf("tensors %v, want a and v (the byte buffer left out)", got)
	}
	if a := got["a"]; a == nil || !reflect.DeepEqual(a.Shape, []int{2, 3}) || !reflect.DeepEqual(a.Data, []float32{1, 2, 3, 4, 5, 6}) {
		t.Errorf("a = %+v", got["a"])
	}
	// The view holds 4, 5, 6, 7; the tensor reads it transposed.
	if v := got["v"]; v == nil || !reflect.DeepEqual(v.Data, []float32{4, 6, 5, 7}) {
		t.Errorf("v = %+v", got["v"])
	}
}

func TestReadTorchLegacyViewOutOfRange(t *testing.T) {
	for name, view := range map[string][]any{
		"past the end":    {"9", 6, 4},
		"negative offset": {"9", -1, 2},
		"negative size":   {"9", 0, -1},
		"huge size":       {"9", 0, math.MaxInt32},
	} {
		sd := legacyStateDict([]legacyTensor{{name: "v", storage: "FloatStorage", key: "0", numel: 8, view: view, size: []int{2}, stride: []int{1}}})
		_, err := ReadTorchBin(writeTemp(t, legacyFile(legacyHeader("\x88"), sd, legacyKeys("0"), legacyStorage{8, floats(0, 1, 2, 3, 4, 5, 6, 7)})))
		if err == nil || !strings.Contains(err.Error(), "outside its storage") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	// The same view key for two different slices, and a view key that is a root's key.
	for name, tensors := range map[string][]legacyTensor{
		"two slices under one key": {
			{name: "a", storage: "FloatStorage", key: "0", numel: 8, view: []any{"9", 0, 2}, size: []int{2}, stride: []int{1}},
			{name: "b", storage: "FloatStorage", key: "0", numel: 8, view: []any{"9", 2, 2}, size: []int{2}, stride: []int{1}},
		},
		"a view key that is a storage key": {
			{name: "a", storage: "FloatStorage", key: "0", numel: 8, view: []any{"0", 0, 2}, size: []int{2}, stride: []int{1}},
		},
		"one key, two types": {
			{name: "a", storage: "FloatStorage", key: "0", numel: 8, size: []int{2}, stride: []int{1}},
			{name: "b", storage: "HalfStorage", key: "0", numel: 8, size: []int{2}, stride: []int{1}},
		},
	} {
		_, err := ReadTorchBin(writeTemp(t, legacyFile(legacyHeader("\x88"), legacyStateDict(tensors), legacyKeys("0"), legacyStorage{8, floats(0, 1, 2, 3, 4, 5, 6, 7)})))
		if err == nil || !strings.Contains(err.Error(), "legacy") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// A count that lies: larger than the file, or different from the state_dict's numel.
func TestReadTorchLegacyLyingCounts(t *testing.T) {
	huge := legacyStateDict([]legacyTensor{{name: "a", storage: "DoubleStorage", key: "0", numel: 1 << 30, size: []int{2}, stride: []int{1}}})
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"numel and count beyond the file": {legacyFile(legacyHeader("\x88"), huge, legacyKeys("0"), legacyStorage{1 << 30, floats(1, 2)}), "left in the file"},
		"count larger than numel":         {legacyFile(legacyHeader("\x88"), legacyStateDict(sampleTensors()), legacyKeys("0"), legacyStorage{1 << 40, floats(0, 1, 2, 3)}), "the file says 1099511627776 elements, the state_dict 4"},
		"count smaller than numel":        {legacyFile(legacyHeader("\x88"), legacyStateDict(sampleTensors()), legacyKeys("0"), legacyStorage{2, floats(0, 1, 2, 3)}), "the file says 2 elements"},
		"negative count":                  {legacyFile(legacyHeader("\x88"), legacyStateDict(sampleTensors()), legacyKeys("0"), legacyStorage{-1, floats(0, 1, 2, 3)}), "the file says -1 elements"},
		"negative numel":                  {legacyFile(legacyHeader("\x88"), legacyStateDict([]legacyTensor{{name: "a", storage: "FloatStorage", key: "0", numel: -1, size: []int{1}, stride: []int{1}}}), legacyKeys("0")), "malformed storage reference"},
		"a key with no data":              {legacyFile(legacyHeader("\x88"), legacyStateDict(sampleTensors()), legacyKeys()), `storage "0" has no data`},
		"a key the state_dict lacks":      {legacyFile(legacyHeader("\x88"), legacyStateDict(sampleTensors()), legacyKeys("0", "7"), legacyStorage{4, floats(0, 1, 2, 3)}), `"7" is not a storage of the state_dict`},
		"a key listed twice":              {legacyFile(legacyHeader("\x88"), legacyStateDict(sampleTensors()), legacyKeys("0", "0"), legacyStorage{4, floats(0, 1, 2, 3)}), `"0" is listed twice`},
		"a tensor past its storage":       {legacyFile(legacyHeader("\x88"), legacyStateDict([]legacyTensor{{name: "a", storage: "FloatStorage", key: "0", numel: 4, offset: 2, size: []int{4}, stride: []int{1}}}), legacyKeys("0"), legacyStorage{4, floats(0, 1, 2, 3)}), "outside its storage"},
		"a huge string in the state_dict": {slices.Concat(legacyHeader("\x88"), []byte("\x80\x02\x8e\x00\x00\x00\x00\x00\x01\x00\x00.")), "runs past the end"},
		"a huge frame":                    {slices.Concat(legacyHeader("\x88"), []byte("\x80\x04\x95\x00\x00\x00\x00\x00\x01\x00\x00N.")), "runs past the end"},
	} {
		_, err := ReadTorchBin(writeTemp(t, tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
}

func sampleTensors() []legacyTensor {
	return []legacyTensor{{name: "a", storage: "FloatStorage", key: "0", numel: 4, size: []int{4}, stride: []int{1}}}
}

// A class outside the allow-list, in the state_dict or in a header pickle, is refused before it
// is built.
func TestReadTorchLegacyRefusesUnknownClass(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "pwned")
	var evil pickler
	evil.op("\x80\x02").global("os", "system").op("(").str("touch " + marker).op("tR.")
	var evilSys pickler
	evilSys.op("\x80\x02}(").str("little_endian").global("os", "system").op("(").str("touch " + marker).op("tRu.")
	base := legacyHeader("\x88")
	for name, data := range map[string][]byte{
		"state_dict": legacyFile(base, evil.Bytes(), legacyKeys()),
		"sys info":   slices.Concat(legacyPrelude(), evilSys.Bytes(), legacyStateDict(nil), legacyKeys()),
		"inside a tensor": legacyFile(base, bytes.Replace(legacyStateDict(sampleTensors()), []byte("ctorch._utils\n_rebuild_tensor_v2\n"), []byte("cbuiltins\neval\n"), 1),
			legacyKeys("0"), legacyStorage{4, floats(0, 1, 2, 3)}),
	} {
		_, err := ReadTorchBin(writeTemp(t, data))
		if err == nil || !strings.Contains(err.Error(), "nothing was executed") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the pickle ran code")
	}
}

func TestReadTorchFormats(t *testing.T) {
	// Big-endian sys info: refused.
	_, err := ReadTorchBin(writeTemp(t, legacyFile(legacyHeader("\x89"), legacyStateDict(sampleTensors()), legacyKeys("0"), legacyStorage{4, floats(0, 1, 2, 3)})))
	if !errors.Is(err, ErrTorchBigEndian) {
		t.Errorf("big endian: err = %v", err)
	}
	// torch < 0.4's tar format: refused.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: "storages", Mode: 0o644, Size: 3, Format: tar.FormatPAX})
	_, _ = tw.Write([]byte("abc"))
	_ = tw.Close()
	if _, err := ReadTorchBin(writeTemp(t, buf.Bytes())); !errors.Is(err, ErrTorchTarFormat) {
		t.Errorf("tar: err = %v", err)
	}
	// Neither: the error names the file.
	for _, data := range [][]byte{nil, []byte("not a checkpoint"), []byte("\x80\x02K\x01."), legacyHeader("\x88")[1:]} {
		p := writeTemp(t, data)
		_, err := ReadTorchBin(p)
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "not a PyTorch checkpoint") {
			t.Errorf("%q: err = %v", data, err)
		}
	}
	// Wrong protocol version.
	bad := bytes.Replace(legacyHeader("\x88"), []byte("J\xe9\x03\x00\x00."), []byte("J\xea\x03\x00\x00."), 1)
	if _, err := ReadTorchBin(writeTemp(t, legacyFile(bad, legacyStateDict(nil), legacyKeys()))); err == nil || !strings.Contains(err.Error(), "protocol version 1002") {
		t.Errorf("protocol version: err = %v", err)
	}
	// A zip whose data.pkl states a huge string: an error, not an allocation.
	buf.Reset()
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("archive/data.pkl")
	_, _ = w.Write([]byte("\x80\x02\x8e\x00\x00\x00\x00\x00\x01\x00\x00."))
	_ = zw.Close()
	if _, err := ReadTorchBin(writeTemp(t, buf.Bytes())); err == nil || !strings.Contains(err.Error(), "runs past the end") {
		t.Errorf("zip with a huge string: err = %v", err)
	}
}

// The fixture saved by torch 1.13 in the legacy format holds exactly the tensors of
// model.safetensors, plus what the legacy layout adds (lm_head.weight, the attention buffers), as
// pytorch_model.bin does.
func TestReadTorchLegacyFixture(t *testing.T) {
	dir := sharedtest.Path(t, "fixtures", "tiny-gpt2")
	legacy, err := ReadTorchBin(filepath.Join(dir, "pytorch_model_legacy.bin"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := ReadSafetensors(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	zipped, err := ReadTorchBin(filepath.Join(dir, "pytorch_model.bin"))
	if err != nil {
		t.Fatal(err)
	}
	same := func(what, name string, a, b *Tensor) {
		t.Helper()
		if b == nil {
			t.Errorf("%s: %s missing", what, name)
			return
		}
		if !slices.Equal(a.Shape, b.Shape) || !slices.Equal(a.Data, b.Data) || a.DType != b.DType {
			t.Errorf("%s: %s differs (shapes %v, %v)", what, name, a.Shape, b.Shape)
		}
	}
	for name, a := range st {
		same("legacy vs model.safetensors", name, a, legacy[name])
	}
	for name := range legacy {
		if st[name] == nil && name != "lm_head.weight" && !strings.HasSuffix(name, ".attn.masked_bias") {
			t.Errorf("legacy file: unexpected tensor %s", name)
		}
	}
	same("tied head", "lm_head.weight", st["transformer.wte.weight"], legacy["lm_head.weight"])
	if len(legacy) != len(zipped) {
		t.Errorf("legacy file: %d tensors, pytorch_model.bin %d", len(legacy), len(zipped))
	}
	for name, a := range zipped {
		same("legacy vs pytorch_model.bin", name, a, legacy[name])
	}
}

// legacySections returns the end offsets of the five pickles of a legacy file and then of each
// storage record's count and data.
func legacySections(t testing.TB, data []byte) []int {
	t.Helper()
	r := bytes.NewReader(data)
	var ends []int
	var pickles [][]byte
	for range 5 {
		pkl, err := readPickle(r, int64(r.Len()))
		if err != nil {
			t.Fatal(err)
		}
		pickles = append(pickles, pkl)
		ends = append(ends, len(data)-r.Len())
	}
	elem := map[string]int{}
	if _, err := unpickle(pickles[3], allowedPickleClass, func(id any) (any, error) {
		ref, err := parseStorageID(id, 6)
		elem[ref.key] = ref.elem
		return ref.class.New(ref.numel, ref.location), err
	}); err != nil {
		t.Fatal(err)
	}
	keys, err := unpickle(pickles[4], noClass, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := ends[4]
	for _, k := range *keys.(*types.List) {
		count := int(binary.LittleEndian.Uint64(data[at:]))
		at += 8
		ends = append(ends, at)
		at += count * elem[k.(string)]
		ends = append(ends, at)
	}
	return ends
}

// A truncated file is an error wherever it is cut: inside the header pickles (every byte), the
// state_dict, the key list, a count, or a storage's data (at, before and after every boundary).
func TestReadTorchLegacyTruncated(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(sharedtest.Path(t, "fixtures", "tiny-gpt2"), "pytorch_model_legacy.bin"))
	if err != nil {
		t.Fatal(err)
	}
	ends := legacySections(t, data)
	if ends[len(ends)-1] != len(data) {
		t.Fatalf("sections end at %d, the file at %d", ends[len(ends)-1], len(data))
	}
	cuts := map[int]bool{}
	for i := range ends[5] + 16 { // every byte of the pickles and the first count
		cuts[i] = true
	}
	for _, e := range ends[5:] {
		cuts[e-1], cuts[e+1], cuts[e+3] = true, true, true
		if e < len(data) {
			cuts[e] = true
		}
	}
	for cut := range cuts {
		if cut < 0 || cut >= len(data) {
			continue
		}
		_, legacy, err := readTorchLegacy(bytes.NewReader(data[:cut]), int64(cut))
		if err == nil {
			t.Fatalf("cut at %d: no error", cut)
		}
		if !strings.Contains(err.Error(), "truncated") || legacy != (cut >= ends[0]) {
			t.Errorf("cut at %d: %v (legacy %v)", cut, err, legacy)
		}
	}
	// The same through ReadTorchBin, at one cut in each section.
	for i, e := range ends {
		if e >= len(data) {
			continue
		}
		if _, err := ReadTorchBin(writeTemp(t, data[:e-1])); err == nil || !strings.Contains(err.Error(), "truncated") {
			t.Errorf("cut in section %d: %v", i, err)
		}
	}
	// And the whole file reads, ending exactly after the last storage.
	if _, legacy, err := readTorchLegacy(bytes.NewReader(data), int64(len(data))); err != nil || !legacy {
		t.Errorf("whole file: %v", err)
	}
}

func TestLegacyMagic(t *testing.T) {
	want, _ := new(big.Int).SetString("119547037146038801333356", 10)
	if legacyMagic.Cmp(want) != 0 {
		t.Errorf("magic %v", legacyMagic)
	}
}
