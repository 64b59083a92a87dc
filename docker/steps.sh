#!/usr/bin/env bash
# The build steps of docker/Dockerfile, one function each, so that the image's logic lives in a
# script that CI can run (`steps.sh check`) even where no Docker engine is available.
#
#   steps.sh system   apt packages the image needs (root)
#   steps.sh user     the non-root user "jupyter" (uid 1000, home /home/jupyter), as DataSphere expects
#   steps.sh python [12|13]
#                     a virtualenv in /opt/venv with JupyterLab, nbconvert and jax[cuda12] or
#                     jax[cuda13] (its PJRT CUDA plugin and NVIDIA libraries; the backend package
#                     finds them there): the Dockerfile's CUDA argument, else $CUDA, else 12
#   steps.sh kernel   the GoNB kernel (kernel/install.sh) for the current user
#   steps.sh warm     compile the project once so the first notebook cell does not wait
#   steps.sh serve    start JupyterLab on port 8888
#   steps.sh check    run here what can run without Docker, a GPU or PyPI, and lint the Dockerfile
#                     ($CUDA, when set, must be a valid CUDA argument too)
set -euo pipefail
export GOTOOLCHAIN=go1.27.3
export GOEXPERIMENT=simd
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

APT_PACKAGES="ca-certificates git make gcc libc6-dev python3 python3-venv python3-pip"
PIP_PACKAGES="jupyterlab nbconvert nbclient"
# CUDA major versions the image can be built for (the Dockerfile's ARG CUDA): 12 serves the V100
# (compute capability 7.0, which CUDA 13 dropped) and newer cards; 13 compute capability ≥ 7.5.
CUDA_VERSIONS="12 13"
VENV=/opt/venv

step_system() {
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $APT_PACKAGES
  rm -rf /var/lib/apt/lists/*
}

step_user() {
  # Ubuntu 24.04 images ship a user "ubuntu" with uid 1000: rename it, or create "jupyter".
  if id jupyter >/dev/null 2>&1; then return 0; fi
  if id -nu 1000 >/dev/null 2>&1; then
    local old
    old=$(id -nu 1000)
    usermod -l jupyter -d /home/jupyter -m "$old"
    groupmod -n jupyter "$(id -gn jupyter)"
  else
    useradd -m -u 1000 -s /bin/bash jupyter
  fi
  install -d -o jupyter -g jupyter "$VENV"
}

# pip_packages prints the python step's packages for a CUDA major version, or fails naming it.
pip_packages() {
  local cuda=$1
  case " $CUDA_VERSIONS " in
    *" $cuda "*) echo "$PIP_PACKAGES jax[cuda$cuda]" ;;
    *) echo "docker: CUDA='$cuda': want one of $CUDA_VERSIONS (docker build --build-arg CUDA=12)" >&2; return 1 ;;
  esac
}

step_python() {
  local packages
  packages=$(pip_packages "${1:-${CUDA:-12}}")
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --no-cache-dir -q $packages
  chown -R jupyter:jupyter "$VENV"
}

step_kernel() {
  bash kernel/install.sh
}

step_warm() {
  go build ./...
  go run ./lib/cmd/gpt backend
}

step_serve() {
  exec jupyter lab --ip=0.0.0.0 --port=8888 --no-browser --ServerApp.root_dir="$HOME"
}

# step_check runs, on a machine without Docker, what the image's steps do that can run here.
step_check() {
  local dockerfile=$here/Dockerfile
  # Every RUN/CMD of the Dockerfile calls a step defined here.
  # A call: the step's name, then only build arguments ("${CUDA}") as its arguments.
  local steps call='^\(RUN\|CMD\) \[*"*tutorial-steps"*,* *"*\([a-z]*\)"*\]*\( "\${[A-Z_]*}"\)*$'
  steps=$(sed -n "s/$call/\2/p" "$dockerfile")
  [ -n "$steps" ] || { echo "docker check: no tutorial-steps calls found in $dockerfile" >&2; exit 1; }
  for s in $steps; do
    declare -F "step_$s" >/dev/null || { echo "docker check: Dockerfile calls unknown step '$s'" >&2; exit 1; }
  done
  if grep '^RUN ' "$dockerfile" | grep -v "$call" >/dev/null; then
    echo "docker check: a RUN line of the Dockerfile is not a call of steps.sh" >&2; exit 1
  fi
  grep -q '^USER jupyter' "$dockerfile" || { echo "docker check: the image must not run as root" >&2; exit 1; }
  grep -q '^EXPOSE 8888' "$dockerfile" || { echo "docker check: port 8888 is not exposed" >&2; exit 1; }
  check_cuda "$dockerfile"
  # The apt packages exist (simulated install: nothing is changed).
  if command -v apt-get >/dev/null 2>&1; then
    apt-get install -s -qq $APT_PACKAGES >/dev/null || { echo "docker check: apt cannot install: $APT_PACKAGES" >&2; exit 1; }
  fi
  # The user step, in a throw-away root: skipped here (it edits /etc/passwd); the kernel and warm
  # steps run for real as part of `make test` (kernel/install.sh, go build, gpt backend).
  echo "docker check: Dockerfile steps ($(echo $steps | tr '\n' ' ')) are defined; apt packages resolve;" \
    "ARG CUDA (default $cuda_default) picks the base image and jax[cuda12|cuda13]." \
    "Not run here: the python step (needs PyPI) and the image build itself (needs a Docker engine)."
}

# check_cuda checks the Dockerfile's CUDA argument: declared with a valid default before the first
# FROM, one base-image stage per version, the final stage chosen by it, and passed to the python step.
cuda_default=
fail() { echo "docker check: $*" >&2; exit 1; }
check_cuda() {
  local dockerfile=$1 first_from arg_line
  first_from=$(grep -n '^FROM ' "$dockerfile" | head -1 | cut -d: -f1 || true)
  arg_line=$(grep -n '^ARG CUDA=' "$dockerfile" | head -1 | cut -d: -f1 || true)
  [ -n "$arg_line" ] && [ "$arg_line" -lt "${first_from:-0}" ] || fail "ARG CUDA=… must come before the first FROM"
  cuda_default=$(sed -n 's/^ARG CUDA=\([^ ]*\)$/\1/p' "$dockerfile" | head -1)
  pip_packages "$cuda_default" >/dev/null || fail "ARG CUDA's default is not a valid version"
  if [ -n "${CUDA:-}" ]; then pip_packages "$CUDA" >/dev/null || exit 1; fi
  local v
  for v in $CUDA_VERSIONS; do
    grep -Eq "^FROM nvidia/cuda:$v\.[0-9.]+-cudnn-runtime-ubuntu[0-9.]+ AS cuda$v\$" "$dockerfile" ||
      fail "no base-image stage 'FROM nvidia/cuda:$v.x-cudnn-runtime-… AS cuda$v'"
  done
  grep -q '^FROM cuda${CUDA}$' "$dockerfile" || fail "the image's stage must be 'FROM cuda\${CUDA}'"
  # ARG CUDA again inside the final stage (a FROM ends an ARG's scope), before the python step,
  # which takes it as its argument.
  local final_from python_line
  final_from=$(grep -n '^FROM cuda${CUDA}$' "$dockerfile" | cut -d: -f1 || true)
  python_line=$(grep -n '^RUN tutorial-steps python "${CUDA}"$' "$dockerfile" | cut -d: -f1 || true)
  [ -n "$python_line" ] || fail "the python step must be 'RUN tutorial-steps python \"\${CUDA}\"'"
  awk -v a="$final_from" -v b="$python_line" 'NR > a && NR < b && /^ARG CUDA$/ { found = 1 } END { exit !found }' "$dockerfile" ||
    fail "'ARG CUDA' must be declared in the final stage, before the python step"
}

case "${1:-}" in
  system|user|python|kernel|warm|serve|check) step="step_$1"; shift; "$step" "$@" ;;
  *) sed -n '2,/^[^#]/{/^#/p}' "$0" >&2; exit 2 ;;
esac
