package pjrt

// Persistent executable cache: the part of this fork that upstream go-xla v0.4.13 lacks (see
// ../PATCHES.md). A compiled program is serialized with PJRT_Executable_Serialize and stored under
// a key made of everything that decides the compilation (program, compile options, XLA_FLAGS, the
// plugin and its devices); a later Compile of the same program, in any process, loads it with
// PJRT_Executable_DeserializeAndLoad instead of compiling again, as JAX's persistent compilation
// cache does with the same two PJRT calls.

/*
#include <stdlib.h>
#include "pjrt_c_api.h"
#include "gen_api_calls.h"
#include "gen_new_struct.h"

static void callSerializedExecutableDeleter(PJRT_Executable_Serialize_Args *args) {
	if (args->serialized_executable_deleter != NULL && args->serialized_executable != NULL) {
		args->serialized_executable_deleter(args->serialized_executable);
	}
}
*/
import "C"

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/pkg/errors"
	"k8s.io/klog/v2"
)

// cacheFormat changes when what a cache entry holds, or how its key is made, changes.
const cacheFormat = "go-xla-executable-cache-v1"

var (
	cacheMu       sync.Mutex
	cacheDir      string
	cacheMaxBytes int64 = 4 << 30

	cacheHits, cacheMisses, cacheErrors atomic.Int64
)

// SetExecutableCacheDir turns the persistent executable cache on (a folder, created when needed) or
// off (""). maxBytes bounds the folder's size (≤ 0: 4 GiB): after each write the entries used
// longest ago are removed until it fits.
func SetExecutableCacheDir(dir string, maxBytes int64) {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	cacheDir = dir
	cacheMaxBytes = 4 << 30
	if maxBytes > 0 {
		cacheMaxBytes = maxBytes
	}
}

// ExecutableCacheDir returns the folder set by SetExecutableCacheDir ("" when the cache is off).
func ExecutableCacheDir() string {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	return cacheDir
}

// ExecutableCacheStats counts, since the process started, compilations answered from the cache
// (hits), compilations that stored a new entry (misses) and entries that could not be read or
// written (errors: the program was then compiled as usual).
func ExecutableCacheStats() (hits, misses, errs int64) {
	return cacheHits.Load(), cacheMisses.Load(), cacheErrors.Load()
}

// executableCacheKey hashes everything that decides what XLA compiles for a program.
func executableCacheKey(client *Client, program []byte, format string, options []byte) string {
	h := sha256.New()
	field := func(b []byte) {
		_, _ = fmt.Fprintf(h, "%d:", len(b))
		_, _ = h.Write(b)
	}
	field([]byte(cacheFormat))
	field([]byte(format))
	field(program)
	field(options)
	field([]byte(os.Getenv("XLA_FLAGS")))
	field([]byte(os.Getenv(EnvXlaDebugOptions)))
	plugin := client.plugin
	field([]byte(plugin.Path()))
	if st, err := os.Stat(plugin.Path()); err == nil {
		field(fmt.Appendf(nil, "%d/%d", st.Size(), st.ModTime().UnixNano()))
	}
	major, minor := plugin.Version()
	field(fmt.Appendf(nil, "%d.%d", major, minor))
	attrs := plugin.Attributes()
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		field(fmt.Appendf(nil, "%s=%v", k, attrs[k]))
	}
	field([]byte(client.Platform() + " " + client.PlatformVersion()))
	for _, d := range client.AddressableDevices() {
		if desc, err := d.GetDescription(); err == nil {
			field([]byte(desc.DebugString()))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// compileCached compiles through the cache when it is on: a stored executable is loaded, otherwise
// the program is compiled and the result stored. Any cache failure falls back to compiling.
func compileCached(plugin *Plugin, client *Client, program []byte, format string, options []byte) (*LoadedExecutable, error) {
	dir := ExecutableCacheDir()
	if dir == "" {
		return pjrtClientCompile(plugin, client, program, format, options)
	}
	key := executableCacheKey(client, program, format, options)
	path := filepath.Join(dir, key[:2], key+".pjrt")
	if data, err := os.ReadFile(path); err == nil {
		exec, err := deserializeAndLoad(plugin, client, data)
		if err == nil {
			cacheHits.Add(1)
			now := time.Now()
			_ = os.Chtimes(path, now, now) // Recently used: evicted last.
			klog.V(1).Infof("executable cache: loaded %s (%d bytes)", path, len(data))
			return exec, nil
		}
		cacheErrors.Add(1)
		klog.Warningf("executable cache: %s cannot be loaded, compiling instead: %v", path, err)
		_ = os.Remove(path)
	}
	exec, err := pjrtClientCompile(plugin, client, program, format, options)
	if err != nil {
		return nil, err
	}
	cacheMisses.Add(1)
	if err := storeExecutable(exec, path); err != nil {
		cacheErrors.Add(1)
		klog.Warningf("executable cache: %v", err)
	} else {
		evictExecutables(dir)
	}
	return exec, nil
}

// storeExecutable serializes exec into path, atomically (temporary file, then rename).
func storeExecutable(exec *LoadedExecutable, path string) error {
	data, err := exec.executable.serialize()
	if err != nil {
		return errors.WithMessage(err, "serializing the executable")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return errors.WithStack(err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return errors.WithStack(err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		_ = os.Remove(tmp.Name())
		return errors.Wrapf(werr, "writing %s", path)
	}
	return nil
}

// evictExecutables removes the entries used longest ago until the folder fits its size bound.
func evictExecutables(dir string) {
	cacheMu.Lock()
	limit := cacheMaxBytes
	cacheMu.Unlock()
	type entry struct {
		path string
		size int64
		used time.Time
	}
	var entries []entry
	var total int64
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".pjrt" {
			return nil
		}
		if info, err := d.Info(); err == nil {
			entries = append(entries, entry{p, info.Size(), info.ModTime()})
			total += info.Size()
		}
		return nil
	})
	sort.Slice(entries, func(i, j int) bool { return entries[i].used.Before(entries[j].used) })
	for _, e := range entries {
		if total <= limit {
			break
		}
		if os.Remove(e.path) == nil {
			total -= e.size
		}
	}
}

// serialize returns PJRT's serialization of the executable (PJRT_Executable_Serialize).
func (e *Executable) serialize() ([]byte, error) {
	if e == nil || e.wrapper == nil || e.wrapper.c == nil {
		return nil, errors.New("executable already destroyed")
	}
	args := C.new_PJRT_Executable_Serialize_Args()
	defer cFree(args)
	args.executable = e.wrapper.c
	if err := toError(e.wrapper.plugin, C.call_PJRT_Executable_Serialize(e.wrapper.plugin.api, args)); err != nil {
		return nil, err
	}
	defer C.callSerializedExecutableDeleter(args)
	if args.serialized_bytes == nil || args.serialized_bytes_size == 0 {
		return nil, errors.New("the plugin returned an empty serialization")
	}
	return C.GoBytes(unsafe.Pointer(args.serialized_bytes), C.int(args.serialized_bytes_size)), nil
}

// deserializeAndLoad loads an executable serialized by the same plugin version
// (PJRT_Executable_DeserializeAndLoad), with the compile options stored in it.
func deserializeAndLoad(plugin *Plugin, client *Client, data []byte) (*LoadedExecutable, error) {
	args := C.new_PJRT_Executable_DeserializeAndLoad_Args()
	defer cFree(args)
	cData := C.CBytes(data)
	defer C.free(cData)
	args.client = client.client.c
	args.serialized_executable = (*C.char)(cData)
	args.serialized_executable_size = C.size_t(len(data))
	if err := toError(plugin, C.call_PJRT_Executable_DeserializeAndLoad(plugin.api, args)); err != nil {
		return nil, err
	}
	if args.loaded_executable == nil {
		return nil, errors.New("the plugin returned no executable")
	}
	return newLoadedExecutable(plugin, client, args.loaded_executable)
}
