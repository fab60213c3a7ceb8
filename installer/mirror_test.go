package installer_test

import (
	"context"
	"os"
	"testing"

	"github.com/containerd/containerd/remotes/docker/config"

	"github.com/ferry-oci/ferry/installer"
	"github.com/ferry-oci/ferry/internal/testenv"
)

// TestMirrorConfigContainerdReadsIt checks the files with containerd's own
// hosts.toml loader, the code the CRI plugin and `ctr --hosts-dir` run.
func TestMirrorConfigContainerdReadsIt(t *testing.T) {
	dir := t.TempDir()
	ca, err := os.ReadFile(testenv.NewTestCerts(t).CAFile)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, server, host   string
		ca                   []byte
		wantScheme, wantHost string
		wantFallback         string
	}{
		{name: "docker.io over TLS", server: "https://127.0.0.1:5443", host: "docker.io", ca: ca,
			wantScheme: "https", wantHost: "127.0.0.1:5443", wantFallback: "registry-1.docker.io"},
		{name: "quay.io over plain HTTP", server: "http://127.0.0.1:5000", host: "quay.io",
			wantScheme: "http", wantHost: "127.0.0.1:5000", wantFallback: "quay.io"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, err := installer.WriteMirrorConfig(installer.MirrorOptions{Server: tt.server, Mirrors: []string{tt.host}, Dir: dir, CA: tt.ca})
			if err != nil {
				t.Fatal(err)
			}
			if want := 1 + btoi(tt.ca != nil); len(files) != want {
				t.Fatalf("wrote %d files, want %d", len(files), want)
			}
			hosts := config.ConfigureHosts(context.Background(), config.HostOptions{HostDir: config.HostDirFromRoot(dir)})
			got, err := hosts(tt.host)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 {
				t.Fatalf("containerd sees %d hosts, want mirror + upstream", len(got))
			}
			if got[0].Scheme != tt.wantScheme || got[0].Host != tt.wantHost {
				t.Errorf("first host %s://%s, want %s://%s", got[0].Scheme, got[0].Host, tt.wantScheme, tt.wantHost)
			}
			if got[1].Host != tt.wantFallback {
				t.Errorf("fallback %s, want %s", got[1].Host, tt.wantFallback)
			}
		})
	}
}

func TestMirrorConfigRejects(t *testing.T) {
	for _, opts := range []installer.MirrorOptions{
		{Server: "10.0.0.5:5000", Mirrors: []string{"docker.io"}},
		{Server: "https://10.0.0.5:5000"},
		{Server: "https://10.0.0.5:5000", Mirrors: []string{"../etc"}},
	} {
		if _, err := installer.MirrorConfig(opts); err == nil {
			t.Errorf("%+v: accepted", opts)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
