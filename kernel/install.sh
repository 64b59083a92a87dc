#!/usr/bin/env bash
# Installs the GoNB Jupyter kernel for this project and checks it.
#
#   kernel/install.sh            # install Jupyter if missing (Debian/Ubuntu, as root), build GoNB,
#                                # goimports and gopls from the pinned module versions, register the
#                                # kernel "gonb" with the environment it needs, then run a cell in it.
#   kernel/install.sh --check    # only run the check.
#   kernel/install.sh --no-check # only install (the Docker image checks as its user later).
#
# Besides gonb, it installs kernel/gpt-workspace, which the notebooks' first cell runs to find this
# module, and writes GPT_TUTORIAL_DIR (this repository) into the kernel's environment for it.
#
# Environment: GOBIN (where the binaries go; default $(go env GOPATH)/bin), JUPYTER_DATA_DIR (where
# Jupyter looks for kernels; default ~/.local/share/jupyter; the image uses /usr/local/share/jupyter).
# GOPATH, GOMODCACHE, GOCACHE and GPT_SITE_PACKAGES, when set, are written into the kernel's
# environment too: Jupyter servers that do not pass their own environment on still find the toolchain,
# the module cache and the CUDA plugin.
set -euo pipefail
export GOTOOLCHAIN=go1.27.3
export GOEXPERIMENT=simd
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
cd "$root"

say() { printf '[kernel] %s\n' "$*" >&2; }

# jupyter_python prints a Python interpreter that can import jupyter_client and nbconvert.
jupyter_python() {
  local cands=() py
  if command -v jupyter >/dev/null 2>&1; then
    py=$(head -1 "$(command -v jupyter)" | sed -n 's/^#! *\([^ ]*\).*/\1/p')
    [ -n "$py" ] && cands+=("$py")
  fi
  cands+=(python3 /usr/bin/python3 python)
  for py in "${cands[@]}"; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import jupyter_client, nbconvert, nbclient' >/dev/null 2>&1; then
      command -v "$py"; return 0
    fi
  done
  return 1
}

ensure_jupyter() {
  if jupyter_python >/dev/null; then return 0; fi
  local pkgs="jupyter-nbconvert jupyter-client python3-nbclient python3-ipykernel"
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "Jupyter not found: installing Debian's packages ($pkgs)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null
  elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then
    say "Jupyter not found: installing Debian's packages with sudo ($pkgs)"
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null
  fi
  if ! jupyter_python >/dev/null; then
    say "Jupyter is missing and could not be installed here. Install it, then run this again:"
    say "  Debian/Ubuntu: sudo apt-get install $pkgs"
    say "  elsewhere:     python3 -m pip install jupyterlab nbconvert nbclient"
    exit 1
  fi
}

install_kernel() {
  local bin=${GOBIN:-$(go env GOPATH)/bin}
  mkdir -p "$bin"
  say "building gonb, goimports (module versions from go.mod) and gopls (kernel/tools/go.mod) into $bin"
  go build -o "$bin/gonb" github.com/janpfeifer/gonb
  go build -o "$bin/goimports" golang.org/x/tools/cmd/goimports
  (cd kernel/tools && go build -o "$bin/gopls" golang.org/x/tools/gopls)
  install -m 755 kernel/gpt-workspace "$bin/gpt-workspace"
  PATH="$bin:$PATH" "$bin/gonb" --install --force_copy --logtostderr 2>&1 | sed 's/^/[gonb] /' >&2
  local datadir=${JUPYTER_DATA_DIR:-$HOME/.local/share/jupyter}
  local spec=$datadir/kernels/gonb/kernel.json
  [ -f "$spec" ] || { say "gonb --install wrote no $spec"; exit 1; }
  # The kernel's environment: the pinned Go toolchain, and PATH with go, gonb's helpers and goimports.
  local godir
  godir=$(dirname "$(command -v go)")
  "$(jupyter_python)" - "$spec" "$bin" "$godir" "$root" <<'PY'
import json, os, sys
spec, bindir, godir, root = sys.argv[1:]
with open(spec) as f:
    cfg = json.load(f)
cfg["display_name"] = "Go (gonb)"
env = cfg.setdefault("env", {})
env["GOTOOLCHAIN"] = "go1.27.3"
env["GOEXPERIMENT"] = "simd"  # GoMLX's SIMD kernels for the pure-Go backend
env["PATH"] = bindir + ":" + godir + ":${PATH}"
env["GPT_TUTORIAL_DIR"] = root  # for gpt-workspace, when a notebook is outside any clone
for k in ("GOPATH", "GOMODCACHE", "GOCACHE", "GPT_SITE_PACKAGES"):
    if os.environ.get(k):
        env[k] = os.environ[k]
tmp = spec + ".tmp"
with open(tmp, "w") as f:
    json.dump(cfg, f, indent=1)
os.replace(tmp, spec)
PY
  say "kernel registered: $spec"
}

check_kernel() {
  say "checking the kernel: executing a cell over the Jupyter protocol"
  "$(jupyter_python)" "$here/check_kernel.py"
}

case "${1:-}" in
  --check) ensure_jupyter; check_kernel ;;
  --no-check) ensure_jupyter; install_kernel ;;
  "") ensure_jupyter; install_kernel; check_kernel ;;
  *) say "usage: kernel/install.sh [--check|--no-check]"; exit 2 ;;
esac
