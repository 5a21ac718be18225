# sbx — build, test and measure. `make help` lists the targets.
GO        ?= go
PREFIX    ?= /usr/local
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME  ?= 60s
BENCHTIME ?= 1s

.PHONY: help build install example test lint fuzz bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build bin/sbx (static, no cgo)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/sbx ./cmd/sbx

install: build ## install sbx into $(PREFIX)/bin
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 bin/sbx $(DESTDIR)$(PREFIX)/bin/sbx

example: install ## build the hello example's image, then validate and plan it
	$(MAKE) -C examples/hello
	sbx -C examples/hello validate
	sbx -C examples/hello plan

test: ## vet and run every test (as root for the namespace and overlay tests)
	$(GO) vet ./...
	$(GO) test -count=1 ./...

lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

fuzz: ## run each fuzz target for FUZZTIME (default 60s)
	$(GO) test ./lang -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME)

bench: ## run the benchmarks (figures reported in the issues' notes)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

clean:
	rm -rf bin
