package installer_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/containerd/remotes/docker/config"
	"github.com/pelletier/go-toml"
	"gopkg.in/yaml.v3"

	"github.com/ferry-oci/ferry/installer"
	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/manifests"
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
		{Server: "https://10.0.0.5:5000", Mirrors: []string{"docker.io"}, Format: "crio.conf"},
	} {
		if _, err := installer.MirrorConfig(opts); !errors.Is(err, manifests.ErrInvalidArgument) {
			t.Errorf("%+v: %v, want ErrInvalidOptions", opts, err)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// k3sSchema is k3s's registries.yaml as its docs define it
// (docs.k3s.io/installation/private-registry: mirrors with endpoint and
// rewrite, configs with auth and tls), written here from the docs
// independently of the types ferry renders with.
type k3sSchema struct {
	Mirrors map[string]struct {
		Endpoint []string          `yaml:"endpoint"`
		Rewrite  map[string]string `yaml:"rewrite"`
	} `yaml:"mirrors"`
	Configs map[string]struct {
		Auth *struct {
			Username      string `yaml:"username"`
			Password      string `yaml:"password"`
			Auth          string `yaml:"auth"`
			IdentityToken string `yaml:"identitytoken"`
		} `yaml:"auth"`
		TLS *struct {
			CertFile           string `yaml:"cert_file"`
			KeyFile            string `yaml:"key_file"`
			CAFile             string `yaml:"ca_file"`
			InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
		} `yaml:"tls"`
	} `yaml:"configs"`
}

// TestMirrorConfigK3s parses the written registries.yaml against k3s's
// documented schema, refusing unknown fields. Nothing else loads it here
// (no k3s runs in the tests): k3s turns it into hosts.toml files, the form
// the containerd tests prove.
func TestMirrorConfigK3s(t *testing.T) {
	ca, err := os.ReadFile(testenv.NewTestCerts(t).CAFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, server, caHost string
		ca                   []byte
	}{
		{name: "TLS with ferry's CA", server: "https://10.0.0.5:5000", caHost: "10.0.0.5:5000", ca: ca},
		{name: "plain HTTP", server: "http://10.0.0.5:5000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mirrors := []string{"docker.io", "quay.io", "registry.k8s.io"}
			if _, err := installer.WriteMirrorConfig(installer.MirrorOptions{Format: installer.FormatK3s, Server: tc.server, Mirrors: mirrors, Dir: dir, CA: tc.ca}); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(filepath.Join(dir, "registries.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			dec := yaml.NewDecoder(f)
			dec.KnownFields(true)
			var got k3sSchema
			if err := dec.Decode(&got); err != nil {
				t.Fatalf("registries.yaml does not fit k3s's schema: %v", err)
			}
			for _, host := range mirrors {
				if ep := got.Mirrors[host].Endpoint; len(ep) != 1 || ep[0] != tc.server {
					t.Errorf("mirrors.%s.endpoint %v, want [%s]", host, ep, tc.server)
				}
			}
			if len(got.Mirrors) != len(mirrors) {
				t.Errorf("%d mirrors, want %d", len(got.Mirrors), len(mirrors))
			}
			if tc.ca == nil {
				if len(got.Configs) != 0 {
					t.Errorf("configs %+v for a plain HTTP mirror", got.Configs)
				}
				return
			}
			tls := got.Configs[tc.caHost].TLS
			if len(got.Configs) != 1 || tls == nil || !filepath.IsAbs(tls.CAFile) {
				t.Fatalf("configs %+v, want configs.%q.tls.ca_file, an absolute path", got.Configs, tc.caHost)
			}
			if b, err := os.ReadFile(tls.CAFile); err != nil || !bytes.Equal(b, tc.ca) {
				t.Errorf("ca_file %s: %v; not the CA given", tls.CAFile, err)
			}
		})
	}
}

// containersSchema is containers-registries.conf(5) version 2, the
// fields of [[registry]] and [[registry.mirror]], written from the man
// page independently of the types ferry renders with.
type containersSchema struct {
	UnqualifiedSearchRegistries []string `toml:"unqualified-search-registries"`
	Registry                    []struct {
		Prefix             string `toml:"prefix"`
		Location           string `toml:"location"`
		Insecure           bool   `toml:"insecure"`
		Blocked            bool   `toml:"blocked"`
		MirrorByDigestOnly bool   `toml:"mirror-by-digest-only"`
		PullFromMirror     string `toml:"pull-from-mirror"`
		Mirror             []struct {
			Location       string `toml:"location"`
			Insecure       bool   `toml:"insecure"`
			PullFromMirror string `toml:"pull-from-mirror"`
		} `toml:"mirror"`
	} `toml:"registry"`
}

// TestMirrorConfigRegistriesConf checks the drop-in against the
// registries.conf schema, strictly, and where the CA goes. (podman pulling
// through it is cmd/ferry's TestMirrorConfigPodman.)
func TestMirrorConfigRegistriesConf(t *testing.T) {
	for _, tc := range []struct {
		name, server string
		ca           []byte
		insecure     bool
	}{
		{name: "TLS", server: "https://10.0.0.5:5000", ca: []byte("CA")},
		{name: "plain HTTP", server: "http://10.0.0.5:5000", insecure: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files, err := installer.WriteMirrorConfig(installer.MirrorOptions{Format: installer.FormatRegistriesConf, Server: tc.server, Mirrors: []string{"docker.io", "quay.io"}, Dir: dir, CA: tc.ca})
			if err != nil {
				t.Fatal(err)
			}
			if want := 1 + btoi(tc.ca != nil); len(files) != want {
				t.Fatalf("wrote %d files, want %d", len(files), want)
			}
			f, err := os.Open(filepath.Join(dir, "registries.conf.d", "ferry-mirrors.conf"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var got containersSchema
			if err := toml.NewDecoder(f).Strict(true).Decode(&got); err != nil {
				t.Fatalf("the drop-in does not fit registries.conf's schema: %v", err)
			}
			if len(got.Registry) != 2 {
				t.Fatalf("%d [[registry]] tables, want 2", len(got.Registry))
			}
			for _, r := range got.Registry {
				if r.Location != r.Prefix || len(r.Mirror) != 1 || r.Mirror[0].Location != "10.0.0.5:5000/"+r.Prefix || r.Mirror[0].Insecure != tc.insecure {
					t.Errorf("registry %+v, want mirror 10.0.0.5:5000/%s, insecure %v", r, r.Prefix, tc.insecure)
				}
			}
			if tc.ca != nil {
				if b, err := os.ReadFile(filepath.Join(dir, "certs.d", "10.0.0.5:5000", "ca.crt")); err != nil || !bytes.Equal(b, tc.ca) {
					t.Errorf("certs.d/10.0.0.5:5000/ca.crt: %v", err)
				}
			}
		})
	}
}

// TestMirrorConfigKeepsOthersFiles checks that a configuration file ferry
// did not write is left alone, and that ferry's own is rewritten.
func TestMirrorConfigKeepsOthersFiles(t *testing.T) {
	for _, format := range []string{installer.FormatHostsTOML, installer.FormatRegistriesConf, installer.FormatK3s} {
		t.Run(format, func(t *testing.T) {
			opts := installer.MirrorOptions{Format: format, Server: "https://10.0.0.5:5000", Mirrors: []string{"docker.io"}, Dir: t.TempDir(), CA: []byte("CA")}
			files, err := installer.WriteMirrorConfig(opts)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := installer.WriteMirrorConfig(opts); err != nil {
				t.Fatalf("rewriting ferry's own files: %v", err)
			}
			var conf string
			for _, f := range files {
				if f.Config {
					conf = f.Path
				}
			}
			mine := []byte("# the node's own registry settings\n")
			if err := os.WriteFile(conf, mine, 0o644); err != nil {
				t.Fatal(err)
			}
			opts.CA = []byte("another CA")
			if _, err := installer.WriteMirrorConfig(opts); !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), conf) {
				t.Fatalf("error %v, want one naming %s that wraps fs.ErrExist", err, conf)
			}
			if b, _ := os.ReadFile(conf); !bytes.Equal(b, mine) {
				t.Errorf("%s was changed:\n%s", conf, b)
			}
			for _, f := range files {
				if b, _ := os.ReadFile(f.Path); !f.Config && !bytes.Equal(b, []byte("CA")) {
					t.Errorf("%s was rewritten although the config was refused", f.Path)
				}
			}
		})
	}
}
