package tensorfile

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/nlpodyssey/gopickle/pytorch"
	"github.com/nlpodyssey/gopickle/types"
)

// The legacy format (torch.serialization's _legacy_save and _legacy_load), written by torch.save
// before torch 1.6 and since then with _use_new_zipfile_serialization=False, is one stream:
//
//  1. pickles of the magic number 0x1950a86a20f9469cfc6c, the protocol version 1001, and the
//     sys info {protocol_version, little_endian, type_sizes};
//  2. the pickle of the object (here a state_dict), whose persistent ids are
//     ('storage', storage type, root key, location, numel, view metadata), the view metadata None
//     or (view key, offset, size) for a storage that is a slice of its root;
//  3. a pickled list of the root keys;
//  4. for each key in that order, its element count as a little-endian int64 and numel elements
//     of raw little-endian data.

// legacyMagic is torch.serialization.MAGIC_NUMBER, the first pickle of a legacy file.
var legacyMagic, _ = new(big.Int).SetString("1950a86a20f9469cfc6c", 16)

// legacyProtocolVersion is torch.serialization.PROTOCOL_VERSION, the second pickle.
const legacyProtocolVersion = 1001

// maxHeaderPickle caps each small pickle before the state_dict (magic number, protocol version,
// sys info: tens of bytes each).
const maxHeaderPickle = 64 << 10

// ErrTorchBigEndian is returned for a legacy file whose sys info says it was saved on a big-endian
// machine. Whether its storages' bytes were then swapped to little endian depends on the torch
// version that wrote it, which the file does not record, so it is refused rather than guessed at.
var ErrTorchBigEndian = errors.New("saved on a big-endian machine (sys info little_endian=False), which is not supported: load it with torch and save it again")

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// legacyView is a view storage: a slice of its root, filled once the root's data is read.
type legacyView struct {
	ref storageRef // the persistent id that made it (its root's key, type and size, and the view)
	s   pytorch.StorageInterface
}

// readTorchLegacy reads a legacy file of size bytes from r. legacy is false when the file does not
// start with the magic number (then it is no legacy file at all, and err says why).
func readTorchLegacy(r io.Reader, size int64) (out map[string]*Tensor, legacy bool, err error) {
	cr := &countingReader{r: r}
	br := bufio.NewReaderSize(cr, 1<<16)
	left := func() int64 { return size - (cr.n - int64(br.Buffered())) }
	next := func(limit int64) ([]byte, error) { return readPickle(br, min(limit, left())) }

	pkl, err := next(maxHeaderPickle)
	if err != nil {
		return nil, false, fmt.Errorf("its first pickle: %w", err)
	}
	magic, err := unpickle(pkl, noClass, nil)
	if m, ok := magic.(*big.Int); err != nil || !ok || m.Cmp(legacyMagic) != 0 {
		return nil, false, errors.New("it does not start with torch's magic number")
	}

	if pkl, err = next(maxHeaderPickle); err != nil {
		return nil, true, fmt.Errorf("protocol version: %w", err)
	}
	if v, err := unpickle(pkl, noClass, nil); err != nil {
		return nil, true, fmt.Errorf("protocol version: %w", err)
	} else if v != any(legacyProtocolVersion) {
		return nil, true, fmt.Errorf("protocol version %v, want %d", v, legacyProtocolVersion)
	}

	if pkl, err = next(maxHeaderPickle); err != nil {
		return nil, true, fmt.Errorf("sys info: %w", err)
	}
	info, err := unpickle(pkl, noClass, nil)
	if err != nil {
		return nil, true, fmt.Errorf("sys info: %w", err)
	}
	d, ok := info.(*types.Dict)
	if !ok {
		return nil, true, fmt.Errorf("sys info is a %T, not a dict", info)
	}
	if le, found := d.Get("little_endian"); found && le != any(true) {
		return nil, true, ErrTorchBigEndian
	}

	if pkl, err = next(maxPickle); err != nil {
		return nil, true, fmt.Errorf("state_dict: %w", err)
	}
	storages := newStorageTable()
	views := map[string]*legacyView{}
	obj, err := unpickle(pkl, allowedPickleClass, func(id any) (any, error) {
		ref, err := parseStorageID(id, 6)
		if err != nil {
			return nil, err
		}
		if _, clash := views[ref.key]; clash {
			return nil, fmt.Errorf("storage key %q is also a view's key", ref.key)
		}
		root, _, err := storages.root(ref)
		if err != nil || ref.view == nil {
			return root, err
		}
		v := ref.view
		if prev, ok := views[v.key]; ok {
			if prev.ref.key != ref.key || *prev.ref.view != *v {
				return nil, fmt.Errorf("view %q is referenced both as %v of %q and as %v of %q", v.key, *prev.ref.view, prev.ref.key, *v, ref.key)
			}
			return prev.s, nil
		}
		if _, clash := storages.refs[v.key]; clash {
			return nil, fmt.Errorf("view key %q is also a storage's key", v.key)
		}
		s := ref.class.New(v.size, ref.location)
		views[v.key] = &legacyView{ref: ref, s: s}
		return s, nil
	})
	if err != nil {
		return nil, true, fmt.Errorf("unpickling the state_dict: %w", err)
	}

	if pkl, err = next(maxPickle); err != nil {
		return nil, true, fmt.Errorf("storage keys: %w", err)
	}
	list, err := unpickle(pkl, noClass, nil)
	if err != nil {
		return nil, true, fmt.Errorf("storage keys: %w", err)
	}
	l, ok := list.(*types.List)
	if !ok {
		return nil, true, fmt.Errorf("storage keys: a %T, not a list", list)
	}
	keys := make([]string, 0, l.Len())
	seen := map[string]bool{}
	for _, k := range *l {
		key, ok := k.(string)
		if !ok {
			return nil, true, fmt.Errorf("storage keys: %v is not a string", k)
		}
		if _, ok := storages.refs[key]; !ok {
			return nil, true, fmt.Errorf("storage keys: %q is not a storage of the state_dict", key)
		}
		if seen[key] {
			return nil, true, fmt.Errorf("storage keys: %q is listed twice", key)
		}
		seen[key] = true
		keys = append(keys, key)
	}
	if len(keys) != len(storages.refs) {
		for key := range storages.refs {
			if !seen[key] {
				return nil, true, fmt.Errorf("storage %q has no data in the file", key)
			}
		}
	}

	var countBuf [8]byte
	for _, key := range keys {
		ref := storages.refs[key]
		if _, err := io.ReadFull(br, countBuf[:]); err != nil {
			return nil, true, fmt.Errorf("storage %q: truncated: the file ends before its element count", key)
		}
		count := int64(binary.LittleEndian.Uint64(countBuf[:]))
		if count != int64(ref.numel) {
			return nil, true, fmt.Errorf("storage %q: the file says %d elements, the state_dict %d", key, count, ref.numel)
		}
		if need := count * int64(ref.elem); need > left() {
			return nil, true, fmt.Errorf("storage %q: truncated: %d × %d bytes, %d left in the file", key, count, ref.elem, left())
		}
		if err := fillStorage(storages.storages[key], br, ref.numel); err != nil {
			return nil, true, fmt.Errorf("storage %q: %w", key, err)
		}
	}
	for key, v := range views {
		if err := sliceStorage(v.s, storages.storages[v.ref.key], v.ref.view.offset, v.ref.view.size); err != nil {
			return nil, true, fmt.Errorf("view %q: %w", key, err)
		}
	}
	out, err = stateDictTensors(obj)
	return out, true, err
}

// sliceStorage makes view share elements [offset, offset+size) of root, a storage of its type.
func sliceStorage(view, root pytorch.StorageInterface, offset, size int) error {
	ok := false
	switch v := view.(type) {
	case *pytorch.FloatStorage:
		r, is := root.(*pytorch.FloatStorage)
		ok = is && share(&v.Data, r.Data, offset, size)
	case *pytorch.HalfStorage:
		r, is := root.(*pytorch.HalfStorage)
		ok = is && share(&v.Data, r.Data, offset, size)
	case *pytorch.BFloat16Storage:
		r, is := root.(*pytorch.BFloat16Storage)
		ok = is && share(&v.Data, r.Data, offset, size)
	case *pytorch.DoubleStorage:
		r, is := root.(*pytorch.DoubleStorage)
		ok = is && share(&v.Data, r.Data, offset, size)
	case *pytorch.ByteStorage:
		r, is := root.(*pytorch.ByteStorage)
		ok = is && share(&v.Data, r.Data, offset, size)
	case *pytorch.BoolStorage:
		r, is := root.(*pytorch.BoolStorage)
		ok = is && share(&v.Data, r.Data, offset, size)
	case *pytorch.LongStorage:
		r, is := root.(*pytorch.LongStorage)
		ok = is && share(&v.Data, r.Data, offset, size)
	case *pytorch.IntStorage:
		r, is := root.(*pytorch.IntStorage)
		ok = is && share(&v.Data, r.Data, offset, size)
	}
	if !ok {
		return fmt.Errorf("%T (offset %d, %d elements) does not fit in its root %T", view, offset, size, root)
	}
	return nil
}

func share[T any](view *[]T, root []T, offset, size int) bool {
	if offset < 0 || size < 0 || offset > len(root)-size {
		return false
	}
	*view = root[offset : offset+size : offset+size]
	return true
}
