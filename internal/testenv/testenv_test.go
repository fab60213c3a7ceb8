package testenv_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
)

var platforms = []string{"linux/amd64", "linux/arm64/v8"}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func get(t *testing.T, reg *testenv.RegistryServer, path string, auth bool) (int, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, reg.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth {
		req.SetBasicAuth(reg.User, reg.Password)
	}
	resp, err := (&http.Client{Transport: reg.Transport(), Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// inspectRaw reads ref's manifest with skopeo and checks its digest.
func inspectRaw(t *testing.T, reg *testenv.RegistryServer, ref, want string) []byte {
	t.Helper()
	args := append([]string{"inspect", "--raw"}, reg.SkopeoFlags("")...)
	raw := testenv.Skopeo(t, append(args, "docker://"+reg.Ref(ref))...)
	if got := sha256Digest([]byte(raw)); got != want {
		t.Fatalf("skopeo inspect --raw %s: digest %s, want %s", ref, got, want)
	}
	return []byte(raw)
}

func TestRequireBinary(t *testing.T) {
	if p := testenv.RequireBinary(t, "skopeo"); !filepath.IsAbs(p) {
		t.Fatalf("RequireBinary(skopeo) = %q, want an absolute path", p)
	}
}

func TestRegistryPlainStopStart(t *testing.T) {
	reg := testenv.Registry(t)
	if !strings.HasPrefix(reg.Host, "127.0.0.1:") || reg.URL != "http://"+reg.Host {
		t.Fatalf("Host %q URL %q", reg.Host, reg.URL)
	}
	if code, err := get(t, reg, "/v2/", false); err != nil || code != http.StatusOK {
		t.Fatalf("GET /v2/: %d %v", code, err)
	}

	idx := testimages.Index(t, platforms, testimages.WithRandomLayers(1, 1024))
	d := testimages.Push(t, reg, "ferry/multi:v1", idx)
	raw := inspectRaw(t, reg, "ferry/multi:v1", d.String())
	var index struct {
		MediaType string `json:"mediaType"`
		Manifests []struct {
			Digest   string `json:"digest"`
			Platform struct {
				Architecture string `json:"architecture"`
			} `json:"platform"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &index); err != nil {
		t.Fatal(err)
	}
	if index.MediaType != "application/vnd.oci.image.index.v1+json" || len(index.Manifests) != len(platforms) {
		t.Fatalf("index: %s", raw)
	}
	for _, m := range index.Manifests {
		inspectRaw(t, reg, "ferry/multi@"+m.Digest, m.Digest)
	}

	oldHost := reg.Host
	reg.Stop()
	reg.Stop() // idempotent
	if reg.Running() {
		t.Fatal("Running after Stop")
	}
	if _, err := get(t, reg, "/v2/", false); err == nil {
		t.Fatalf("GET %s/v2/ answered after Stop", reg.URL)
	}

	reg.Start()
	t.Logf("restarted: %s -> %s", oldHost, reg.Host)
	if !reg.Running() {
		t.Fatal("not Running after Start")
	}
	inspectRaw(t, reg, "ferry/multi:v1", d.String())
	for _, m := range index.Manifests {
		inspectRaw(t, reg, "ferry/multi@"+m.Digest, m.Digest)
	}
	if _, err := os.Stat(filepath.Join(reg.Dir, "docker", "registry", "v2", "repositories", "ferry", "multi")); err != nil {
		t.Fatalf("storage dir: %v", err)
	}
}

func TestRegistryTLSHtpasswd(t *testing.T) {
	reg := testenv.Registry(t, testenv.WithTLS(), testenv.WithHtpasswd("ferry", "s3cret"))
	if reg.URL != "https://"+reg.Host || reg.CAPool == nil || reg.User != "ferry" || reg.Password != "s3cret" {
		t.Fatalf("server: %+v", reg)
	}
	for _, f := range []string{reg.CAFile, filepath.Join(reg.CertDir, "ca.crt")} {
		if _, err := os.Stat(f); err != nil {
			t.Fatal(err)
		}
	}
	if code, err := get(t, reg, "/v2/", false); err != nil || code != http.StatusUnauthorized {
		t.Fatalf("GET /v2/ without credentials: %d %v, want 401", code, err)
	}
	if code, err := get(t, reg, "/v2/", true); err != nil || code != http.StatusOK {
		t.Fatalf("GET /v2/ with credentials: %d %v, want 200", code, err)
	}
	// A client that does not trust the test CA is refused.
	if _, err := http.Get(reg.URL + "/v2/"); err == nil {
		t.Fatal("GET without the test CA succeeded")
	}

	idx := testimages.Index(t, platforms, testimages.Docker())
	d := testimages.Push(t, reg, "ferry/docker-list:v1", idx)
	raw := inspectRaw(t, reg, "ferry/docker-list:v1", d.String())
	if !strings.Contains(string(raw), "application/vnd.docker.distribution.manifest.list.v2+json") {
		t.Fatalf("not a docker manifest list: %s", raw)
	}

	// Negative: wrong password, and no CA.
	if _, err := testenv.SkopeoErr(t, "inspect", "--raw", "--cert-dir", reg.CertDir, "--creds", "ferry:wrong", "docker://"+reg.Ref("ferry/docker-list:v1")); err == nil {
		t.Fatal("skopeo with a wrong password succeeded")
	}
	if _, err := testenv.SkopeoErr(t, "inspect", "--raw", "--creds", "ferry:s3cret", "docker://"+reg.Ref("ferry/docker-list:v1")); err == nil {
		t.Fatal("skopeo without the test CA succeeded")
	}

	// Restart keeps TLS, auth and content.
	reg.Stop()
	reg.Start()
	inspectRaw(t, reg, "ferry/docker-list:v1", d.String())
}

// TestContainerd starts each containerd release line and checks that the
// server is that version, with the CRI and overlayfs loaded.
func TestContainerd(t *testing.T) {
	for _, v := range testenv.ContainerdVersions {
		t.Run(v.String(), func(t *testing.T) {
			c := testenv.StartContainerd(t, testenv.ContainerdOptions{Version: v})
			if len(c.Address) >= 108 {
				t.Fatalf("socket path too long: %s", c.Address)
			}
			for _, p := range []string{c.Address, c.ConfigPath, c.CertsDir, c.Root, c.State} {
				if _, err := os.Stat(p); err != nil {
					t.Fatal(err)
				}
			}
			out := c.Ctr(t, "version")
			server := out[strings.Index(out, "Server:"):]
			if !strings.Contains(server, fmt.Sprintf("Version:  %d.", int(v))) {
				t.Fatalf("ctr version: want a %s server:\n%s", v, out)
			}
			want := []string{"io.containerd.grpc.v1 cri", "io.containerd.snapshotter.v1 overlayfs"}
			if v == testenv.Containerd2 {
				want = append(want, "io.containerd.cri.v1 images", "io.containerd.cri.v1 runtime")
			}
			checkPlugins(t, c.Ctr(t, "plugins", "ls"), want)
			if _, err := c.CtrErr(t, "-n", "k8s.io", "images", "check", "--no-such-flag"); err == nil {
				t.Error("CtrErr: bad flag did not fail")
			}
		})
	}
}

// checkPlugins checks that `ctr plugins ls` lists every "TYPE ID" of want
// as ok.
func checkPlugins(t *testing.T, plugins string, want []string) {
	t.Helper()
	for _, w := range want {
		typ, id := strings.Fields(w)[0], strings.Fields(w)[1]
		ok := false
		for _, line := range strings.Split(plugins, "\n") {
			f := strings.Fields(line)
			if len(f) >= 4 && f[0] == typ && f[1] == id && f[len(f)-1] == "ok" {
				ok = true
			}
		}
		if !ok {
			t.Errorf("plugin %s not ok:\n%s", w, plugins)
		}
	}
}

// TestContainerdImport pushes a test index, copies it to an OCI archive with
// skopeo and imports it into containerd, which unpacks the busybox layer with
// overlayfs: the test images are real enough for containerd.
func TestContainerdImport(t *testing.T) {
	reg := testenv.Registry(t)
	c := testenv.Containerd(t)
	idx := testimages.Index(t, platforms, testimages.WithRandomLayers(1, 4096))
	d := testimages.Push(t, reg, "ferry/import:v1", idx)

	archive := filepath.Join(t.TempDir(), "img.tar")
	args := append([]string{"copy", "--all"}, reg.SkopeoFlags("src-")...)
	testenv.Skopeo(t, append(args, "docker://"+reg.Ref("ferry/import:v1"), "oci-archive:"+archive+":ferry.test/import:v1")...)

	// skopeo keeps the index as it is: same digest.
	if raw := testenv.Skopeo(t, "inspect", "--raw", "oci-archive:"+archive); sha256Digest([]byte(raw)) != d.String() {
		t.Fatalf("oci-archive index digest %s, want %s", sha256Digest([]byte(raw)), d)
	}
	// import unpacks the host platform's image with the default snapshotter.
	c.Ctr(t, "-n", "k8s.io", "images", "import", "--all-platforms", "--base-name", "ferry.test/import", archive)
	list := c.Ctr(t, "-n", "k8s.io", "images", "ls")
	if !strings.Contains(list, "ferry.test/import:v1") || !strings.Contains(list, d.String()) {
		t.Fatalf("ctr images ls: want ferry.test/import:v1 %s:\n%s", d, list)
	}
	if snaps := c.Ctr(t, "-n", "k8s.io", "snapshots", "--snapshotter", "overlayfs", "ls"); !strings.Contains(snaps, "Committed") {
		t.Fatalf("no committed overlayfs snapshot after unpack:\n%s", snaps)
	}
}
