GO ?= go
BIN := bin/touchpoint

.PHONY: run test build bench lint fmt clean

## run: serve the demo on the embedded store (no Redis needed) at :8080
run: build
	./$(BIN) serve --config configs/touchpoint.yaml

## test: vet, then the whole suite with the race detector
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

## build: write bin/touchpoint
build:
	$(GO) build -o $(BIN) ./cmd/touchpoint

## bench: the hot-path benchmarks with allocation counts
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./engine/ ./features/ ./server/ ./benchmarks/

## lint: formatting and vet
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
