package ctdconfig_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pelletier/go-toml"

	"github.com/ferry-oci/ferry/internal/ctdconfig"
)

// TestWrite parses the written configs with the TOML library containerd's
// loader uses and checks the paths they name, in each version's layout.
// (That containerd runs with them is proven by every test that starts
// internal/testenv's daemons, and by the demo.)
func TestWrite(t *testing.T) {
	cri1 := []string{"plugins", "io.containerd.grpc.v1.cri"}
	images2 := []string{"plugins", "io.containerd.cri.v1.images"}
	for _, tc := range []struct {
		major   int
		version int64
		keys    func(d ctdconfig.Daemon) map[string]any
	}{
		{major: 1, version: 2, keys: func(d ctdconfig.Daemon) map[string]any {
			return map[string]any{
				key(cri1, "registry", "config_path"): d.CertsDir,
				key(cri1, "stream_server_address"):   "127.0.0.1",
				key(cri1, "cni", "conf_dir"):         filepath.Join(d.Dir, "cni", "conf"),
			}
		}},
		{major: 2, version: 3, keys: func(d ctdconfig.Daemon) map[string]any {
			return map[string]any{
				key(images2, "registry", "config_path"):                                        d.CertsDir,
				key([]string{"plugins", "io.containerd.grpc.v1.cri"}, "stream_server_address"): "127.0.0.1",
				key([]string{"plugins", "io.containerd.shim.v1.manager"}, "socket_dir"):        filepath.Join(d.Dir, "s"),
				key([]string{"plugins", "io.containerd.cri.v1.runtime"}, "cni", "conf_dir"):    filepath.Join(d.Dir, "cni", "conf"),
			}
		}},
	} {
		t.Run(fmt.Sprintf("containerd %d.x", tc.major), func(t *testing.T) {
			d := ctdconfig.For(t.TempDir())
			d.Major = tc.major
			if err := d.Write(); err != nil {
				t.Fatal(err)
			}
			cfg, err := toml.LoadFile(d.ConfigPath)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.keys(d)
			want["version"] = tc.version
			want["root"] = d.Root
			want["state"] = d.State
			want["grpc\x00address"] = d.Address
			want["ttrpc\x00address"] = d.Address + ".ttrpc"
			for k, v := range want {
				if got := cfg.GetPath(strings.Split(k, "\x00")); got != v {
					t.Errorf("%s = %v, want %v", strings.ReplaceAll(k, "\x00", "."), got, v)
				}
			}
			for _, dir := range []string{d.CertsDir, filepath.Join(d.Dir, "cni", "bin"), filepath.Join(d.Dir, "tmp")} {
				if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
					t.Errorf("%s: not a directory (%v)", dir, err)
				}
			}
		})
	}
}

// key joins a TOML key path for the want maps of TestWrite.
func key(prefix []string, rest ...string) string {
	return strings.Join(append(append([]string{}, prefix...), rest...), "\x00")
}

func TestWriteUnknownMajor(t *testing.T) {
	d := ctdconfig.For(t.TempDir())
	d.Major = 3
	if err := d.Write(); err == nil {
		t.Fatal("no error for a containerd major version without a config")
	}
}

func TestWriteLongPath(t *testing.T) {
	d := ctdconfig.For(filepath.Join(t.TempDir(), strings.Repeat("x", 100)))
	if err := d.Write(); err == nil {
		t.Fatal("no error for a socket path longer than a unix socket allows")
	}
}

// TestWriteRegistryConfig checks that a registry config file replaces the
// daemon's own config_path: merged into a 1.x config, imported by a 2.x
// one; and that one of the other config version is refused.
func TestWriteRegistryConfig(t *testing.T) {
	for _, tc := range []struct {
		major int
		file  string
		path  []string // where the file's config_path must show in the config
	}{
		{1, "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/node/certs.d\"\n",
			[]string{"plugins", "io.containerd.grpc.v1.cri", "registry", "config_path"}},
		{2, "version = 3\n[plugins.\"io.containerd.cri.v1.images\".registry]\n  config_path = \"/node/certs.d\"\n", nil},
	} {
		t.Run(fmt.Sprintf("containerd %d.x", tc.major), func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "registry.toml")
			if err := os.WriteFile(file, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			d := ctdconfig.For(t.TempDir())
			d.Major, d.RegistryConfig = tc.major, file
			if err := d.Write(); err != nil {
				t.Fatal(err)
			}
			cfg, err := toml.LoadFile(d.ConfigPath)
			if err != nil {
				t.Fatal(err)
			}
			if tc.path != nil {
				if got := cfg.GetPath(tc.path); got != "/node/certs.d" {
					t.Errorf("config_path %v, want the file's /node/certs.d", got)
				}
				if got := cfg.GetPath([]string{"plugins", "io.containerd.grpc.v1.cri", "stream_server_address"}); got != "127.0.0.1" {
					t.Errorf("the merge lost the CRI's other settings: stream_server_address %v", got)
				}
			} else if imports := cfg.Get("imports"); fmt.Sprint(imports) != fmt.Sprint([]any{file}) {
				t.Errorf("imports %v, want [%s]", imports, file)
			}
			if b, _ := os.ReadFile(d.ConfigPath); strings.Contains(string(b), d.CertsDir+"\"") && tc.path != nil {
				t.Errorf("the daemon's own config_path is still set:\n%s", b)
			}

			d.Major = 3 - tc.major
			if err := d.Write(); err == nil {
				t.Errorf("a config version %d file accepted for containerd %d.x", tc.major+1, d.Major)
			}
		})
	}
}
