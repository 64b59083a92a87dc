"""Checks the installed GoNB kernel: starts it over the Jupyter protocol, executes a Go cell and
compares its output with what the cell must print. Exits non-zero, with the reason, on a mismatch."""
import sys
import tempfile

from jupyter_client.manager import start_new_kernel

TOOLCHAIN = "go1.27.3-X:simd"  # the pinned toolchain, with GOEXPERIMENT=simd from the kernel environment
CELL = 'import "runtime"\n\n%%\nfmt.Printf("gonb-ok %s %d\\n", runtime.Version(), 6*7)\n'
WANT = "gonb-ok %s 42\n" % TOOLCHAIN


def run(client, code, timeout):
    """Executes code; returns (stdout+display text, error text)."""
    msg_id = client.execute(code)
    out, err = [], []
    while True:
        msg = client.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            (out if content["name"] == "stdout" else err).append(content["text"])
        elif kind in ("display_data", "execute_result"):
            out.append(content["data"].get("text/plain", ""))
        elif kind == "error":
            err.append("%s: %s" % (content["ename"], content["evalue"]))
        elif kind == "status" and content["execution_state"] == "idle":
            break
    reply = client.get_shell_msg(timeout=timeout)
    if reply["content"]["status"] != "ok":
        err.append("execute_reply status %r" % reply["content"]["status"])
    return "".join(out), "".join(err)


def main():
    # The kernel logs to its stderr: keep it in a file, shown only when the check fails.
    log = tempfile.NamedTemporaryFile(prefix="gonb-check-", suffix=".log", delete=False)
    km, client = start_new_kernel(kernel_name="gonb", startup_timeout=120, stderr=log, stdout=log)
    try:
        # The first cell compiles a Go program: allow for a cold build cache.
        out, err = run(client, CELL, timeout=600)
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)
        log.close()
    if out != WANT:
        print("kernel check FAILED: want output %r, got %r; errors: %s" % (WANT, out, err or "none"), file=sys.stderr)
        with open(log.name) as f:
            print("kernel log (%s), last lines:\n%s" % (log.name, "".join(f.readlines()[-20:])), file=sys.stderr)
        return 1
    print("kernel check passed: %s" % out.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
