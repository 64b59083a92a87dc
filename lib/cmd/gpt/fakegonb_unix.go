//go:build unix

package main

import (
	"encoding/gob"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"

	"github.com/janpfeifer/gonb/gonbui"
	"github.com/janpfeifer/gonb/gonbui/protocol"
)

// startFakeGoNB makes this process a GoNB cell's program: it creates the two named pipes GoNB's
// kernel creates for a cell (GONB_PIPE, GONB_PIPE_BACK), points gonbui at them, and reads the
// display messages from the first as the kernel does (gob-encoded protocol.DisplayData), answering
// gonbui.Sync's requests on the second as the kernel does (GoNB v0.11.5
// internal/jpyexec/namedpipes_dispatch.go). It returns a function that tells how many HTML messages
// came and their total size.
func startFakeGoNB() (stats func() (updates int, bytes int64), err error) {
	dir, err := os.MkdirTemp("", "fake-gonb-")
	if err != nil {
		return nil, err
	}
	toKernel, fromKernel := filepath.Join(dir, "gonb_pipe"), filepath.Join(dir, "gonb_pipe_back")
	for _, p := range []string{toKernel, fromKernel} {
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			return nil, fmt.Errorf("fake GoNB kernel: %w", err)
		}
	}
	if err := os.Setenv(protocol.GONB_PIPE_ENV, toKernel); err != nil {
		return nil, err
	}
	if err := os.Setenv(protocol.GONB_PIPE_BACK_ENV, fromKernel); err != nil {
		return nil, err
	}
	gonbui.IsNotebook = true
	var updates, size atomic.Int64
	// The kernel holds the back pipe open for writing (gonbui opens it for reading); it stays open
	// for the process's life.
	back := make(chan *gob.Encoder, 1)
	go func() {
		if f, err := os.OpenFile(fromKernel, os.O_WRONLY, 0); err == nil {
			back <- gob.NewEncoder(f)
		}
	}()
	go func() {
		f, err := os.Open(toKernel)
		if err != nil {
			return
		}
		dec := gob.NewDecoder(f)
		var enc *gob.Encoder
		for {
			var d protocol.DisplayData
			if dec.Decode(&d) != nil {
				return
			}
			if h, ok := d.Data[protocol.MIMETextHTML].(string); ok {
				updates.Add(1)
				size.Add(int64(len(h)))
			}
			if req, ok := d.Data[protocol.MIMECommValue].(protocol.CommValue); ok && req.Address == protocol.GonbuiSyncAddress {
				if enc == nil {
					enc = <-back
				}
				_ = enc.Encode(&protocol.CommValue{Address: protocol.GonbuiSyncAckAddress, Value: req.Value})
			}
		}
	}()
	return func() (int, int64) { return int(updates.Load()), size.Load() }, nil
}
