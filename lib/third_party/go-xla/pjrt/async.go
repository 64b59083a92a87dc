package pjrt

// Asynchronous execution: the other part of this fork (see ../PATCHES.md). Upstream go-xla waits
// for every execution to finish before Execute returns (ExecuteAndWait), so the host's work for
// the next program (arguments, launching its kernels, handling its outputs) never overlaps the
// device's work on the current one, and the device idles meanwhile. PJRT itself is asynchronous,
// as JAX uses it: outputs are returned at once and carry their own readiness; a later program
// that takes them as inputs waits on the device, and copying one to the host waits for it
// (BufferToHost awaits its event, as does BufferFromHost for the host memory it reads). Donated
// and destroyed buffers are freed by PJRT only after the work using them completes.

import "sync/atomic"

var asyncExecution atomic.Bool

// SetAsyncExecution makes LoadedExecutable executions return as soon as they are enqueued (true)
// or, as upstream, once they have finished (false, the default).
func SetAsyncExecution(async bool) { asyncExecution.Store(async) }

// AsyncExecution reports the setting of SetAsyncExecution.
func AsyncExecution() bool { return asyncExecution.Load() }
