package tensorfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// pickleSource is what readPickle reads from: a bufio.Reader over a file, or a bytes.Reader.
type pickleSource interface {
	io.Reader
	io.ByteReader
}

// errPickleTooLong reports a pickle (or a length inside it) that runs past its limit.
var errPickleTooLong = errors.New("runs past the end of the file (truncated?) or the size limit of a pickle")

// argKind is the argument layout of a pickle opcode.
type argKind uint8

const (
	argNone     argKind = iota
	argFixed            // a fixed number of bytes (argSize)
	argLine             // up to and including '\n'
	argTwoLines         // module and name, each up to '\n' (GLOBAL, INST)
	argLen1             // a 1-byte length, then that many bytes
	argLen4             // a 4-byte little-endian length (unsigned), then that many bytes
	argLen4s            // a 4-byte little-endian length (signed: negative is an error), then the bytes
	argLen8             // an 8-byte little-endian length, then that many bytes
	argFrame            // FRAME: an 8-byte frame length; the frame's opcodes follow
)

type opInfo struct {
	kind argKind
	size int // argFixed: the argument's size; argLen*, argFrame: the length field's
}

// pickleOps is every opcode of pickle protocols 0 to 5 (Python's pickletools) and its argument.
var pickleOps = func() [256]*opInfo {
	var t [256]*opInfo
	set := func(ops string, info opInfo) {
		for i := 0; i < len(ops); i++ {
			t[ops[i]] = &info
		}
	}
	// MARK STOP POP POP_MARK DUP NONE BINPERSID REDUCE APPEND BUILD DICT EMPTY_DICT APPENDS LIST
	// EMPTY_LIST OBJ SETITEM TUPLE EMPTY_TUPLE SETITEMS NEWOBJ TUPLE1-3 NEWTRUE NEWFALSE EMPTY_SET
	// ADDITEMS FROZENSET NEWOBJ_EX STACK_GLOBAL MEMOIZE NEXT_BUFFER READONLY_BUFFER.
	set("(.012NQRab}de]lostu)\x81\x85\x86\x87\x88\x89\x8f\x90\x91\x92\x93\x94\x97\x98", opInfo{kind: argNone})
	set("FILPSVgp", opInfo{kind: argLine}) // FLOAT INT LONG PERSID STRING UNICODE GET PUT
	set("ci", opInfo{kind: argTwoLines})   // GLOBAL INST
	set("Kh\x80q\x82", opInfo{kind: argFixed, size: 1})
	set("M\x83", opInfo{kind: argFixed, size: 2})
	set("Jjr\x84", opInfo{kind: argFixed, size: 4})     // BININT LONG_BINGET LONG_BINPUT EXT4
	set("G", opInfo{kind: argFixed, size: 8})           // BINFLOAT
	set("UC\x8c\x8a", opInfo{kind: argLen1, size: 1})   // SHORT_BINSTRING SHORT_BINBYTES SHORT_BINUNICODE LONG1
	set("XB", opInfo{kind: argLen4, size: 4})           // BINUNICODE BINBYTES
	set("T\x8b", opInfo{kind: argLen4s, size: 4})       // BINSTRING LONG4
	set("\x8d\x8e\x96", opInfo{kind: argLen8, size: 8}) // BINUNICODE8 BINBYTES8 BYTEARRAY8
	set("\x95", opInfo{kind: argFrame, size: 8})
	return t
}()

// readPickle reads one pickle from r, up to and including its STOP opcode, and returns its bytes.
// It walks the opcodes without building anything, so that no length written in the pickle is
// trusted: a string, a frame or a line that would run past limit bytes is an error before any
// allocation of that size (gopickle allocates what a length says before reading it). Reading a
// pickle from memory this way also leaves r exactly after it, as the next record of a file
// expects.
func readPickle(r pickleSource, limit int64) ([]byte, error) {
	var buf []byte
	room := func(n uint64) error {
		if n > uint64(limit)-uint64(len(buf)) {
			return errPickleTooLong
		}
		return nil
	}
	readN := func(n uint64) error {
		if err := room(n); err != nil {
			return err
		}
		start := len(buf)
		buf = append(buf, make([]byte, n)...)
		_, err := io.ReadFull(r, buf[start:])
		return err
	}
	readByte := func() (byte, error) {
		if err := room(1); err != nil {
			return 0, err
		}
		b, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		buf = append(buf, b)
		return b, nil
	}
	readLine := func() error {
		for {
			b, err := readByte()
			if err != nil || b == '\n' {
				return err
			}
		}
	}
	for {
		op, err := readByte()
		if err != nil {
			return nil, pickleReadError(err, len(buf))
		}
		info := pickleOps[op]
		if info == nil {
			return nil, fmt.Errorf("unknown pickle opcode %#x at byte %d", op, len(buf)-1)
		}
		switch info.kind {
		case argNone:
			if op == '.' {
				return buf, nil
			}
		case argFixed:
			err = readN(uint64(info.size))
		case argLine:
			err = readLine()
		case argTwoLines:
			if err = readLine(); err == nil {
				err = readLine()
			}
		case argLen1, argLen4, argLen4s, argLen8, argFrame:
			if err = readN(uint64(info.size)); err != nil {
				break
			}
			arg := buf[len(buf)-info.size:]
			var n uint64
			switch info.kind {
			case argLen1:
				n = uint64(arg[0])
			case argLen4:
				n = uint64(binary.LittleEndian.Uint32(arg))
			case argLen4s:
				v := int32(binary.LittleEndian.Uint32(arg))
				if v < 0 {
					return nil, fmt.Errorf("negative length %d in the pickle at byte %d", v, len(buf)-5)
				}
				n = uint64(v)
			default:
				n = binary.LittleEndian.Uint64(arg)
			}
			if info.kind == argFrame {
				err = room(n) // the frame's opcodes follow and are read as such
			} else {
				err = readN(n)
			}
		}
		if err != nil {
			return nil, pickleReadError(err, len(buf))
		}
	}
}

func pickleReadError(err error, at int) error {
	switch {
	case errors.Is(err, errPickleTooLong):
		return fmt.Errorf("the pickle %w (at byte %d)", err, at)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("truncated: the data ends inside a pickle (after %d bytes of it)", at)
	}
	return err
}
