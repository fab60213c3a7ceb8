#!/usr/bin/env bash
# `make bench`: ferry against skopeo, crane, ctr and docker-registry on the
# same generated corpus in the same run; writes docs/benchmarks.md.
#
#   BENCH_SIZE=small|large   corpus size (default small: a few minutes on 2 cores;
#                            large: about 2 GB of blobs, much longer)
#   BENCH_RUNS=N             timed runs per tool and step (the median is reported;
#                            default 5 for small, 3 otherwise)
#   BENCH_KEEP=1             keep the scratch directory (logs of every command) after the run
#
# Needs what scripts/install-deps.sh installs, GNU time (installed here if
# missing), root for containerd, and Go; crane is installed under .bench/bin
# through the Go module proxy at go.mod's go-containerregistry version.
# Everything runs on 127.0.0.1 under a scratch directory made with mktemp,
# and is stopped and removed on exit, Ctrl-C included.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"

size="${BENCH_SIZE:-small}"
default_runs=3
[ "$size" = small ] && default_runs=5
runs="${BENCH_RUNS:-$default_runs}"
tools="$PWD/.bench/bin"
mkdir -p "$tools"

SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)

# GNU time reports each command's peak RSS.
if [ ! -x /usr/bin/time ]; then
	"${SUDO[@]}" apt-get update -qq >/dev/null
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends time >/dev/null
fi

# crane at the go-containerregistry version ferry uses.
ggcr_version="$(go list -m -f '{{.Version}}' github.com/google/go-containerregistry)"
if [ "$("$tools/crane" version 2>/dev/null || true)" != "$ggcr_version" ]; then
	echo "bench: installing crane $ggcr_version into $tools"
	GOBIN="$tools" go install "github.com/google/go-containerregistry/cmd/crane@$ggcr_version"
fi

go build -o bin/ferry ./cmd/ferry
go build -o "$tools/ferry-bench" ./scripts/bench

work="$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench.XXXXXX")"
pid=""
cleanup() {
	status=$?
	trap - EXIT INT TERM
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	if [ "${BENCH_KEEP:-}" = 1 ]; then
		echo "bench: kept $work"
	else
		rm -rf "$work"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$tools/ferry-bench" -size "$size" -runs "$runs" -work "$work" \
	-ferry "$PWD/bin/ferry" -crane "$tools/crane" -out docs/benchmarks.md \
	-command "BENCH_SIZE=$size make bench" &
pid=$!
wait "$pid"
