package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-oci/ferry/internal/testenv"
)

// TestMirrorConfigPodman has podman (Debian's) pull an image through the
// registries.conf drop-in and CA that `mirror-config --format
// registries.conf` writes, from `ferry serve` over TLS with its own CA.
// podman's configuration, storage and state all live under the test's temp
// dir: the drop-in goes where containers/image reads a user's
// (HOME/.config/containers, the same layout as /etc/containers), and
// nothing under the machine's /etc is touched.
func TestMirrorConfigPodman(t *testing.T) {
	podman := testenv.RequireBinary(t, "podman")
	path, digests := pushTestBundle(t)
	tmp := t.TempDir()
	ca := filepath.Join(tmp, "ca.crt")
	url, stop := startServe(t, "serve", path, "--tls-self-signed", "--hostname", "127.0.0.1", "--ca-out", ca, "--listen", "127.0.0.1:0", "--read-only")

	home := filepath.Join(tmp, "home")
	conf := filepath.Join(home, ".config", "containers")
	var out, errOut bytes.Buffer
	if code := execute(context.Background(), []string{"mirror-config", "--format", "registries.conf", "--server", url, "--ca", ca,
		"--mirror", "docker.io", "--dir", conf}, &out, &errOut); code != exitOK {
		t.Fatalf("mirror-config: exit %d: %s", code, errOut.String())
	}
	// The rest of podman's private configuration: no search registries
	// of the machine, a policy that accepts unsigned images, vfs storage.
	for name, content := range map[string]string{
		"registries.conf": "unqualified-search-registries = []\n",
		"policy.json":     `{"default": [{"type": "insecureAcceptAnything"}]}`,
		"storage.conf":    "[storage]\ndriver = \"vfs\"\ngraphroot = \"" + filepath.Join(tmp, "storage") + "\"\nrunroot = \"" + filepath.Join(tmp, "run") + "\"\n",
		"auth.json":       "{}",
		"containers.conf": "[engine]\nevents_logger = \"none\"\ncgroup_manager = \"cgroupfs\"\ntmp_dir = \"" + filepath.Join(tmp, "libpod") + "\"\nimage_copy_tmp_dir = \"" + tmp + "\"\n",
	} {
		if err := os.WriteFile(filepath.Join(conf, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, podman, args...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG=", "REGISTRY_AUTH_FILE="+filepath.Join(conf, "auth.json"), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "XDG_RUNTIME_DIR="+filepath.Join(tmp, "xdg"),
			"CONTAINERS_CONF="+filepath.Join(conf, "containers.conf"), "CONTAINERS_STORAGE_CONF="+filepath.Join(conf, "storage.conf"))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("podman %s: %v:\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return stdout.String()
	}
	run("pull", "docker.io/library/multi:1")
	got := strings.TrimSpace(run("image", "inspect", "--format", "{{.Digest}}", "docker.io/library/multi:1"))
	if got != digests["multi"].String() {
		t.Errorf("podman's image has digest %s, the bundle's is %s", got, digests["multi"])
	}
	_, _, stderr := stop()
	if !strings.Contains(stderr, "GET /v2/docker.io/library/multi/manifests/1 200") {
		t.Errorf("ferry serve did not serve the pull:\n%s", stderr)
	}
}

// TestMirrorConfigCommand drives the command: the containerd config form
// follows the containerd on PATH, each format prints its files, and bad
// flags are usage errors.
func TestMirrorConfigCommand(t *testing.T) {
	noContainerd := t.TempDir()
	for _, tc := range []struct {
		name   string
		path   func(t *testing.T) string // PATH; nil keeps it
		args   []string
		code   int
		stdout []string
		absent []string
	}{
		{name: "containerd 1.x on PATH", path: containerdPath(testenv.Containerd1),
			args:   []string{"--print-containerd-config", "--dir", "/node/certs.d"},
			stdout: []string{"version = 2", `[plugins."io.containerd.grpc.v1.cri".registry]`, `config_path = "/node/certs.d"`},
			absent: []string{"version = 3"}},
		{name: "containerd 2.x on PATH", path: containerdPath(testenv.Containerd2),
			args:   []string{"--print-containerd-config"},
			stdout: []string{"version = 3", `[plugins."io.containerd.cri.v1.images".registry]`, `config_path = "/etc/containerd/certs.d"`, "/etc/containerd/conf.d/ferry.toml"},
			absent: []string{"version = 2"}},
		{name: "no containerd on PATH", path: func(*testing.T) string { return noContainerd },
			args:   []string{"--print-containerd-config"},
			stdout: []string{"version = 2", "version = 3"}},
		{name: "hosts.toml printed", args: []string{"--server", "https://10.0.0.5:5000", "--mirror", "quay.io"},
			stdout: []string{"# --- /etc/containerd/certs.d/quay.io/hosts.toml", `[host."https://10.0.0.5:5000"]`}},
		{name: "registries.conf printed", args: []string{"--format", "registries.conf", "--server", "https://10.0.0.5:5000", "--mirror", "quay.io", "--ca", "/etc/hostname"},
			stdout: []string{"# --- /etc/containers/registries.conf.d/ferry-mirrors.conf", `location = "10.0.0.5:5000/quay.io"`, "# --- /etc/containers/certs.d/10.0.0.5:5000/ca.crt: a copy of the --ca file"}},
		{name: "k3s printed", args: []string{"--format", "k3s", "--server", "https://10.0.0.5:5000", "--mirror", "quay.io", "--ca", "/etc/hostname"},
			stdout: []string{"# --- /etc/rancher/k3s/registries.yaml", "ca_file: /etc/rancher/k3s/ferry-ca.crt"}},
		{name: "unknown format", args: []string{"--format", "crio", "--server", "https://10.0.0.5:5000", "--mirror", "quay.io"}, code: exitUsage},
		{name: "no mirror", args: []string{"--format", "k3s", "--server", "https://10.0.0.5:5000"}, code: exitUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.path != nil {
				t.Setenv("PATH", tc.path(t))
			}
			var out, errOut bytes.Buffer
			code := execute(context.Background(), append([]string{"mirror-config"}, tc.args...), &out, &errOut)
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, errOut.String())
			}
			for _, s := range tc.stdout {
				if !strings.Contains(out.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, out.String())
				}
			}
			for _, s := range tc.absent {
				if strings.Contains(out.String(), s) {
					t.Errorf("stdout has %q:\n%s", s, out.String())
				}
			}
		})
	}
}

// containerdPath returns a PATH whose containerd is version v's.
func containerdPath(v testenv.ContainerdVersion) func(t *testing.T) string {
	return func(t *testing.T) string {
		return filepath.Dir(testenv.ContainerdBinaries(t, v).Containerd) + string(os.PathListSeparator) + os.Getenv("PATH")
	}
}
