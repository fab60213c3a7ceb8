#!/usr/bin/env bash
# The ferry demo (make demo): the whole air-gapped flow on sample images, with
# no internet. It builds a bundle from images made locally, then installs it
# with ONE `ferry install` into a containerd and a docker-registry that it
# starts itself, and shows the results with ctr and skopeo.
#
# Everything lives under one temp dir; the machine's /etc/containerd,
# /run/containerd and /var/lib/containerd are never touched. Servers listen on
# 127.0.0.1 with ports chosen at run time. Whatever happens (failure, Ctrl-C),
# everything the demo started is stopped and the temp dir removed.
# Run it as root (containerd needs it) after `make deps build`.
set -euo pipefail

export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"
# Never send the demo's traffic through a proxy: it is all on 127.0.0.1.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost

cd "$(dirname "$0")/.."
FERRY=bin/ferry
STEPS=$(grep -c '^step "' "$0")

if [ -t 1 ]; then
	BOLD=$'\e[1m' DIM=$'\e[2m' RED=$'\e[31m' GREEN=$'\e[32m' RESET=$'\e[0m'
else
	BOLD="" DIM="" RED="" GREEN="" RESET=""
fi

# plain drops the colours that ctr prints even when its output is not a terminal.
plain() {
	if [ -t 1 ]; then cat; else sed 's/\x1b\[[0-9;]*m//g'; fi
}

step_no=0
step_name=""
# step prints a banner for the next step.
step() {
	step_no=$((step_no + 1))
	step_name=$1
	printf '\n%s==> [%d/%d] %s%s\n' "$BOLD" "$step_no" "$STEPS" "$step_name" "$RESET"
}

# show prints a command as it will run (paths under the temp dir as $DEMO).
show() {
	local line="" a
	for a in "$@"; do
		case "$a" in
		*[[:space:]\"\'\$]*) a="'$a'" ;;
		esac
		line+="${line:+ }$a"
	done
	printf '%s$ %s%s\n' "$DIM" "${line//$DEMO/\$DEMO}" "$RESET"
}

# run shows a command, then runs it.
run() {
	show "$@"
	"$@"
}

# ok prints a check that passed.
ok() { printf '%s  ok%s %s\n' "$GREEN" "$RESET" "$*"; }

# fail stops the demo with a message.
fail() {
	printf '%sdemo: %s%s\n' "$RED" "$*" "$RESET" >&2
	exit 1
}

# wait_for polls a command (quietly) every 0.1s for up to $1 seconds.
wait_for() {
	local secs=$1
	shift
	local i
	for ((i = 0; i < secs * 10; i++)); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# Preflight: root, and every program the demo runs.
[ "$(id -u)" -eq 0 ] || fail "run the demo as root (it starts a private containerd): sudo make demo"
for p in go containerd ctr runc skopeo /usr/bin/docker-registry "$FERRY"; do
	command -v "$p" >/dev/null || fail "$p not found: run make deps build first"
done

DEMO="" ctd_pid="" reg_pid="" install_pid=""

# cleanup stops everything the demo started, by pid, and removes $DEMO.
cleanup() {
	local rc=$?
	trap - EXIT
	trap '' INT TERM # finish cleaning up even on a second Ctrl-C
	set +e
	if [ "$rc" -ne 0 ] && [ -n "$step_name" ]; then
		printf '\n%sdemo FAILED at step %d (%s), exit %d%s\n' "$RED" "$step_no" "$step_name" "$rc" "$RESET" >&2
		for log in "$DEMO/install.log" "$DEMO/containerd.log" "$DEMO/registry/registry.log"; do
			if [ -s "$log" ]; then
				printf '%s--- last lines of %s ---%s\n' "$DIM" "$log" "$RESET" >&2
				tail -n 10 "$log" >&2
			fi
		done
	fi
	printf '\n%s==> cleaning up: stopping what the demo started, removing %s%s\n' "$BOLD" "$DEMO" "$RESET"
	stop_pid "$install_pid" ferry
	stop_pid "$reg_pid" docker-registry
	stop_pid "$ctd_pid" containerd
	# Shims of this containerd name its socket or the demo dir on their command line.
	local p
	for p in /proc/[0-9]*; do
		if [ -r "$p/cmdline" ] && tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q "^[^ ]*containerd-shim.* .*$DEMO"; then
			kill -KILL "${p#/proc/}" 2>/dev/null
		fi
	done
	[ -z "$DEMO" ] || rm -rf "$DEMO"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# stop_pid ends a process the demo started: SIGTERM, then SIGKILL after 10s.
stop_pid() {
	local pid=$1 name=$2 i
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "  $name (pid $pid) did not stop on SIGTERM; killing it"
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	echo "  stopped $name (pid $pid)"
}

DEMO=$(mktemp -d /tmp/ferry-demo.XXXXXX)
CTD_SOCK="$DEMO/containerd.sock"
CERTS_D="$DEMO/certs.d"
start=$SECONDS
printf '%sferry demo%s: an air-gapped install of sample images, everything under $DEMO=%s\n' "$BOLD" "$RESET" "$DEMO"

step "Make sample images (OCI layout directories, no registry needed) and a containerd config"
run go run ./scripts/demoimages -out "$DEMO/samples" -containerd "$DEMO"
echo "The image list, $DEMO/samples/images.yaml:"
sed 's/^/    /' "$DEMO/samples/images.yaml"

step "Build the bundle: one OCI image-layout tar with every image and platform"
run "$FERRY" build -f "$DEMO/samples/images.yaml" -b "$DEMO/release.tar"
run sha256sum "$DEMO/release.tar"
echo "Building again gives the same bytes (deterministic):"
run "$FERRY" build --log-level warn -f "$DEMO/samples/images.yaml" -b "$DEMO/again.tar"
run cmp "$DEMO/release.tar" "$DEMO/again.tar"
ok "byte-identical rebuild"
rm -f "$DEMO/again.tar"
echo "Any OCI tool reads it, e.g. tar:"
show tar -tf "$DEMO/release.tar" '|' sed -n 1,4p
tar -tf "$DEMO/release.tar" | sed -n 1,4p

step "Inspect the bundle"
run "$FERRY" inspect "$DEMO/release.tar"

step "Verify the bundle (every blob hashed)"
run "$FERRY" verify "$DEMO/release.tar"

step "Start a private containerd (root, state, socket and certs.d under \$DEMO)"
echo "It runs in its own mount namespace with a fresh /run, so its shims' sockets and runc's state"
echo "stay out of the machine's /run/containerd:"
run_ctd='mount -t tmpfs -o mode=0755 tmpfs /run && exec containerd --config "$1"'
show unshare --mount --propagation private sh -c "$run_ctd" sh "$DEMO/config.toml" '&'
unshare --mount --propagation private sh -c "$run_ctd" sh "$DEMO/config.toml" >"$DEMO/containerd.log" 2>&1 &
ctd_pid=$!
wait_for 30 ctr --address "$CTD_SOCK" version || fail "containerd did not answer on $CTD_SOCK (log: $DEMO/containerd.log)"
ok "containerd $(containerd --version | awk '{print $3}') (pid $ctd_pid) on $CTD_SOCK, CRI registry config_path = $CERTS_D"

step "Start a \"third-party\" registry: docker-registry (distribution) on 127.0.0.1"
mkdir -p "$DEMO/registry/data"
cat >"$DEMO/registry/config.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $DEMO/registry/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:0
  secret: $(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
EOF
show /usr/bin/docker-registry serve "$DEMO/registry/config.yml" '&'
/usr/bin/docker-registry serve "$DEMO/registry/config.yml" >"$DEMO/registry/registry.log" 2>&1 &
reg_pid=$!
wait_for 15 grep -q 'listening on 127\.0\.0\.1:' "$DEMO/registry/registry.log" || fail "docker-registry did not start (log: $DEMO/registry/registry.log)"
REGISTRY=127.0.0.1:$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$DEMO/registry/registry.log" | head -n 1)
ok "docker-registry (pid $reg_pid) on $REGISTRY"

step "Install: ONE command verifies, serves, mirror-configures containerd, imports and pushes"
install=("$FERRY" install "$DEMO/release.tar"
	--serve 127.0.0.1:0 --plain-http
	--mirror docker.io --mirror quay.io --containerd-config-dir "$CERTS_D"
	--import --address "$CTD_SOCK"
	--push-to "$REGISTRY/demo" --push-plain-http
	--serve-for 10m --ready-file "$DEMO/ready")
echo "It runs in the background and keeps serving the bundle (here: until the checks below are done)."
show "${install[@]}" '&'
"${install[@]}" >"$DEMO/install.log" 2>&1 &
install_pid=$!
# ferry install writes the ready file once its steps are done and it serves on.
steps_done() { [ -s "$DEMO/ready" ] || ! kill -0 "$install_pid"; }
wait_for 60 steps_done || fail "ferry install did not finish its steps within 60s"
kill -0 "$install_pid" 2>/dev/null || { cat "$DEMO/install.log"; fail "ferry install exited early"; }
URL=$(cat "$DEMO/ready")
cat "$DEMO/install.log"
install_lines=$(wc -l <"$DEMO/install.log")
! grep -q 'level=error' "$DEMO/install.log" || fail "a step of ferry install failed"
ok "ferry serves the bundle on $URL"
echo "The hosts.toml that sends containerd's docker.io pulls to ferry:"
sed 's/^/    /' "$CERTS_D/docker.io/hosts.toml"

step "Run a container from an imported image"
# runc keeps its state under the demo dir, not the machine's /run/containerd/runc,
# and the container IDs carry the demo's PID: no clash with another containerd's.
run ctr --address "$CTD_SOCK" -n k8s.io images ls
show ctr --address "$CTD_SOCK" -n k8s.io run --rm --fifo-dir "$DEMO/fifo" --runc-root "$DEMO/runc" docker.io/ferrydemo/busybox:1.36 "demo-$$" /bin/echo "hello from an air-gapped bundle"
out=$(ctr --address "$CTD_SOCK" -n k8s.io run --rm --fifo-dir "$DEMO/fifo" --runc-root "$DEMO/runc" docker.io/ferrydemo/busybox:1.36 "demo-$$" /bin/echo "hello from an air-gapped bundle")
echo "$out"
[ "$out" = "hello from an air-gapped bundle" ] || fail "the container printed \"$out\""
ok "the imported image runs"

step "Pull through the mirror: containerd asks for docker.io, ferry answers"
echo "The import wrote the node's platform only; pulling every platform makes containerd fetch"
echo "the arm64 manifest and config through the mirror:"
show ctr --address "$CTD_SOCK" -n demo images pull --all-platforms --hosts-dir "$CERTS_D" docker.io/ferrydemo/app:1.0
ctr --address "$CTD_SOCK" -n demo images pull --all-platforms --hosts-dir "$CERTS_D" docker.io/ferrydemo/app:1.0 | plain
echo "ferry's access log for that pull:"
sleep 0.2
access=$(tail -n +$((install_lines + 1)) "$DEMO/install.log")
install_lines=$(wc -l <"$DEMO/install.log")
sed 's/^/    /' <<<"$access"
grep -q 'GET /v2/ferrydemo/app/manifests/sha256:' <<<"$access" || fail "containerd did not fetch the arm64 manifest from ferry"
show ctr --address "$CTD_SOCK" -n demo run --rm --fifo-dir "$DEMO/fifo" --runc-root "$DEMO/runc" docker.io/ferrydemo/app:1.0 "app-$$"
out=$(ctr --address "$CTD_SOCK" -n demo run --rm --fifo-dir "$DEMO/fifo" --runc-root "$DEMO/runc" docker.io/ferrydemo/app:1.0 "app-$$")
echo "$out"
[[ "$out" == "hello from ferrydemo/app 1.0 (linux/"* ]] || fail "the app printed \"$out\""
ok "pulled docker.io/ferrydemo/app:1.0 through $URL and ran this platform's image of the combined index"

step "Check the third-party registry: every index pushed, digests unchanged"
inspect=$("$FERRY" inspect "$DEMO/release.tar")
for img in docker.io/ferrydemo/busybox:1.36 docker.io/ferrydemo/app:1.0 quay.io/ferrydemo/tool:1; do
	want=$(awk -v n="$img" '$1 == n { print $2 }' <<<"$inspect")
	ref="$REGISTRY/demo/${img#*/}"
	show skopeo inspect --raw --tls-verify=false "docker://$ref" '|' sha256sum
	got=sha256:$(skopeo inspect --raw --tls-verify=false "docker://$ref" | sha256sum | cut -d' ' -f1)
	[ "$got" = "$want" ] || fail "$ref has digest $got, the bundle has $want"
	ok "$ref $got (as in the bundle)"
done
echo "The pushed index of the combined app, as the registry serves it:"
skopeo inspect --raw --tls-verify=false "docker://$REGISTRY/demo/ferrydemo/app:1.0"
echo

step "Stop ferry install (SIGTERM) and show its summary"
show kill -TERM "$install_pid"
kill -TERM "$install_pid"
rc=0
wait "$install_pid" || rc=$?
install_pid=""
tail -n +$((install_lines + 1)) "$DEMO/install.log"
[ "$rc" -eq 0 ] || fail "ferry install exited $rc"
ok "ferry install stopped serving and exited 0"

printf '\n%sdemo passed in %ds.%s What to try next:\n' "$GREEN$BOLD" $((SECONDS - start)) "$RESET"
cat <<'EOF'
  * Bundle real images (on a machine with internet):
      printf 'docker.io/library/nginx:1.25\nquay.io/coreos/etcd:v3.5.9\n' >images.txt
      bin/ferry build -f images.txt -b release.tar --platform linux/amd64,linux/arm64
  * Look inside it as data:   bin/ferry inspect release.tar -o json
  * Install it on a real node (TLS, the node's containerd mirrors, images imported, Harbor seeded):
      bin/ferry install release.tar --serve 0.0.0.0:5000 --tls-self-signed --hostname 10.0.0.5 --ca-out ca.crt \
        --mirror docker.io --mirror quay.io --containerd-config-dir /etc/containerd/certs.d \
        --import --push-to harbor.local/tke --push-ca-file harbor-ca.crt
  * Point the other nodes at it:
      bin/ferry mirror-config --server https://10.0.0.5:5000 --ca ca.crt --mirror docker.io --mirror quay.io --dir /etc/containerd/certs.d
  * Run every test: make test     Compare with skopeo, crane and ctr: make bench
  * README.md has every command, the bundle format, the image-list forms and how to trust the CA.
EOF
