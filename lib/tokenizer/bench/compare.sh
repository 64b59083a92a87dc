#!/usr/bin/env bash
# Compares the Go tokenizer with HF tokenizers (Rust, its Node binding) on the same machine, in
# the same run, alternating A B A B: training the tutorial's BPE on the tutorial dataset, and
# encoding the dataset with the ruGPT-3 and the tutorial tokenizers. Prints each run and the medians,
# with peak memory (max RSS). Needs ../shared and npm.
#
#   lib/tokenizer/bench/compare.sh [ROUNDS]
set -euo pipefail
export GOTOOLCHAIN=go1.27.3
export GOEXPERIMENT=simd
cd "$(dirname "$0")/../../.."
shared=${GPT_SHARED_DIR:-../shared}
rounds=${1:-5}
corpus=$shared/fixtures/tutorial-dataset.txt
rugpt3=$shared/tokenizers/rugpt3/tokenizer.json
tutorial=$shared/fixtures/bpe-tutorial/tokenizer.json
make -s hf-anchor
go build -o build/gpt ./lib/cmd/gpt
hf=build/hf-tokenizers
out=$(mktemp -d)

run() { # name, command...: appends "value rss_kb" to $out/name
  local name=$1; shift
  /usr/bin/time -f "RSS %M" "$@" >"$out/last" 2>"$out/time"
  local v
  v=$(grep -oE '(train_s|MB/s)=[0-9.]+' "$out/last" | head -1 | cut -d= -f2)
  echo "$v $(awk '/^RSS/ {print $2}' "$out/time")" >>"$out/$name"
  echo "$name: $v (max RSS $(awk '/^RSS/ {print $2}' "$out/time") kB)"
}

for i in $(seq "$rounds"); do
  run hf_train node $hf/train.js "$corpus"
  run go_train build/gpt bench tokenizer --corpus "$corpus"
  run hf_enc_rugpt3 node $hf/encode.js "$rugpt3" "$corpus"
  run go_enc_rugpt3 build/gpt bench tokenizer --train=false --corpus "$corpus" --tokenizer "$rugpt3"
  run hf_enc_tutorial node $hf/encode.js "$tutorial" "$corpus"
  run go_enc_tutorial build/gpt bench tokenizer --train=false --corpus "$corpus" --tokenizer "$tutorial"
done

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo
echo "medians over $rounds rounds ($(nproc) CPUs):"
for name in hf_train go_train hf_enc_rugpt3 go_enc_rugpt3 hf_enc_tutorial go_enc_tutorial; do
  printf '%-16s %8s   max RSS %s kB\n' "$name" "$(cut -d' ' -f1 "$out/$name" | median)" "$(cut -d' ' -f2 "$out/$name" | median)"
done
rm -rf "$out"
