# ferry: build, test, demo and benchmarks. `make test` is what CI runs.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin

GO ?= go
# Corpus size for `make bench`: small (default) or large; BENCH_RUNS=N sets the
# runs per tool and step (default 5 for small, 3 for large). See scripts/bench.sh.
BENCH_SIZE ?= small
# How long `make fuzz-smoke` runs each fuzz target.
FUZZTIME ?= 10s
# Where `make install` puts ferry: $(DESTDIR)$(PREFIX)/bin/ferry.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin

.PHONY: all build install deps test vet fuzz-smoke demo bench clean

all: build

# -buildvcs=auto stamps the commit into the binary (ferry version) when
# built in a git clone, whatever GOFLAGS says.
build:
	$(GO) build -buildvcs=auto -o bin/ferry ./cmd/ferry

install: build
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 bin/ferry $(DESTDIR)$(BINDIR)/ferry

deps:
	bash scripts/install-deps.sh

vet:
	$(GO) vet ./...

test: deps
	$(GO) vet ./...
	$(GO) test -p 2 -count=1 -timeout 40m ./...

# Runs every Fuzz* target briefly (seed corpus plus FUZZTIME of fuzzing).
fuzz-smoke:
	@set -euo pipefail; \
	for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' "$$pkg" | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime=200x "$$pkg"; \
		done; \
	done

demo: deps build
	bash scripts/demo.sh

bench: deps build
	BENCH_SIZE=$(BENCH_SIZE) bash scripts/bench.sh

clean:
	rm -rf bin
