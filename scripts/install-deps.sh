#!/usr/bin/env bash
# Installs what ferry's tests, demo and benchmarks need on Debian 12:
# containerd (+ctr), runc, docker-registry (distribution 2.8), skopeo,
# busybox-static and CA certificates from apt; cosign and oras (the
# independent signing and referrers clients of the trust tests) built with
# `go install` into $FERRY_TOOLS_BIN (default ${XDG_CACHE_HOME:-~/.cache}/ferry/tools/bin),
# reused when present. Idempotent: apt runs only when something is missing.
# It starts nothing (services are kept from starting during the install) and
# leaves /etc/containerd alone.
set -euo pipefail

export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"

PKGS=(containerd runc docker-registry skopeo busybox-static ca-certificates)

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
for b in containerd ctr runc skopeo; do
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

echo "install-deps: $did; $(containerd --version | awk '{print "containerd " $3}'), $(skopeo --version), $(go version | awk '{print $3}')"
