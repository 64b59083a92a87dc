#!/usr/bin/env bash
# The build steps of docker/Dockerfile, one function each, so that the image's logic lives in a
# script that runs without Docker too: `steps.sh check` lints the Dockerfile, docker/rootfs.sh builds
# the image's root filesystem with these same steps.
#
#   steps.sh system        apt packages (root): Python 3.11 with pip, git, gcc, make, tini
#   steps.sh user          the user jupyter, uid 1000, home /home/jupyter (DataSphere's requirement)
#   steps.sh python        Jupyter from pip; /usr/local/bin/python3; checks Python is 3.8-3.11
#   steps.sh cuda 12|13    JAX's PJRT CUDA plugin and its NVIDIA libraries, pinned, into /opt/pjrt
#   steps.sh kernel        Go modules, GoNB, goimports, gopls, gpt-workspace into $GOPATH (/opt/go); the
#                          kernel registered system-wide in /usr/local/share/jupyter (root)
#   steps.sh warm          build the project, print the backend, run the kernel check (user jupyter)
#   steps.sh serve         the local target's CMD: copy the notebooks to $GPT_WORKDIR/notebooks unless
#                          there, then JupyterLab on port 8888
#   steps.sh copy-notebooks DIR
#                          copy the tutorial's notebooks into DIR unless it already holds notebooks
#   steps.sh check [DOCKERFILE]
#                          lint the Dockerfile and this script against DataSphere's requirements
#   steps.sh python-check  python3 is 3.8-3.11 and has pip (the python step ends with it)
#
# TUTORIAL_OFFLINE=1 (set by docker/rootfs.sh, where PyPI cannot be reached): the python step installs
# Debian's Jupyter packages instead of pip's, and the cuda step installs nothing.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

APT_PACKAGES="ca-certificates git make gcc libc6-dev python3 python3-pip tini"
PIP_PACKAGES="jupyterlab nbconvert nbclient"
# Debian's Jupyter, for TUTORIAL_OFFLINE=1: the packages kernel/install.sh installs where Jupyter is missing.
OFFLINE_PACKAGES="jupyter-client python3-nbclient jupyter-nbconvert python3-ipykernel"
# DataSphere's requirements (yandex-cloud/docs, datasphere/concepts/docker.md): Python 3.8-3.11, pip,
# and the user jupyter with uid 1000.
PYTHON_MIN=3.8
PYTHON_MAX=3.11
JUPYTER_USER=jupyter
JUPYTER_UID=1000
# The PJRT CUDA plugin: the JAX release whose plugin (PJRT API v0.115) ran this project's GoMLX
# v0.28.16 / go-xla v0.4.13 on the device check (jax-cuda13-pjrt 0.11.2, docs/benchmarks.md).
JAX_VERSION=0.11.2
# CUDA major versions (the Dockerfile's ARG CUDA): 12 serves the V100 (compute capability 7.0, which
# CUDA 13 dropped) and newer cards; 13 needs compute capability 7.5 or newer.
CUDA_VERSIONS="12 13"
PJRT_DIR=/opt/pjrt
# pip resolves the plugin's NVIDIA libraries for this Python version: the plugin and the libraries
# are Python-independent binaries that no Python code of the image imports, so their choice must not
# depend on the image's Python (3.11 for DataSphere), which JAX's newest releases may not serve.
PJRT_RESOLVE_PYTHON=3.12
KERNEL_DATA_DIR=/usr/local/share/jupyter

say() { printf '[tutorial-steps] %s\n' "$*" >&2; }
fail() { echo "docker check: $*" >&2; exit 1; }

step_system() {
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $APT_PACKAGES
  rm -rf /var/lib/apt/lists/*
}

step_user() {
  if id "$JUPYTER_USER" >/dev/null 2>&1; then
    [ "$(id -u "$JUPYTER_USER")" = "$JUPYTER_UID" ] || { say "user $JUPYTER_USER exists with uid $(id -u "$JUPYTER_USER"), not $JUPYTER_UID"; exit 1; }
    return 0
  fi
  if getent passwd "$JUPYTER_UID" >/dev/null; then
    say "uid $JUPYTER_UID belongs to $(getent passwd "$JUPYTER_UID" | cut -d: -f1): DataSphere needs it for $JUPYTER_USER"; exit 1
  fi
  # DataSphere's own command for it (known issue "TestsFailure").
  useradd -ms /bin/bash --uid "$JUPYTER_UID" "$JUPYTER_USER"
}

step_python() {
  if [ "${TUTORIAL_OFFLINE:-}" = 1 ]; then
    say "TUTORIAL_OFFLINE=1: Debian's Jupyter packages instead of pip's $PIP_PACKAGES"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $OFFLINE_PACKAGES
    rm -rf /var/lib/apt/lists/*
  else
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --no-cache-dir -q $PIP_PACKAGES
  fi
  # DataSphere's example images link the interpreter here.
  [ -e /usr/local/bin/python3 ] || ln -s /usr/bin/python3 /usr/local/bin/python3
  python_check
}

# python_check: /usr/local/bin/python3 is of DataSphere's versions and has pip (docker/rootfs.sh runs
# it again as the user jupyter).
python_check() {
  /usr/local/bin/python3 - "$PYTHON_MIN" "$PYTHON_MAX" <<'PY'
import subprocess, sys
lo, hi = (tuple(map(int, v.split("."))) for v in sys.argv[1:])
if not lo <= sys.version_info[:2] <= hi:
    sys.exit("python3 is %d.%d: DataSphere needs %s to %s" % (sys.version_info[:2] + tuple(sys.argv[1:])))
pip = subprocess.run([sys.executable, "-m", "pip", "--version"], check=True, capture_output=True, text=True)
print("python3 %d.%d.%d with %s" % (sys.version_info[:3] + (" ".join(pip.stdout.split()[:2]),)))
PY
}

# cuda_package prints the pip requirement of the CUDA step for a CUDA major version, or fails naming it.
cuda_package() {
  case " $CUDA_VERSIONS " in
    *" $1 "*) echo "jax-cuda$1-plugin[with-cuda]==$JAX_VERSION" ;;
    *) echo "docker: CUDA='$1': want one of $CUDA_VERSIONS (docker build --build-arg CUDA=12)" >&2; return 1 ;;
  esac
}

step_cuda() {
  local cuda=${1:-12} package
  package=$(cuda_package "$cuda")
  if [ "${TUTORIAL_OFFLINE:-}" = 1 ]; then
    say "TUTORIAL_OFFLINE=1: no PyPI here, so no $package (the notebooks run on the pure-Go backend)"
    return 0
  fi
  # The plugin package's own dependency list (its "with-cuda" extra) picks the NVIDIA libraries;
  # lib/backend finds the plugin and the libraries under GPT_SITE_PACKAGES=$PJRT_DIR.
  python3 -m pip install --no-cache-dir -q --target "$PJRT_DIR" --python-version "$PJRT_RESOLVE_PYTHON" \
    --only-binary=:all: "$package"
  [ -f "$PJRT_DIR/jax_plugins/xla_cuda$cuda/xla_cuda_plugin.so" ] || { say "$package installed no xla_cuda_plugin.so"; exit 1; }
}

step_kernel() {
  : "${GOPATH:?the image sets GOPATH (outside /home/jupyter)}"
  go mod download
  (cd kernel/tools && go mod download)
  GOBIN="$GOPATH/bin" JUPYTER_DATA_DIR="$KERNEL_DATA_DIR" bash kernel/install.sh --no-check
  # The user builds the notebooks' programs (GOCACHE) and may fetch more modules.
  chown -R "$JUPYTER_USER:$JUPYTER_USER" "$GOPATH"
}

step_warm() {
  # What the tools leave in a home folder (Jupyter's runtime files, gopls' and goimports' caches, Go's
  # telemetry counters) goes to a temporary one: /home/jupyter stays as useradd made it.
  local home
  home=$(mktemp -d)
  HOME=$home go build ./...
  HOME=$home go run ./lib/cmd/gpt backend
  HOME=$home bash kernel/install.sh --check
  rm -rf "$home"
}

step_copy_notebooks() {
  local dest=${1:?usage: steps.sh copy-notebooks DIR} src=${GPT_TUTORIAL_DIR:-/opt/tutorial}/notebooks
  if compgen -G "$dest/*.ipynb" >/dev/null; then
    say "$dest already holds notebooks: left as they are"
    return 0
  fi
  mkdir -p "$dest"
  cp "$src"/*.ipynb "$dest"/
  say "copied the tutorial's notebooks to $dest"
}

step_serve() {
  local work=${GPT_WORKDIR:-$HOME/work}
  step_copy_notebooks "$work/notebooks"
  exec jupyter lab --ip=0.0.0.0 --port=8888 --no-browser --ServerApp.root_dir="$HOME"
}

# --- check ---------------------------------------------------------------------------------------

# python_of prints the Python minor version an external base image ships, or nothing when unknown.
python_of() {
  case "$1" in
    debian:bullseye*) echo 3.9 ;;
    debian:bookworm*) echo 3.11 ;;
    debian:trixie*) echo 3.13 ;;
    ubuntu:20.04 | *-ubuntu20.04) echo 3.8 ;;
    ubuntu:22.04 | *-ubuntu22.04) echo 3.10 ;;
    ubuntu:24.04 | *-ubuntu24.04) echo 3.12 ;;
    python:3.*) echo "$1" | sed -n 's/^python:\(3\.[0-9]*\).*/\1/p' ;;
  esac
}

# version_le A B: A <= B for major.minor versions.
version_le() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" = "$1" ]; }

# instructions prints the Dockerfile's instructions, continuation lines joined, as
# "STAGE<TAB>LINE<TAB>KEYWORD<TAB>ARGUMENTS"; STAGE is "-" before the first FROM.
instructions() {
  awk 'BEGIN { stage = "-"; OFS = "\t" }
    /^[[:space:]]*#/ || /^[[:space:]]*$/ { if (cont == "") next }
    {
      line = $0
      if (cont != "") { line = cont " " line; n = start } else { n = NR }
      if (line ~ /\\$/) { sub(/\\$/, "", line); cont = line; start = n; next }
      cont = ""
      sub(/^[[:space:]]+/, "", line); gsub(/[[:space:]]+/, " ", line)
      kw = toupper(line); sub(/ .*/, "", kw)
      args = line; sub(/^[^ ]+ ?/, "", args)
      if (kw == "FROM") { stage = args; sub(/.* [Aa][Ss] /, "", stage) }
      print stage, n, kw, args
    }' "$1"
}

# stages_of TARGET prints the stages that build TARGET, in build order: the one FROM an external
# image first, TARGET last.
stages_of() {
  local from
  from=$(base_of_stage "$1")
  if awk -F'\t' -v s="$from" '$1 == s' <<<"$table" | grep -q .; then stages_of "$from"; fi
  echo "$1"
}

# base_of_stage STAGE: what STAGE's FROM names; base_of TARGET: the external image TARGET builds on.
base_of_stage() {
  local from
  from=$(awk -F'\t' -v s="$1" '$1 == s && $3 == "FROM" { print $4 }' <<<"$table" | sed 's/ [Aa][Ss] .*//')
  [ -n "$from" ] || fail "no stage '$1'"
  echo "$from"
}
base_of() { base_of_stage "$(stages_of "$1" | head -1)"; }

# in_chain KEYWORD STAGE...: the arguments of that keyword's instructions in the given stages, in order.
in_chain() {
  local kw=$1; shift
  local s
  for s in "$@"; do awk -F'\t' -v s="$s" -v k="$kw" '$1 == s && $3 == k { print $4 }' <<<"$table"; done
}

table=
step_check() {
  local dockerfile=${1:-$here/Dockerfile}
  [ -f "$dockerfile" ] || fail "no $dockerfile"
  table=$(instructions "$dockerfile")
  local datasphere local_ base python user default
  base_of_stage local >/dev/null # (a missing datasphere stage fails the last-stage check)
  mapfile -t datasphere < <(stages_of datasphere)
  mapfile -t local_ < <(stages_of local)
  base=$(base_of datasphere)
  check_runs
  check_datasphere
  check_local
  check_home
  check_context "${DOCKERIGNORE:-$(dirname "$dockerfile")/../.dockerignore}"
  check_cuda
  # The apt packages exist (a simulated install: nothing is changed).
  if command -v apt-get >/dev/null 2>&1; then
    apt-get install -s -qq $APT_PACKAGES $OFFLINE_PACKAGES >/dev/null || fail "apt cannot install: $APT_PACKAGES $OFFLINE_PACKAGES"
  fi
  echo "docker check: $(basename "$dockerfile") passes: datasphere stage on $base (Python $python), no CMD/ENTRYPOINT;" \
    "local stage under tini as '$user' on 8888; nothing under /home; .dockerignore; CUDA $default by default, jax $JAX_VERSION"
}

# The check_* functions below read step_check's locals: table, datasphere and local_ (the stages of
# each target, in build order) and base; they set python, user and default for its summary.

# check_runs: every RUN is a call of a step defined here, its arguments only build arguments ("${CUDA}").
check_runs() {
  local run
  while IFS= read -r run; do
    [[ $run =~ ^tutorial-steps\ ([a-z]+)(\ \"\$\{[A-Z_]+\}\")*$ ]] || fail "a RUN is not a call of steps.sh: RUN $run"
    declare -F "step_${BASH_REMATCH[1]}" >/dev/null || fail "the Dockerfile calls unknown step '${BASH_REMATCH[1]}'"
  done < <(awk -F'\t' '$3 == "RUN" { print $4 }' <<<"$table")
}

# check_datasphere: the last stage (what DataSphere builds) is datasphere, on a Python of 3.8-3.11,
# with the user jupyter (uid 1000) and pip, and no service to start.
check_datasphere() {
  local last s
  last=$(awk -F'\t' '$3 == "FROM" { s = $1 } END { print s }' <<<"$table")
  [ "$last" = datasphere ] || fail "the last stage must be 'datasphere' (DataSphere builds the last stage), not '$last'"
  python=$(python_of "$base")
  [ -n "$python" ] || fail "base image '$base': its Python version is unknown to steps.sh (python_of)"
  version_le "$PYTHON_MIN" "$python" && version_le "$python" "$PYTHON_MAX" ||
    fail "base image '$base' ships Python $python: DataSphere needs $PYTHON_MIN to $PYTHON_MAX"
  if in_chain CMD "${datasphere[@]}" | grep -q . || in_chain ENTRYPOINT "${datasphere[@]}" | grep -q .; then
    fail "the datasphere stage starts a service (CMD or ENTRYPOINT in ${datasphere[*]}): DataSphere's start test fails such an image (TestsFailure)"
  fi
  for s in user python; do
    in_chain RUN "${datasphere[@]}" | grep -qx "tutorial-steps $s" || fail "the datasphere stage does not run the '$s' step"
  done
  [ "$JUPYTER_USER" = jupyter ] && [ "$JUPYTER_UID" = 1000 ] || fail "the user step must create jupyter with uid 1000, not $JUPYTER_USER/$JUPYTER_UID"
}

# check_local: the local stage serves JupyterLab under tini, not as root, on port 8888.
check_local() {
  user=$(in_chain USER "${local_[@]}" | tail -1)
  [ -n "$user" ] && [ "$user" != root ] && [ "$user" != 0 ] || fail "the local stage runs as root (USER '${user:-unset}')"
  in_chain EXPOSE "${local_[@]}" | grep -qx 8888 || fail "the local stage does not expose 8888"
  in_chain ENTRYPOINT local | grep -qx '\["tini", "--"\]' || fail "the local stage's ENTRYPOINT must be [\"tini\", \"--\"]"
  in_chain CMD local | grep -qx '\["tutorial-steps", "serve"\]' || fail "the local stage's CMD must be [\"tutorial-steps\", \"serve\"]"
  [[ " $APT_PACKAGES " == *" tini "* ]] || fail "tini is not among the apt packages"
}

# check_home: nothing installed under /home/jupyter, which may be mounted over (GoNB issues 35, 59,
# 94, 125, 175).
check_home() {
  local dest kv v
  while IFS= read -r dest; do
    [[ $dest == /home/* ]] && fail "COPY or ADD into $dest: nothing may be installed under /home"
  done < <(awk -F'\t' '$3 == "COPY" || $3 == "ADD" { n = split($4, w, " "); print w[n] }' <<<"$table")
  for kv in $(in_chain ENV "${datasphere[@]}" "${local_[@]}"); do
    case "$kv" in
      GPT_WORKDIR=*) ;; # the user's files
      *=/home/* | *=*:/home/*) fail "ENV $kv points under /home: tools and caches belong outside it" ;;
    esac
  done
  for v in KERNEL_DATA_DIR PJRT_DIR; do
    [[ ${!v} == /home/* ]] && fail "$v=${!v}: the kernel and the plugin belong outside /home"
  done
  for v in GOPATH GOCACHE; do
    in_chain ENV "${datasphere[@]}" | tr ' ' '\n' | grep -q "^$v=/" || fail "ENV $v is not set to an absolute path (Go's default is under the home folder)"
  done
}

# check_context IGNOREFILE: the build context leaves out history, artifacts and build outputs.
check_context() {
  local v
  [ -f "$1" ] || fail "no .dockerignore ($1)"
  for v in .git work build; do
    grep -qx "$v" "$1" || fail ".dockerignore does not leave out $v"
  done
}

# check_cuda: ARG CUDA with a valid default before the first FROM, in scope of the cuda step; JAX pinned.
check_cuda() {
  local s
  default=$(awk -F'\t' '$1 == "-" && $3 == "ARG" && $4 ~ /^CUDA=/ { sub(/^CUDA=/, "", $4); print $4 }' <<<"$table")
  [ -n "$default" ] || fail "ARG CUDA=… must come before the first FROM"
  cuda_package "$default" >/dev/null || fail "ARG CUDA's default is not a valid version"
  if [ -n "${CUDA:-}" ]; then cuda_package "$CUDA" >/dev/null || exit 1; fi
  s=$(awk -F'\t' '$3 == "RUN" && $4 == "tutorial-steps cuda \"${CUDA}\"" { print $1 }' <<<"$table")
  [ -n "$s" ] || fail "the cuda step must be 'RUN tutorial-steps cuda \"\${CUDA}\"'"
  awk -F'\t' -v s="$s" '$1 == s && $3 == "ARG" && $4 == "CUDA" { a = 1 } $1 == s && $3 == "RUN" && $4 ~ /cuda/ { exit !a } ' <<<"$table" ||
    fail "'ARG CUDA' must be declared in stage '$s' before the cuda step (a FROM ends an ARG's scope)"
  [[ $JAX_VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "JAX_VERSION '$JAX_VERSION' is not an exact version"
}

# Sourced (docker/rootfs.sh reads the Dockerfile with the functions above), it only defines them.
[[ ${BASH_SOURCE[0]} == "$0" ]] || return 0
case "${1:-}" in
  system | user | python | cuda | kernel | warm | serve | check) step="step_$1"; shift; "$step" "$@" ;;
  copy-notebooks) shift; step_copy_notebooks "$@" ;;
  python-check) python_check ;;
  *) sed -n '2,/^[^#]/{/^#/p}' "$0" >&2; exit 2 ;;
esac
