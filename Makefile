# The two commands of the README: `make tutorial` and `make test`.
export GOTOOLCHAIN := go1.27.3
# GoMLX's pure-Go backend uses SIMD kernels only when built with the simd experiment: measured 6×
# faster training steps (docs/benchmarks.md).
export GOEXPERIMENT := simd
GO ?= go

.PHONY: tutorial params test kernel vet fmt-check unit unit-no-shared notebooks browser-test hf-anchor device-check device-prepare image-check

SHARED ?= ../shared
HF_DIR := build/hf-tokenizers

## tutorial: check the parameters (GPT_* variables), install what is missing (Jupyter, the GoNB kernel), then run
## every notebook headless in quick mode.
tutorial: params kernel notebooks

## params: the notebooks' parameters in quick mode as the environment sets them; fails on an invalid one.
params:
	$(GO) run ./lib/cmd/gpt params --mode quick

## test: vet, gofmt, unit tests (notebook runner tests included), and the notebooks in quick mode.
test: kernel hf-anchor vet fmt-check unit notebooks

kernel:
	bash kernel/install.sh

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l lib docker); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# HF tokenizers (Rust, its Node binding from npm) to check that our tokenizer.json files load in HF;
# installed only where the reference data (../shared) is.
hf-anchor:
	@if [ -d $(SHARED)/bench/hf-tokenizers ] && command -v npm >/dev/null; then \
	  if [ ! -d $(HF_DIR)/node_modules/@anush008/tokenizers ]; then \
	    mkdir -p $(HF_DIR) && cp $(SHARED)/bench/hf-tokenizers/*.js $(SHARED)/bench/hf-tokenizers/package.json $(HF_DIR)/ && \
	    (cd $(HF_DIR) && npm install --no-audit --no-fund --silent); \
	  fi; \
	else echo "hf-anchor: no $(SHARED)/bench/hf-tokenizers or npm: the HF cross-check test will be skipped"; fi

unit:
	@if [ -d $(HF_DIR)/node_modules/@anush008/tokenizers ]; then export GPT_HF_TOKENIZERS_DIR=$(CURDIR)/$(HF_DIR); fi; \
	GPT_NOTEBOOK_TESTS=1 $(GO) test ./...
	cd lib/third_party/go-xla && $(GO) test -run 'TestExecutableCache' ./pjrt/

## unit-no-shared: the unit tests with ../shared hidden, as a newcomer runs them: they pass, skips listed.
unit-no-shared:
	bash .ci/unit-no-shared

notebooks:
	$(GO) run ./lib/cmd/gpt notebooks --mode quick

## browser-test: the notebooks in a real browser: classic Jupyter Notebook and headless Chromium (Selenium),
## Cell → Run All in each, then checks on the page (no errors; the training and generation blocks shown).
## Screenshots in build/screenshots; BROWSER_TEST_TIMEOUT: seconds per notebook (default 900).
browser-test: kernel
	bash .ci/browser-test

## image-check: build the Docker image's root filesystem without Docker (root, debootstrap) and check it
## from the inside: the kernel, and notebook 01 in a DataSphere-like project folder (docker/README.md).
image-check:
	bash docker/rootfs.sh

## device-check: the GPU check (XLA CUDA against PyTorch, parity, interop); on a machine without a GPU
## the same steps on the pure-Go backend at tiny sizes. Results in build/device-check/results.md.
device-check:
	bash .ci/device-check

## device-prepare: build the binaries and copy the reference data the device check needs into
## build/device, for a GPU machine without Go (carry build/device; run `bash .ci/device-check` there).
device-prepare:
	bash .ci/device-check --prepare
