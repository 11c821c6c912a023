GO ?= go
PYTHON ?= python3
BIN := bin/touchpoint

.PHONY: run test build bench bench-main bench-opa bench-peer bench-overload soak train-demo lint fmt clean ui-editor

## run: serve the demo on the embedded store (no Redis needed) at :8080, with the playground at /ui/ and triggers printed to stdout
# The admin key is TOUCHPOINT_ADMIN_KEY when set, else one made up once and
# kept in bin/admin-key (readable by you alone); the link logs the playground in.
run: build
	@key="$${TOUCHPOINT_ADMIN_KEY:-}"; \
	if [ -z "$$key" ]; then \
	  [ -s bin/admin-key ] || (umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' > bin/admin-key); \
	  key="$$(cat bin/admin-key)"; \
	fi; \
	echo "Playground: http://localhost:8080/ui/#key=$$key"; \
	echo "Triggers print what they would send here, with delays 60 times shorter (2 h in 2 min)."; \
	TOUCHPOINT_ADMIN_KEY="$$key" exec ./$(BIN) serve --config configs/touchpoint.yaml --deliver-stdout --time-scale 60

## test: vet, then the whole suite with the race detector
test:
	@command -v redis-server >/dev/null 2>&1 || echo "note: redis-server is not installed, so the Redis integration tests are skipped (apt-get install redis-server; under CI they fail instead)"
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

## build: write bin/touchpoint (stamped with its git commit when built in a checkout)
build:
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/touchpoint

## bench: every benchmark with allocation counts, then the OPA comparison; one summary table at the end, raw output in bin/bench.txt
bench:
	@GO='$(GO)' sh benchmarks/bench.sh all

## bench-main: the engine, features, server and benchmarks packages only
bench-main:
	@GO='$(GO)' sh benchmarks/bench.sh main

## bench-opa: Touchpoint against OPA's Rego on the same rules and inputs (module benchmarks/opa)
bench-opa:
	@GO='$(GO)' sh benchmarks/bench.sh opa

## bench-peer: the decide server against a bare fasthttp handler under the load generator, each pinned to its own core
bench-peer:
	@GO='$(GO)' bash benchmarks/peer.sh

## bench-overload: the decide server at 75% and 200% of its sustainable rate, admission control on and off, pinned
bench-overload:
	@GO='$(GO)' bash benchmarks/overload.sh

## soak: the demo on a real Redis for 10 minutes at half its measured maximum, decides and events mixed; memory, goroutines and p99 per minute in bin/soak/report.md
soak:
	@GO='$(GO)' bash benchmarks/soak.sh

## train-demo: retrain the demo's ranking models into configs/rules/models (needs numpy, scikit-learn, xgboost, PyYAML)
train-demo:
	$(PYTHON) models/training/train_demo.py

STATICCHECK_VERSION := v0.8.2

## lint: formatting, vet and staticcheck (installed into bin/ at a pinned version)
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	@test -x bin/staticcheck-$(STATICCHECK_VERSION) || GOBIN="$$(pwd)/bin/.staticcheck" $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@test -x bin/staticcheck-$(STATICCHECK_VERSION) || mv bin/.staticcheck/staticcheck bin/staticcheck-$(STATICCHECK_VERSION)
	./bin/staticcheck-$(STATICCHECK_VERSION) ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin

## ui-editor: rebuild the playground's vendored code editor (ui/assets/vendor/editor.js) from ui/editor (needs Node.js and npm)
ui-editor:
	cd ui/editor && npm ci && node build.mjs
