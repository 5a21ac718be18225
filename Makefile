# sbx — build, test and measure. `make help` lists the targets.
GO        ?= go
PREFIX    ?= /usr/local
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME  ?= 60s
BENCHTIME ?= 1s

.PHONY: help deps build install man example test lint fuzz bench bench-compare clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build bin/sbx and bin/sbx-init, the in-sandbox init (static, no cgo)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/sbx ./cmd/sbx
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o bin/sbx-init ./cmd/sbx-init

man: ## write the manual page man/sbx.1, generated from the command line's model
	@mkdir -p man
	$(GO) run -ldflags '-X main.version=$(VERSION)' ./cmd/sbx __man > man/sbx.1.tmp && mv man/sbx.1.tmp man/sbx.1

install: build ## install sbx and sbx-init into $(PREFIX)/bin
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 bin/sbx $(DESTDIR)$(PREFIX)/bin/sbx
	install -m 0755 bin/sbx-init $(DESTDIR)$(PREFIX)/bin/sbx-init

# Debian packages the tests and the example need: busybox-static (test images), gcc (the
# stand-in libkrun), iproute2 (test hosts in network namespaces), curl, podman and runc (the
# isolation suite compares sbx with podman --runtime runc).
DEB_DEPS := busybox-static gcc libc6-dev iproute2 curl podman runc
deps: ## install the Debian packages the tests need, when missing (as root)
	@missing=$$(for p in $(DEB_DEPS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing $$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing packages: $$missing (install them, or run as root)"; fi; \
	fi

example: deps install ## build the hello example's image and bring it up with the ns driver (as root)
	$(MAKE) -C examples/hello
	sbx -C examples/hello validate
	sbx -C examples/hello up
	curl -fsS http://127.0.0.1:8088/
	sbx -C examples/hello ps
	@echo "The hello example runs: 'sbx -C examples/hello logs -f' follows it, 'sbx -C examples/hello down' stops it."

test: deps ## vet and run every test (as root: the namespace, overlay and network tests need it)
	$(GO) vet ./...
	$(GO) test -count=1 ./...

lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 $(GO) vet ./...

fuzz: ## run each fuzz target for FUZZTIME (default 60s)
	$(GO) test ./lang -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME)
	$(GO) test ./convert/compose -run '^$$' -fuzz '^FuzzImport$$' -fuzztime $(FUZZTIME)

bench: deps ## run the benchmarks (figures reported in the issues' notes), then bench-compare
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...
	$(MAKE) bench-compare

bench-compare: ## side-by-side timings against skopeo+umoci and podman (installs them)
	bash runtime/image/bench/compare.sh
	bash bench/podman.sh

clean:
	rm -rf bin
