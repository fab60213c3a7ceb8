package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-oci/ferry/internal/testenv"
)

// TestInstallCommand drives `ferry install` through the cobra tree: a
// self-signed TLS registry whose CA reaches the mirror config, an import
// into a real containerd, and a push into a real docker-registry.
func TestInstallCommand(t *testing.T) {
	path, digests := pushTestBundle(t)
	ctd := testenv.Containerd(t)
	target := testenv.Registry(t)
	dir := t.TempDir()
	caOut := filepath.Join(dir, "ca.crt")

	code, out, errOut := runFerry(t, "", "install", path, "-o", "json",
		"--serve", "127.0.0.1:0", "--tls-self-signed", "--ca-out", caOut,
		"--mirror", "docker.io", "--containerd-config-dir", ctd.CertsDir,
		"--import", "--address", ctd.Address, "--no-unpack",
		"--push-to", target.Host+"/seed", "--push-plain-http",
		"--verify", "full", "--no-serve")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	var res struct {
		URL   string
		Steps []struct{ Name, Error string }
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	if !strings.HasPrefix(res.URL, "https://127.0.0.1:") || len(res.Steps) != 5 {
		t.Errorf("url %q, steps %+v", res.URL, res.Steps)
	}
	hosts, err := os.ReadFile(filepath.Join(ctd.CertsDir, "docker.io", "hosts.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(hosts), res.URL) || !strings.Contains(string(hosts), "ferry-ca.crt") {
		t.Errorf("hosts.toml does not send docker.io to %s with the CA:\n%s", res.URL, hosts)
	}
	if listed := ctd.Ctr(t, "-n", "k8s.io", "images", "ls"); !strings.Contains(listed, digests["multi"].String()) {
		t.Errorf("import missing:\n%s", listed)
	}
	raw := testenv.Skopeo(t, append([]string{"inspect", "--raw"}, append(target.SkopeoFlags(""), "docker://"+target.Ref("seed/library/list:1"))...)...)
	if !strings.Contains(raw, "manifest.list") {
		t.Errorf("pushed docker list is not a list: %.200s", raw)
	}
}

func TestInstallCommandUsage(t *testing.T) {
	path, _ := pushTestBundle(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"nothing to do", []string{"install", path}},
		{"mirror without serve", []string{"install", path, "--import", "--mirror", "docker.io"}},
		{"serve without transport", []string{"install", path, "--serve", "127.0.0.1:0"}},
		{"bad verify mode", []string{"install", path, "--import", "--verify", "half"}},
		{"writable serve", []string{"install", path, "--serve", "127.0.0.1:0", "--plain-http", "--writable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _, errOut := runFerry(t, "", tc.args...); code != exitUsage {
				t.Errorf("exit %d, want %d: %s", code, exitUsage, errOut)
			}
		})
	}
}
