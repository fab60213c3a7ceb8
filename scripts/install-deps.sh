#!/usr/bin/env bash
# Installs what ferry's tests, demo and benchmarks need on Debian 12:
# containerd 1.6 (+ctr), runc, docker-registry (distribution 2.8), skopeo,
# podman, busybox-static and CA certificates from apt; cosign and oras (the
# independent signing and referrers clients of the trust tests) built with
# `go install` into $FERRY_TOOLS_BIN (default ${XDG_CACHE_HOME:-~/.cache}/ferry/tools/bin),
# reused when present; and a containerd 2.x (containerd,
# containerd-shim-runc-v2, ctr) built with `go install` into
# ${XDG_CACHE_HOME:-$HOME/.cache}/ferry/containerd-VERSION/bin, where
# internal/testenv finds it (VERSION: internal/testenv/containerd2.version),
# built only when that directory lacks a binary. Idempotent: apt runs only
# when something is missing. It starts nothing (services are kept from
# starting during the install) and leaves /etc/containerd and
# /etc/containers alone.
set -euo pipefail

export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"

PKGS=(containerd runc docker-registry skopeo podman busybox-static ca-certificates)

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	SUDO=(sudo)
fi

missing=()
have() { command -v "$1" >/dev/null 2>&1; }
have containerd || missing+=(containerd)
have ctr || missing+=(ctr)
have runc || missing+=(runc)
[ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
have skopeo || missing+=(skopeo)
have podman || missing+=(podman)
# The busybox package also installs /bin/busybox, but a dynamic one: the test
# images need the static build.
if have dpkg-query; then
	dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed' || missing+=(busybox-static)
else
	[ -x /bin/busybox ] || missing+=(busybox-static)
fi
[ -e /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)

did="all present"
if [ "${#missing[@]}" -gt 0 ]; then
	# Keep the packages' services (containerd, docker-registry on :5000) from
	# being started by the install: policy-rc.d exit 101 = "action forbidden".
	policy=/usr/sbin/policy-rc.d
	added_policy=""
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
		"${SUDO[@]}" chmod 755 "$policy"
		added_policy=1
	fi
	cleanup() { if [ -n "$added_policy" ]; then "${SUDO[@]}" rm -f "$policy"; fi; }
	trap cleanup EXIT

	"${SUDO[@]}" apt-get update -qq >/dev/null
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null
	did="installed ${PKGS[*]} (missing: ${missing[*]})"
fi

# Check the result, and that Go is there.
for b in containerd ctr runc skopeo podman; do
	have "$b" || { echo "install-deps: $b still missing after install" >&2; exit 1; }
done
[ -x /usr/bin/docker-registry ] || { echo "install-deps: /usr/bin/docker-registry still missing" >&2; exit 1; }
[ -x /bin/busybox ] || { echo "install-deps: /bin/busybox still missing" >&2; exit 1; }
if ! have go; then
	echo "install-deps: go not found on PATH or in /usr/local/go/bin; install Go (see go.mod for the version)" >&2
	exit 1
fi

# cosign, oras and the OCI conformance suite: pinned versions, built once into
# the tools cache (the Go build cache makes a rebuild quick). internal/testenv
# finds them there.
COSIGN_VERSION=v2.6.5
ORAS_VERSION=v1.3.6
TOOLS_BIN="${FERRY_TOOLS_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry/tools/bin}"
mkdir -p "$TOOLS_BIN"
tool() { # name version package
	local stamp="$TOOLS_BIN/.$1-$2"
	if [ -x "$TOOLS_BIN/$1" ] && [ -e "$stamp" ]; then
		return
	fi
	echo "install-deps: building $1 $2 into $TOOLS_BIN" >&2
	GOBIN="$TOOLS_BIN" go install "$3@$2"
	touch "$stamp"
	did="$did; built $1 $2"
}
tool cosign "$COSIGN_VERSION" github.com/sigstore/cosign/v2/cmd/cosign
tool oras "$ORAS_VERSION" oras.land/oras/cmd/oras

# The OCI distribution-spec conformance suite at tag v1.1.1 (commit a139cc4:
# its conformance/ module has no tag of its own), as a ginkgo test binary
# built in a throwaway module.
CONFORMANCE_VERSION=v0.0.0-20250123160558-a139cc423184
if [ ! -x "$TOOLS_BIN/oci-conformance.test" ] || [ ! -e "$TOOLS_BIN/.oci-conformance.test-$CONFORMANCE_VERSION" ]; then
	echo "install-deps: building the OCI conformance suite $CONFORMANCE_VERSION into $TOOLS_BIN" >&2
	tmp="$(mktemp -d)"
	printf 'module ferry.test/tools/conformance\n\ngo 1.24\n\nrequire github.com/opencontainers/distribution-spec/conformance %s\n' \
		"$CONFORMANCE_VERSION" >"$tmp/go.mod"
	if ! (cd "$tmp" && go test -mod=mod -c -o "$TOOLS_BIN/oci-conformance.test" github.com/opencontainers/distribution-spec/conformance); then
		rm -rf "$tmp"
		echo "install-deps: building the OCI conformance suite failed (it needs the Go module proxy)" >&2
		exit 1
	fi
	rm -rf "$tmp"
	touch "$TOOLS_BIN/.oci-conformance.test-$CONFORMANCE_VERSION"
	did="$did; built the OCI conformance suite $CONFORMANCE_VERSION"
fi

# containerd 2.x, beside Debian's 1.6: built from the Go module proxy, once
# per machine (about two minutes on 2 cores with empty Go caches; 181 s of
# CPU). No build tag is needed here; no_btrfs leaves out the btrfs
# snapshotter (the tests disable it), whose cgo build would otherwise depend
# on gcc and linux-libc-dev being present.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ctd2_version="$(tr -d ' \n' <"$here/../internal/testenv/containerd2.version")"
ctd2_bin="${XDG_CACHE_HOME:-$HOME/.cache}/ferry/containerd-${ctd2_version#v}/bin"
ctd2_cmds=(containerd containerd-shim-runc-v2 ctr)
ctd2_missing=""
for b in "${ctd2_cmds[@]}"; do [ -x "$ctd2_bin/$b" ] || ctd2_missing=1; done
if [ -n "$ctd2_missing" ]; then
	echo "install-deps: building containerd $ctd2_version into $ctd2_bin (once per machine)" >&2
	start=$SECONDS
	mkdir -p "$ctd2_bin"
	pkgs=()
	for b in "${ctd2_cmds[@]}"; do pkgs+=("github.com/containerd/containerd/v2/cmd/$b@$ctd2_version"); done
	# Build into a temp dir and move the binaries in last, so a killed build
	# never leaves a half-filled cache that the check above would accept.
	tmpbin="$(mktemp -d "$ctd2_bin/.build.XXXXXX")"
	GOBIN="$tmpbin" go install -tags no_btrfs "${pkgs[@]}"
	for b in "${ctd2_cmds[@]}"; do mv "$tmpbin/$b" "$ctd2_bin/$b"; done
	rmdir "$tmpbin"
	did="$did; built containerd $ctd2_version in $((SECONDS - start))s"
fi
"$ctd2_bin/containerd" --version | grep -q " ${ctd2_version#v}" || { echo "install-deps: $ctd2_bin/containerd is not $ctd2_version" >&2; exit 1; }

echo "install-deps: $did; $(containerd --version | awk '{print "containerd " $3}') and ${ctd2_version#v} ($ctd2_bin), $(skopeo --version), $(podman --version), $(go version | awk '{print $3}')"
