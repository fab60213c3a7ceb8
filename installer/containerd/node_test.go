package containerd_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-oci/ferry/installer/containerd"
	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
	"github.com/ferry-oci/ferry/manifests"
)

// listen makes a unix socket at path that accepts connections until the
// test ends; with stale set it leaves the socket file behind with nobody
// listening, as a containerd that died does.
func listen(t *testing.T, path string, stale bool) {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	if stale {
		l.SetUnlinkOnClose(false)
		l.Close()
		return
	}
	t.Cleanup(func() { l.Close() })
}

// TestFindSocket runs the detection on sockets made under a temp dir,
// laid out like a node's (never the machine's /run).
func TestFindSocket(t *testing.T) {
	for _, tc := range []struct {
		name    string
		running []string // candidate kinds that listen
		stale   []string // candidate kinds whose socket file is left over
		want    string   // kind chosen
		wantErr error
	}{
		{name: "standard containerd", running: []string{"containerd"}, want: "containerd"},
		{name: "k3s or RKE2", running: []string{"k3s/RKE2"}, want: "k3s/RKE2"},
		{name: "k3s beside a dead standard one", running: []string{"k3s/RKE2"}, stale: []string{"containerd"}, want: "k3s/RKE2"},
		{name: "none running", stale: []string{"k3s/RKE2"}, wantErr: manifests.ErrUnreachable},
		{name: "both running", running: []string{"containerd", "k3s/RKE2"}, wantErr: manifests.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			var candidates []containerd.Socket
			for i, s := range containerd.Sockets {
				s.Path = filepath.Join(root, strconv.Itoa(i), filepath.Base(s.Path))
				if err := os.Mkdir(filepath.Dir(s.Path), 0o755); err != nil {
					t.Fatal(err)
				}
				candidates = append(candidates, s)
			}
			for _, s := range candidates {
				for _, k := range tc.running {
					if k == s.Kind {
						listen(t, s.Path, false)
					}
				}
				for _, k := range tc.stale {
					if k == s.Kind {
						listen(t, s.Path, true)
					}
				}
			}
			got, err := containerd.FindSocket(context.Background(), candidates)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("chose %v, error %v; want %v", got, err, tc.wantErr)
				}
				for _, s := range candidates {
					if !strings.Contains(err.Error(), s.Path) {
						t.Errorf("error does not name %s: %v", s.Path, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Kind != tc.want {
				t.Errorf("chose %v, want the %s one", got, tc.want)
			}
		})
	}
}

// TestImportFindsSocket imports with no Address: the import finds the one
// candidate socket a real containerd answers on, and says so; with none
// answering it fails naming the candidates.
func TestImportFindsSocket(t *testing.T) {
	ctd := testenv.Containerd(t)
	r := testbundle.Open(t, testbundle.Write(t, filepath.Join(t.TempDir(), "b.tar"), map[string]testbundle.Image{
		"docker.io/library/found:1": testimages.Image(t, "linux/amd64"),
	}))
	absent := containerd.Socket{Path: filepath.Join(t.TempDir(), "containerd.sock"), Kind: "containerd"}
	opts := containerd.ImportOptions{NoUnpack: true, Sockets: []containerd.Socket{absent, {Path: ctd.Address, Kind: "k3s/RKE2"}}}
	res, err := containerd.Import(context.Background(), r, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Address != ctd.Address || res.Detected != "k3s/RKE2" || !strings.Contains(res.Where(), "k3s/RKE2, found running") {
		t.Errorf("imported into %s (%q), want the k3s/RKE2 candidate %s", res.Where(), res.Detected, ctd.Address)
	}
	if listed := ctd.Ctr(t, "-n", "k8s.io", "images", "ls", "-q"); !strings.Contains(listed, "docker.io/library/found:1") {
		t.Errorf("image not in the containerd found:\n%s", listed)
	}

	opts.Sockets = []containerd.Socket{absent}
	if _, err := containerd.Import(context.Background(), r, opts); !errors.Is(err, manifests.ErrUnreachable) || !strings.Contains(err.Error(), absent.Path) {
		t.Errorf("error %v, want one naming %s that wraps ErrUnreachable", err, absent.Path)
	}
}

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		out     string
		version string
		major   int
	}{
		{"containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3\n", "1.6.20~ds1", 1},
		{"containerd github.com/containerd/containerd/v2 2.4.2+unknown \n", "2.4.2+unknown", 2},
		{"containerd github.com/k3s-io/containerd v2.0.5-k3s1 f2bd8b7b2bb6a8b6e6e0c3d2f4b1b3c7e5a9d0e1\n", "2.0.5-k3s1", 2},
		{"containerd containerd.io v1.7.27 05044ec0a9a75232cad458027ca83437aae3f4da\n", "1.7.27", 1},
	} {
		v, major, err := containerd.ParseVersion(tc.out)
		if err != nil || v != tc.version || major != tc.major {
			t.Errorf("ParseVersion(%q) = %q, %d, %v; want %q, %d", tc.out, v, major, err, tc.version, tc.major)
		}
	}
	for _, out := range []string{"", "runc version 1.1.5", "containerd github.com/containerd/containerd dev"} {
		if _, _, err := containerd.ParseVersion(out); !errors.Is(err, containerd.ErrVersion) {
			t.Errorf("ParseVersion(%q): %v, want ErrVersion", out, err)
		}
	}
}

// TestBinaryVersion reads the version of both containerd release lines the
// tests run.
func TestBinaryVersion(t *testing.T) {
	for _, v := range testenv.ContainerdVersions {
		t.Run(v.String(), func(t *testing.T) {
			bin := testenv.ContainerdBinaries(t, v).Containerd
			version, major, err := containerd.BinaryVersion(context.Background(), bin)
			if err != nil {
				t.Fatal(err)
			}
			if major != int(v) {
				t.Errorf("%s: version %s, major %d; want %d", bin, version, major, int(v))
			}
		})
	}
}
