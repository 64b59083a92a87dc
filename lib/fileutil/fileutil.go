// Package fileutil writes files so that a reader never sees a half-written one: the data goes to a
// temporary file in the same folder, is synced, and replaces the target with a rename. If anything
// fails, the previous file is left untouched.
package fileutil

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Pending is a file being written in place of path: nothing changes at path until Commit, which
// syncs the data and renames the file there; Abort, or a crash, leaves path as it was (a crash
// leaves the temporary file, named "." + base + ".tmp-*": see RemoveStale).
type Pending struct {
	*os.File
	path string
	perm os.FileMode
}

// Create starts writing path with permissions perm. The parent folder must exist.
func Create(path string, perm os.FileMode) (*Pending, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+tmpInfix+"*")
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	return &Pending{File: tmp, path: path, perm: perm}, nil
}

const tmpInfix = ".tmp-"

// Commit makes the file written the one at path. On an error the file is removed.
func (p *Pending) Commit() error {
	err := p.Chmod(p.perm)
	if err == nil {
		err = p.Sync()
	}
	if cerr := p.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(p.Name(), p.path)
	}
	if err != nil {
		_ = os.Remove(p.Name())
		return fmt.Errorf("writing %s: %w", p.path, err)
	}
	return nil
}

// Abort removes the file written.
func (p *Pending) Abort() {
	_ = p.Close()
	_ = os.Remove(p.Name())
}

// RemoveStale removes the temporary files of Create in dir whose target's name matches pattern
// (filepath.Match) and that were last written more than age ago: what a killed writer left.
func RemoveStale(dir, pattern string, age time.Duration) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		name := e.Name()
		i := strings.LastIndex(name, tmpInfix)
		if !strings.HasPrefix(name, ".") || i < 0 || !e.Type().IsRegular() {
			continue
		}
		if ok, _ := filepath.Match(pattern, name[1:i]); !ok {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > age {
			_ = os.Remove(filepath.Join(dir, name))
		}
	}
}

// WriteAtomic creates or replaces path with what write writes. The parent folder must exist.
func WriteAtomic(path string, perm os.FileMode, write func(w io.Writer) error) error {
	p, err := Create(path, perm)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(p, 1<<20)
	if err = write(bw); err == nil {
		err = bw.Flush()
	}
	if err != nil {
		p.Abort()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return p.Commit()
}

// WriteFileAtomic is WriteAtomic for data already in memory.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return WriteAtomic(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}
