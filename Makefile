# The two commands of the README: `make tutorial` and `make test`.
export GOTOOLCHAIN := go1.27.3
GO ?= go

.PHONY: tutorial test kernel vet fmt-check unit notebooks

## tutorial: install what is missing (Jupyter, the GoNB kernel), then run every notebook headless in quick mode.
tutorial: kernel notebooks

## test: vet, gofmt, unit tests (notebook runner tests included), and the notebooks in quick mode.
test: kernel vet fmt-check unit notebooks

kernel:
	bash kernel/install.sh

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l lib); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

unit:
	GPT_NOTEBOOK_TESTS=1 $(GO) test ./...

notebooks:
	$(GO) run ./lib/cmd/gpt notebooks --mode quick
