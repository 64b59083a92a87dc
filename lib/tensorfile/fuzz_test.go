package tensorfile

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/gonb-gpt/tutorial/lib/internal/sharedtest"
)

func FuzzSafetensorsHeader(f *testing.F) {
	data, err := os.ReadFile(filepath.Join(sharedDirF(f), "model.safetensors"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data[:4096])
	f.Add([]byte("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":{}}        "))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = readSafetensors(bytes.NewReader(b), int64(len(b)))
	})
}

func FuzzTorchPickle(f *testing.F) {
	zr, err := zip.OpenReader(filepath.Join(sharedDirF(f), "pytorch_model.bin"))
	if err != nil {
		f.Fatal(err)
	}
	for _, zf := range zr.File {
		if filepath.Base(zf.Name) == "data.pkl" {
			rc, _ := zf.Open()
			var b bytes.Buffer
			_, _ = b.ReadFrom(rc)
			rc.Close()
			f.Add(b.Bytes())
		}
	}
	zr.Close()
	f.Add([]byte("\x80\x02}q\x00."))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, pkl []byte) {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, _ := zw.Create("archive/data.pkl")
		_, _ = w.Write(pkl)
		w, _ = zw.Create("archive/data/0")
		_, _ = w.Write(make([]byte, 64))
		_ = zw.Close()
		p := filepath.Join(dir, "m.bin")
		_ = os.WriteFile(p, buf.Bytes(), 0o644)
		_, _ = ReadTorchBin(p)
	})
}

func sharedDirF(f *testing.F) string { return sharedtest.Path(f, "fixtures", "tiny-gpt2") }

// FuzzTorchLegacy feeds whole files to the PyTorch reader (legacy format mostly, zip and tar
// detection too): any input gives tensors or an error, never a panic or an allocation beyond the
// file's size.
func FuzzTorchLegacy(f *testing.F) {
	data, err := os.ReadFile(filepath.Join(sharedDirF(f), "pytorch_model_legacy.bin"))
	if err != nil {
		f.Fatal(err)
	}
	// Not the whole file (1 MB): the fuzzer would spend its time copying and minimizing it. Its
	// pickles and the start of its first storage, and a small valid file with a view.
	ends := legacySections(f, data)
	f.Add(data[:ends[4]+8+256])
	f.Add(sampleLegacy())
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := readTorch(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		for name, tn := range out {
			if n, err := Numel(tn.Shape); err != nil || n != len(tn.Data) {
				t.Fatalf("tensor %q: shape %v with %d values", name, tn.Shape, len(tn.Data))
			}
		}
	})
}
