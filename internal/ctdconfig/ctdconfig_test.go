package ctdconfig_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pelletier/go-toml"

	"github.com/ferry-oci/ferry/internal/ctdconfig"
)

// TestWrite parses the written config with the TOML library containerd's
// loader uses and checks the paths it names. (That containerd runs with it
// is proven by every test that starts internal/testenv's daemon, and by the demo.)
func TestWrite(t *testing.T) {
	d := ctdconfig.For(t.TempDir())
	if err := d.Write(); err != nil {
		t.Fatal(err)
	}
	cfg, err := toml.LoadFile(d.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	cri := []string{"plugins", "io.containerd.grpc.v1.cri"}
	for _, tc := range []struct {
		key  []string
		want any
	}{
		{[]string{"version"}, int64(2)},
		{[]string{"root"}, d.Root},
		{[]string{"state"}, d.State},
		{[]string{"grpc", "address"}, d.Address},
		{[]string{"ttrpc", "address"}, d.Address + ".ttrpc"},
		{append(cri, "registry", "config_path"), d.CertsDir},
		{append(cri, "stream_server_address"), "127.0.0.1"},
	} {
		t.Run(strings.Join(tc.key, "."), func(t *testing.T) {
			if got := cfg.GetPath(tc.key); got != tc.want {
				t.Errorf("%v, want %v", got, tc.want)
			}
		})
	}
	for _, dir := range []string{d.CertsDir, filepath.Join(d.Dir, "cni", "bin"), filepath.Join(d.Dir, "tmp")} {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Errorf("%s: not a directory (%v)", dir, err)
		}
	}
}

func TestWriteLongPath(t *testing.T) {
	d := ctdconfig.For(filepath.Join(t.TempDir(), strings.Repeat("x", 100)))
	if err := d.Write(); err == nil {
		t.Fatal("no error for a socket path longer than a unix socket allows")
	}
}
