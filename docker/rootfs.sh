#!/usr/bin/env bash
# Builds the image of docker/Dockerfile without a Docker engine, as a root filesystem in a folder,
# and checks it from the inside. It reads the Dockerfile and carries out its instructions for the
# target's stages in order, as `docker build` would:
#
#   FROM debian:bookworm-slim   debootstrap --variant=minbase bookworm (the same Debian release and
#                               archive; the slim image is a minbase system with docs trimmed)
#   COPY --from=golang:1.26-…   this machine's Go (/usr/local/go, 1.26 here): only its switch to the
#                               pinned go1.27.3 matters
#   COPY, COPY --chown          the build context, less what .dockerignore leaves out
#   ARG, ENV, WORKDIR, USER     as Docker: ARG values reach RUN as environment variables
#   RUN                         in a chroot, as the current USER, with only the image's environment
#
# with two differences, both for this machine's network: PyPI cannot be reached, so the steps run
# with TUTORIAL_OFFLINE=1 (the python step installs Debian's Jupyter packages instead of pip's; the
# cuda step installs nothing); and the RUN steps trust this machine's CA certificates.
# Then, as the user jupyter: Python and pip, uid 1000, a home holding nothing but the skeleton files,
# the kernel registered system-wide; with an empty folder mounted over /home/jupyter (as DataSphere
# or a volume does), the kernel check; and notebook 01 copied into a DataSphere-like project folder,
# executed there.
#
#   docker/rootfs.sh [--target datasphere|local] [--dir build/_rootfs]
#
# Needs root (chroot, mounts) and Debian's debootstrap (installed when missing).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
context=$(dirname "$here")
# shellcheck source=steps.sh
source "$here/steps.sh"

target=datasphere
root=$context/build/_rootfs # the underscore keeps `go ... ./...` out of it
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target=$2; shift 2 ;;
    --dir) root=$2; shift 2 ;;
    *) echo "usage: docker/rootfs.sh [--target datasphere|local] [--dir DIR]" >&2; exit 2 ;;
  esac
done
dockerfile=$here/Dockerfile
mirror=http://deb.debian.org/debian
log() { printf '[rootfs] %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (chroot and mounts)"

mounts=()
cleanup() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
mount_in() { # mount_in ARGS... TARGET
  mount "$@"
  mounts+=("${!#}")
}

# --- FROM ----------------------------------------------------------------------------------------
table=$(instructions "$dockerfile")
mapfile -t stages < <(stages_of "$target")
base=$(base_of "$target")
[ "$base" = debian:bookworm-slim ] || die "base image '$base': rootfs.sh builds only debian:bookworm-slim"
command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
rm -rf "$root" "$root.logs"
mkdir -p "$root" "$root.logs"
start=$SECONDS
log "FROM $base: debootstrap --variant=minbase bookworm $root"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1 ||
  { tail -20 "$root.debootstrap.log" >&2; die "debootstrap"; }
# The Docker image's apt sources: bookworm, its updates and security.
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount_in -t proc proc "$root/proc"
mount_in --bind /dev "$root/dev"
mount_in -t devpts devpts "$root/dev/pts" -o newinstance,ptmxmode=0666 2>/dev/null || true
mount_in -t tmpfs tmpfs "$root/tmp"
chmod 1777 "$root/tmp"
# This machine's CA certificates, for the downloads of the RUN steps (Go's toolchain and modules): the
# network here may inspect TLS with its own CA. In /tmp, a mount that does not stay in the image.
cp /etc/ssl/certs/ca-certificates.crt "$root/tmp/host-ca-certificates.crt"

# --- the stages' instructions --------------------------------------------------------------------
declare -A args=() env=()
env[PATH]=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
user=root
workdir=/
# Global ARGs (before the first FROM) with their defaults; a stage's bare ARG brings one into scope.
declare -A global=()
while IFS=$'\t' read -r _ _ _ a; do global[${a%%=*}]=${a#*=}; done < <(awk -F'\t' '$1 == "-" && $3 == "ARG"' <<<"$table")

# inside USER CMD...: runs CMD in the root filesystem as USER, with the image's environment only.
inside() {
  local who=$1 uid gid home; shift
  uid=$(chroot "$root" id -u "$who") gid=$(chroot "$root" id -g "$who")
  home=$(chroot "$root" getent passwd "$who" | cut -d: -f6)
  local e=(HOME="$home" TUTORIAL_OFFLINE=1 SSL_CERT_FILE=/tmp/host-ca-certificates.crt) k
  for k in "${!env[@]}"; do e+=("$k=${env[$k]}"); done
  for k in "${!args[@]}"; do e+=("$k=${args[$k]}"); done
  chroot --userspec="$uid:$gid" "$root" /usr/bin/env -i "${e[@]}" /bin/sh -c "cd '$workdir' && $*"
}

# copy_context SRC DEST [CHOWN]: COPY from the build context, leaving out what .dockerignore lists.
copy_context() {
  local src=$1 dest=$2 own=${3:-} excludes=() p
  while IFS= read -r p; do
    case "$p" in '' | '#'*) continue ;; '**/'*) excludes+=("--exclude=${p#'**/'}") ;; *) excludes+=("--exclude=./$p") ;; esac
  done <"$context/.dockerignore"
  if [ -d "$context/$src" ]; then
    mkdir -p "$root$dest"
    tar -C "$context/$src" "${excludes[@]}" -cf - . | tar -C "$root$dest" -xf -
  else
    if [[ $dest == */ ]] || [ -d "$root$dest" ]; then dest=$dest/$(basename "$src"); fi
    mkdir -p "$(dirname "$root$dest")"
    cp -a "$context/$src" "$root$dest"
  fi
  [ -z "$own" ] || chroot "$root" chown -R "$own" "$dest"
}

for stage in "${stages[@]}"; do
  log "stage $stage"
  while IFS=$'\t' read -r _ line kw rest; do
    case "$kw" in
      FROM) ;;
      ARG)
        name=${rest%%=*}
        if [[ $rest == *=* ]]; then args[$name]=${rest#*=}; else args[$name]=${global[$name]:-}; fi ;;
      ENV)
        for kv in $rest; do env[${kv%%=*}]=${kv#*=}; done ;;
      COPY)
        read -ra w <<<"$rest"
        own=
        if [[ ${w[0]} == --from=golang:* ]]; then
          # The bootstrap Go: only its toolchain switch matters (GOTOOLCHAIN fetches go1.27.3), so
          # another version than the image's serves too.
          goroot=/usr/local/go
          [ -x $goroot/bin/go ] || goroot=$(GOTOOLCHAIN=local go env GOROOT 2>/dev/null) || die "line $line: no Go here to copy"
          log "COPY ${w[0]}: $(head -1 "$goroot/VERSION") from $goroot"
          mkdir -p "$root$(dirname "${w[2]}")"
          cp -a "$goroot" "$root${w[2]}"
          continue
        fi
        [[ ${w[0]} == --chown=* ]] && { own=${w[0]#--chown=}; w=("${w[@]:1}"); }
        [[ ${w[0]} == --* ]] && die "line $line: COPY ${w[0]} is not supported here"
        copy_context "${w[0]}" "${w[1]}" "$own" ;;
      WORKDIR) workdir=$rest; mkdir -p "$root$workdir" ;;
      USER) user=$rest ;;
      RUN)
        s=$SECONDS
        steplog=$root.logs/$(printf '%02d' "$line")-${rest//[^a-z]/_}.log
        inside "$user" "$rest" >"$steplog" 2>&1 || { tail -30 "$steplog" >&2; die "line $line: RUN $rest (log: $steplog)"; }
        log "RUN $rest (as $user): $((SECONDS - s)) s" ;;
      EXPOSE | CMD | ENTRYPOINT) log "$kw $rest (recorded; a container would start it)" ;;
      *) die "line $line: $kw is not supported by rootfs.sh" ;;
    esac
  done < <(awk -F'\t' -v s="$stage" '$1 == s' <<<"$table")
done
log "built $target in $((SECONDS - start)) s: $(du -sh --exclude=proc --exclude=dev --exclude=tmp "$root" 2>/dev/null | cut -f1)"

# --- checks from the inside, as the user jupyter ----------------------------------------------------
workdir=/opt/tutorial
ok() { log "ok: $*"; }
passwd=$(chroot "$root" getent passwd jupyter) || die "no user jupyter"
[ "$(cut -d: -f3 <<<"$passwd")" = 1000 ] && [ "$(cut -d: -f6 <<<"$passwd")" = /home/jupyter ] ||
  die "user jupyter: $passwd (want uid 1000, home /home/jupyter)"
ok "user jupyter, uid 1000, home /home/jupyter"
python=$(inside jupyter 'tutorial-steps python-check') || die "python3 3.8-3.11 with pip"
ok "$python"
extra=$(comm -13 <(ls -A "$root/etc/skel" | sort) <(ls -A "$root/home/jupyter" | sort))
[ -z "$extra" ] || die "/home/jupyter holds more than the skeleton files: $extra"
ok "/home/jupyter holds only the skeleton files ($(ls -A "$root/home/jupyter" | tr '\n' ' '))"
inside jupyter 'jupyter kernelspec list 2>/dev/null' | grep -q ' /usr/local/share/jupyter/kernels/gonb$' ||
  die "the gonb kernel is not registered in /usr/local/share/jupyter"
ok "kernel gonb registered in /usr/local/share/jupyter/kernels/gonb"

# An empty folder over the home, as a DataSphere project or a volume would mount one.
mount_in -t tmpfs tmpfs "$root/home/jupyter"
chroot "$root" chown jupyter:jupyter /home/jupyter
inside jupyter 'bash kernel/install.sh --check' || die "kernel check with an empty home"
ok "kernel check with an empty folder mounted over /home/jupyter"

# The notebooks copied into a DataSphere-like project folder, outside the repository: notebook 01
# builds against /opt/tutorial (GPT_TUTORIAL_DIR) and keeps its artifacts in work/ beside it.
project=/home/jupyter/datasphere/project/tutorial
inside jupyter "tutorial-steps copy-notebooks $project" || die "copy-notebooks"
inside jupyter "go run ./lib/cmd/gpt notebooks --mode quick --out /tmp/executed $project/01_corpus.ipynb" ||
  die "notebook 01 in $project"
[ -s "$root$project/work/dataset.txt" ] || die "notebook 01 left no $project/work/dataset.txt"
ok "notebook 01 copied to $project ran there: $(du -h "$root$project/work/dataset.txt" | cut -f1) work/dataset.txt beside it"
log "all checks passed ($target, $((SECONDS - start)) s)"
