#!/usr/bin/env bash
# The build steps of docker/Dockerfile, one function each, so that the image's logic lives in a
# script that CI can run (`steps.sh check`) even where no Docker engine is available.
#
#   steps.sh system   apt packages the image needs (root)
#   steps.sh user     the non-root user "jupyter" (uid 1000, home /home/jupyter), as DataSphere expects
#   steps.sh python   a virtualenv in /opt/venv with JupyterLab, nbconvert and jax[cuda13] (its PJRT
#                     CUDA plugin and NVIDIA libraries; the backend package finds them there)
#   steps.sh kernel   the GoNB kernel (kernel/install.sh) for the current user
#   steps.sh warm     compile the project once so the first notebook cell does not wait
#   steps.sh serve    start JupyterLab on port 8888
#   steps.sh check    run here what can run without Docker, a GPU or PyPI, and lint the Dockerfile
set -euo pipefail
export GOTOOLCHAIN=go1.27.3
export GOEXPERIMENT=simd
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

APT_PACKAGES="ca-certificates git make gcc libc6-dev python3 python3-venv python3-pip"
PIP_PACKAGES="jupyterlab nbconvert nbclient jax[cuda13]"
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

step_python() {
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --no-cache-dir -q $PIP_PACKAGES
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
  local steps
  steps=$(sed -n 's/^\(RUN\|CMD\) \[*"*tutorial-steps"*,* *"*\([a-z]*\)"*\]*$/\2/p' "$dockerfile")
  [ -n "$steps" ] || { echo "docker check: no tutorial-steps calls found in $dockerfile" >&2; exit 1; }
  for s in $steps; do
    declare -F "step_$s" >/dev/null || { echo "docker check: Dockerfile calls unknown step '$s'" >&2; exit 1; }
  done
  if grep -E '^RUN ' "$dockerfile" | grep -v 'tutorial-steps' >/dev/null; then
    echo "docker check: a RUN line of the Dockerfile is not a call of steps.sh" >&2; exit 1
  fi
  grep -q '^USER jupyter' "$dockerfile" || { echo "docker check: the image must not run as root" >&2; exit 1; }
  grep -q '^EXPOSE 8888' "$dockerfile" || { echo "docker check: port 8888 is not exposed" >&2; exit 1; }
  # The apt packages exist (simulated install: nothing is changed).
  if command -v apt-get >/dev/null 2>&1; then
    apt-get install -s -qq $APT_PACKAGES >/dev/null || { echo "docker check: apt cannot install: $APT_PACKAGES" >&2; exit 1; }
  fi
  # The user step, in a throw-away root: skipped here (it edits /etc/passwd); the kernel and warm
  # steps run for real as part of `make test` (kernel/install.sh, go build, gpt backend).
  echo "docker check: Dockerfile steps ($(echo $steps | tr '\n' ' ')) are defined; apt packages resolve." \
    "Not run here: the python step (needs PyPI) and the image build itself (needs a Docker engine)."
}

case "${1:-}" in
  system|user|python|kernel|warm|serve|check) "step_$1" ;;
  *) sed -n '2,15p' "$0" >&2; exit 2 ;;
esac
