package registry

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/testimages"
)

// The fixture's images. multi exists in two registries with the same path
// and tag (the ns case); docker.io sorts first, so it owns the short name.
const (
	refMulti     = "docker.io/library/multi:1"
	refMultiAlso = "docker.io/library/multi:latest"
	refQuay      = "quay.io/library/multi:1"
	refSchema2   = "docker.io/library/schema2:1"
	refTools     = "ghcr.io/ferry/tools:v1"
)

// fixture is one small bundle of real images shared by the package's tests.
type fixture struct {
	path   string
	images map[string]testbundle.Image
}

var (
	fixtureOnce sync.Once
	theFixture  fixture
	fixtureDir  string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ferry-registry-test-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fixtureDir = dir
	// distribution logs through logrus's standard logger; the server's own
	// log (testLog) is what the tests read.
	logrus.SetLevel(logrus.ErrorLevel)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testBundle returns the fixture bundle, built on first use: a multi-arch
// OCI index under two tags, a single image from another registry at the
// same path, a Docker schema2 manifest list and a single OCI image.
func testBundle(t testing.TB) *fixture {
	t.Helper()
	fixtureOnce.Do(func() {
		multi := testimages.Index(t, []string{"linux/amd64", "linux/arm64"}, testimages.WithRandomLayers(1, 64<<10))
		images := map[string]testbundle.Image{
			refMulti:     multi,
			refMultiAlso: multi,
			refQuay:      testimages.Image(t, "linux/amd64", testimages.WithRandomLayers(1, 16<<10)),
			refSchema2:   testimages.Index(t, []string{"linux/amd64", "linux/arm/v7"}, testimages.Docker()),
			refTools:     testimages.Image(t, "linux/amd64", testimages.WithRandomLayers(2, 32<<10)),
		}
		theFixture = fixture{path: testbundle.Write(t, filepath.Join(fixtureDir, "fixture.tar"), images), images: images}
	})
	if theFixture.path == "" {
		t.Fatal("the fixture bundle could not be built (see the first test that failed)")
	}
	return &theFixture
}

// digestOf is the digest of an image or index of the fixture.
func (f *fixture) digestOf(t testing.TB, ref string) digest.Digest {
	t.Helper()
	raw, err := f.images[ref].RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	return digest.FromBytes(raw)
}

// blobsOf lists every blob of one fixture image (index, manifests,
// configs and layers) with its bytes.
func (f *fixture) blobsOf(t testing.TB, ref string) map[digest.Digest][]byte {
	t.Helper()
	out := map[digest.Digest][]byte{}
	add := func(b []byte, err error) {
		if err != nil {
			t.Fatal(err)
		}
		out[digest.FromBytes(b)] = b
	}
	addImage := func(img v1.Image) {
		add(img.RawManifest())
		add(img.RawConfigFile())
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			rc, err := l.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			add(io.ReadAll(rc))
			rc.Close()
		}
	}
	switch x := f.images[ref].(type) {
	case v1.Image:
		addImage(x)
	case v1.ImageIndex:
		add(x.RawManifest())
		im, err := x.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range im.Manifests {
			img, err := x.Image(m.Digest)
			if err != nil {
				t.Fatal(err)
			}
			addImage(img)
		}
	}
	return out
}

// blobs lists every blob of the fixture with its bytes.
func (f *fixture) blobs(t testing.TB) map[digest.Digest][]byte {
	t.Helper()
	out := map[digest.Digest][]byte{}
	for ref := range f.images {
		for d, b := range f.blobsOf(t, ref) {
			out[d] = b
		}
	}
	return out
}

// testLog is a Logger that keeps its lines for tests to check.
type testLog struct {
	t     testing.TB
	mu    sync.Mutex
	lines []string
}

func (l *testLog) add(level, format string, args ...any) {
	line := level + " " + fmt.Sprintf(format, args...)
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
}

func (l *testLog) Infof(format string, args ...any)  { l.add("info", format, args...) }
func (l *testLog) Warnf(format string, args ...any)  { l.add("warn", format, args...) }
func (l *testLog) Errorf(format string, args ...any) { l.add("error", format, args...) }

// grep returns the lines that contain every one of words.
func (l *testLog) grep(words ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
next:
	for _, line := range l.lines {
		for _, w := range words {
			if !strings.Contains(line, w) {
				continue next
			}
		}
		out = append(out, line)
	}
	return out
}

// wait polls for up to 5s for a line that contains every one of words.
func (l *testLog) wait(words ...string) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if len(l.grep(words...)) > 0 {
			return true
		}
	}
	return false
}

// running is a Server serving on 127.0.0.1 for one test.
type running struct {
	*Server
	url  string
	host string // 127.0.0.1:PORT
	log  *testLog
	// stop ends Serve (gracefully) and returns what it returned.
	stop func() error
}

// serveBundle serves the bundle at path on 127.0.0.1 (a port the kernel
// picks) until the test ends; the shutdown must be graceful.
func serveBundle(t testing.TB, path string, opts Options) *running {
	t.Helper()
	r, err := bundle.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	log := &testLog{t: t}
	opts.Log = log
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := New(ctx, r, opts)
	if err != nil {
		cancel()
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	stop := sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", strings.Join(log.grep(), "\n"))
		}
	})
	return &running{Server: srv, url: srv.URL(ln.Addr()), host: ln.Addr().String(), log: log, stop: stop}
}

// writeHtpasswd writes a bcrypt htpasswd file with one user.
func writeHtpasswd(t testing.TB, user, pass string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(p, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// httpClient is a client over tr (default: a clone of the default
// transport) that never uses a proxy.
func httpClient(tr *http.Transport) *http.Client {
	if tr == nil {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	tr.Proxy = nil
	return &http.Client{Transport: tr, Timeout: time.Minute}
}
