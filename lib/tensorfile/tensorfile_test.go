package tensorfile

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nlpodyssey/gopickle/pytorch"

	"github.com/gonb-gpt/tutorial/lib/internal/sharedtest"
)

func TestReadBothFormatsAgree(t *testing.T) {
	dir := sharedtest.Path(t, "fixtures", "tiny-gpt2")
	st, err := Read(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	pt, err := Read(filepath.Join(dir, "pytorch_model.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for name, a := range st {
		b := pt[name]
		if b == nil {
			t.Fatalf("%s missing from pytorch_model.bin", name)
		}
		for i := range a.Data {
			if a.Data[i] != b.Data[i] {
				t.Fatalf("%s[%d]: %v vs %v", name, i, a.Data[i], b.Data[i])
			}
		}
	}
	if _, ok := pt["lm_head.weight"]; !ok {
		t.Error("the legacy file's lm_head.weight was not read")
	}
	out := filepath.Join(t.TempDir(), "m.safetensors")
	if err := WriteSafetensors(out, st); err != nil {
		t.Fatal(err)
	}
	again, err := ReadSafetensors(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != len(st) {
		t.Errorf("round trip: %d tensors, want %d", len(again), len(st))
	}
}

// A pickle that names any class outside the allow-list is refused before anything is built.
func TestTorchBinRefusesUnknownClass(t *testing.T) {
	// Protocol-2 pickle: GLOBAL 'os system', the argument, REDUCE, STOP.
	evil := []byte("\x80\x02cos\nsystem\nq\x00X\x0e\x00\x00\x00touch /tmp/pwnq\x01\x85q\x02Rq\x03.")
	path := filepath.Join(t.TempDir(), "pytorch_model.bin")
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("archive/data.pkl")
	_, _ = w.Write(evil)
	_ = zw.Close()
	_ = os.WriteFile(path, buf.Bytes(), 0o644)
	_, err := ReadTorchBin(path)
	if err == nil || !strings.Contains(err.Error(), "os.system") || !strings.Contains(err.Error(), "nothing was executed") {
		t.Errorf("err = %v", err)
	}
	if _, err := os.Stat("/tmp/pwn"); err == nil {
		t.Error("the pickle ran code")
	}
	_ = os.WriteFile(path, []byte("not a zip"), 0o644)
	if _, err := ReadTorchBin(path); err == nil {
		t.Error("non-zip file: no error")
	}
}

func TestSafetensorsLyingHeader(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, header string, data int) string {
		var b bytes.Buffer
		_ = binary.Write(&b, binary.LittleEndian, uint64(len(header)))
		b.WriteString(header)
		b.Write(make([]byte, data))
		p := filepath.Join(dir, name)
		_ = os.WriteFile(p, b.Bytes(), 0o644)
		return p
	}
	for name, tc := range map[string]struct {
		header string
		data   int
		want   string
	}{
		"offsets beyond the data": {`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, 8, "do not hold"},
		"shape and size disagree": {`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}`, 16, "do not hold"},
		"huge shape":              {`{"a":{"dtype":"F32","shape":[100000,100000,100000],"data_offsets":[0,16]}}`, 16, "not plausible"},
		"bad dtype":               {`{"a":{"dtype":"I8","shape":[1],"data_offsets":[0,1]}}`, 1, "not supported"},
		"not JSON":                {`{"a":`, 0, "header"},
	} {
		if _, err := ReadSafetensors(write(name, tc.header, tc.data)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	// A header size larger than the file: refused before allocating it.
	var b bytes.Buffer
	_ = binary.Write(&b, binary.LittleEndian, uint64(1<<40))
	p := filepath.Join(dir, "huge.safetensors")
	_ = os.WriteFile(p, b.Bytes(), 0o644)
	if _, err := ReadSafetensors(p); err == nil || !strings.Contains(err.Error(), "does not fit") {
		t.Errorf("lying header size: %v", err)
	}
}

func TestHalfToFloat32(t *testing.T) {
	for bits, want := range map[uint16]float32{0x3c00: 1, 0xc000: -2, 0x7bff: 65504, 0x0001: 5.9604645e-08, 0x0000: 0, 0x3555: 0.33325195} {
		if got := halfToFloat32(bits); got != want {
			t.Errorf("half %#04x = %v, want %v", bits, got, want)
		}
	}
}

func TestTorchViews(t *testing.T) {
	storage := &pytorch.FloatStorage{Data: []float32{0, 1, 2, 3, 4, 5, 6}}
	// A contiguous 2×3 view from offset 1, and its transpose (3×2, strides 1 and 3).
	got, err := torchToFloat32(&pytorch.Tensor{Source: storage, StorageOffset: 1, Size: []int{2, 3}, Stride: []int{3, 1}})
	if err != nil || !reflect.DeepEqual(got.Data, []float32{1, 2, 3, 4, 5, 6}) {
		t.Errorf("contiguous: %v %v", got, err)
	}
	got, err = torchToFloat32(&pytorch.Tensor{Source: storage, StorageOffset: 1, Size: []int{3, 2}, Stride: []int{1, 3}})
	if err != nil || !reflect.DeepEqual(got.Data, []float32{1, 4, 2, 5, 3, 6}) {
		t.Errorf("transposed: %v %v", got, err)
	}
	for name, bad := range map[string]*pytorch.Tensor{
		"past its storage":     {Source: storage, StorageOffset: 5, Size: []int{2, 3}, Stride: []int{3, 1}},
		"strided past the end": {Source: storage, StorageOffset: 1, Size: []int{3, 2}, Stride: []int{1, 4}},
		"huge offset":          {Source: storage, StorageOffset: math.MaxInt - 2, Size: []int{4}, Stride: []int{1}},
		"negative stride":      {Source: storage, StorageOffset: 6, Size: []int{3}, Stride: []int{-1}},
		"huge stride":          {Source: storage, Size: []int{2, 2}, Stride: []int{math.MaxInt / 2, 1}},
		// Stride 0 repeats one element 2³⁰ times: 4 GB out of a 28-byte storage.
		"more elements than its storage": {Source: storage, Size: []int{1 << 15, 1 << 15}, Stride: []int{0, 0}},
	} {
		if _, err := torchToFloat32(bad); err == nil || !strings.Contains(err.Error(), "its storage of 7") {
			t.Errorf("a view %s: %v", name, err)
		}
	}
}
