#!/usr/bin/env bash
# The data pipeline at scale: `gpt data prepare` (streaming, this checkout) against data.Load as it
# was before streaming (commit $GPT_BENCH_BASE, every line in memory, no cache dir), on corpora of
# the given sizes made from the mirror's text (the tutorial's dataset.txt, copied with each copy's
# lines shuffled by its own seed, as many as reach the size; nothing is committed), with ruGPT-3's tokenizer and block 1024.
# Alternates old and new in each round, then runs new again (finding its cache); prints each run
# and the medians of the time, the throughput and the peak memory (max RSS). In the first round it
# checks that the new blocks are the old ones byte for byte (sha256 of the tokens). Needs ../shared,
# git and GNU time.
#
#   lib/data/bench/scale.sh [ROUNDS] [SIZE_MB ...]      (default: 3 rounds, 100 and 1000 MB)
set -euo pipefail
export GOTOOLCHAIN=go1.27.3
export GOEXPERIMENT=simd
cd "$(dirname "$0")/../../.."
shared=$(realpath "${GPT_SHARED_DIR:-../shared}")
rounds=${1:-3}
shift || true
sizes=${*:-100 1000}
base=${GPT_BENCH_BASE:-0142445}
text=$shared/fixtures/tutorial-dataset.txt
tok=$shared/tokenizers/rugpt3/tokenizer.json
work=$(mktemp -d "${TMPDIR:-/tmp}/gpt-data-bench.XXXXXX")
cleanup() { git worktree remove --force "$work/old" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/gpt" ./lib/cmd/gpt
git worktree add -q --detach "$work/old" "$base"
mkdir -p "$work/old/lib/cmd/oldload"
cat >"$work/old/lib/cmd/oldload/main.go" <<'GO'
// oldload runs data.Load as the old pipeline did it (no cache dir) and prints its throughput.
package main

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"time"

	"github.com/gonb-gpt/tutorial/lib/data"
	"github.com/gonb-gpt/tutorial/lib/tokenizer"
)

func main() {
	tok, err := tokenizer.Load(os.Args[2])
	if err != nil {
		panic(err)
	}
	start := time.Now()
	b, err := data.Load(os.Args[1], tok, data.Options{BlockSize: 1024})
	if err != nil {
		panic(err)
	}
	st, _ := os.Stat(os.Args[1])
	s := time.Since(start).Seconds()
	fmt.Printf("%d blocks (%.1f MB/s)\n", b.Len(), float64(st.Size())/1e6/s)
	h := sha256.New()
	buf := make([]byte, 0, 1<<20)
	for i, v := range b.Tokens {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(v))
		if len(buf) == cap(buf) || i == len(b.Tokens)-1 {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	fmt.Printf("sha256 %x\n", h.Sum(nil))
}
GO
(cd "$work/old" && go build -o "$work/oldload" ./lib/cmd/oldload)

for mb in $sizes; do
  i=0
  while [ "$(stat -c %s "$work/c$mb.txt" 2>/dev/null || echo 0)" -lt $((mb * 1000000)) ]; do
    i=$((i + 1))
    shuf --random-source=<(yes "$i") "$text" >>"$work/c$mb.txt"
  done
  echo "corpus c$mb.txt: $(stat -c %s "$work/c$mb.txt") bytes ($i shuffled copies)"
done

run() { # name, command...: appends "seconds MB/s rss_kB" to $work/name.res
  local name=$1
  shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$work/out"
  local rate
  rate=$(grep -oE '[0-9.]+ MB/s' "$work/out" | head -1 | cut -d' ' -f1 || true)
  rate=${rate:--}
  read -r secs rss <"$work/time"
  echo "$secs $rate $rss" >>"$work/$name.res"
  printf '%-12s %7s s %7s MB/s  max RSS %8s kB  %s\n' "$name" "$secs" "$rate" "$rss" "$(head -1 "$work/out")"
}

for r in $(seq "$rounds"); do
  for mb in $sizes; do
    run "old-$mb" "$work/oldload" "$work/c$mb.txt" "$tok"
    old_sha=$(awk '/^sha256/ {print $2}' "$work/out")
    rm -rf "$work/cache"
    prepare=("$work/gpt" data prepare --quiet --corpus "$work/c$mb.txt" --tokenizer "$tok" --cache-dir "$work/cache")
    run "new-$mb" "${prepare[@]}"
    if [ "$r" = 1 ]; then
      new_sha=$(tail -c +25 "$work"/cache/blocks-*.bin | sha256sum | cut -c1-64)
      if [ "$new_sha" != "$old_sha" ]; then
        echo "the blocks differ from the old pipeline's: sha256 $new_sha, old $old_sha" >&2
        exit 1
      fi
      echo "$mb MB: the blocks are the old pipeline's, byte for byte (sha256 $new_sha)"
    fi
    run "cached-$mb" "${prepare[@]}"
  done
done

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo
echo "medians over $rounds rounds ($(nproc) CPUs):"
for mb in $sizes; do
  for v in old new cached; do
    f=$work/$v-$mb.res
    printf '%-6s %5s MB: %7s s  %6s MB/s  max RSS %8s kB\n' "$v" "$mb" "$(cut -d' ' -f1 "$f" | median)" \
      "$(cut -d' ' -f2 "$f" | median)" "$(cut -d' ' -f3 "$f" | median)"
  done
done
