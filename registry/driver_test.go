package registry

import (
	"archive/tar"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/distribution/distribution/v3"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/distribution/distribution/v3/registry/storage/driver/testsuites"
	"github.com/opencontainers/go-digest"

	"github.com/ferry-oci/ferry/bundle"
)

// writeEmptyBundle writes a bundle that holds no image.
func writeEmptyBundle(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "empty.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	for _, e := range []struct{ name, body string }{
		{"oci-layout", `{"imageLayoutVersion":"1.0.0"}`},
		{"index.json", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// newTestDriver layers a filesystem driver in a temp dir (none when
// readOnly) over the bundle at path.
func newTestDriver(t testing.TB, path string, readOnly bool) *layeredDriver {
	t.Helper()
	r, err := bundle.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	tree, err := newBundleTree(context.Background(), r, "", &testLog{t: t})
	if err != nil {
		t.Fatal(err)
	}
	var upper storagedriver.StorageDriver
	if !readOnly {
		upper = filesystem.New(filesystem.DriverParameters{RootDirectory: t.TempDir(), MaxThreads: 100})
	}
	return newLayeredDriver(tree, upper)
}

// TestDriverSuite runs distribution's storage driver suite on the layered
// driver over an empty bundle (the suite needs an empty root after each
// test). TestWriteReadLargeStreams, which writes and reads 5 GB through the
// filesystem driver, is left out to keep the run short on two cores.
func TestDriverSuite(t *testing.T) {
	t.Parallel() // the suite mostly sleeps (TestStatCall waits 15s)
	var names []string
	typ := reflect.TypeOf(&testsuites.DriverSuite{})
	for i := 0; i < typ.NumMethod(); i++ {
		if name := typ.Method(i).Name; strings.HasPrefix(name, "Test") && name != "TestWriteReadLargeStreams" {
			names = append(names, name)
		}
	}
	prev := flag.Lookup("testify.m").Value.String()
	if err := flag.Set("testify.m", "^("+strings.Join(names, "|")+")$"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = flag.Set("testify.m", prev) })
	empty := writeEmptyBundle(t)
	testsuites.Driver(t, func() (storagedriver.StorageDriver, error) {
		return newTestDriver(t, empty, false), nil
	}, false)
}

// TestLayeredDriver checks the bundle layer and how the writable layer
// goes over it.
func TestLayeredDriver(t *testing.T) {
	f := testBundle(t)
	ctx := context.Background()
	multi := f.digestOf(t, refMulti)
	tagLink := repositoryPath("library/multi", "_manifests/tags/1/current/link")
	var layer []byte
	for _, b := range f.blobs(t) {
		if len(b) > len(layer) {
			layer = b
		}
	}
	layerDigest := digest.FromBytes(layer)

	t.Run("bundle", func(t *testing.T) {
		d := newTestDriver(t, f.path, true)
		for _, tc := range []struct {
			path string
			want string
		}{
			{tagLink, string(multi)},
			{repositoryPath("docker.io/library/multi", "_manifests/tags/latest/current/link"), string(multi)},
			{repositoryPath("quay.io/library/multi", "_manifests/tags/1/current/link"), string(f.digestOf(t, refQuay))},
			{repositoryPath("library/multi", "_manifests/revisions", "sha256", multi.Encoded(), "link"), string(multi)},
			{repositoryPath("library/multi", "_layers", "sha256", layerDigest.Encoded(), "link"), string(layerDigest)},
			{blobDataPath(layerDigest), string(layer)},
		} {
			got, err := d.GetContent(ctx, tc.path)
			if err != nil || string(got) != tc.want {
				t.Errorf("GetContent(%s) = %.80q, %v; want %.80q", tc.path, got, err, tc.want)
			}
		}
		fi, err := d.Stat(ctx, blobDataPath(layerDigest))
		if err != nil || fi.IsDir() || fi.Size() != int64(len(layer)) {
			t.Errorf("Stat(layer) = %+v, %v", fi, err)
		}
		rc, err := d.Reader(ctx, blobDataPath(layerDigest), 100)
		if err != nil {
			t.Fatal(err)
		}
		tail, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(tail) != string(layer[100:]) {
			t.Errorf("Reader(layer, 100): %d bytes, %v; want %d", len(tail), err, len(layer)-100)
		}
		repos, err := d.List(ctx, storageRoot+"/repositories")
		want := []string{"docker.io", "ferry", "ghcr.io", "library", "quay.io"}
		for i := range want {
			want[i] = storageRoot + "/repositories/" + want[i]
		}
		if err != nil || !reflect.DeepEqual(repos, want) {
			t.Errorf("List(repositories) = %v, %v; want %v", repos, err, want)
		}
		if _, err := d.List(ctx, "/nope"); !notFound(err) {
			t.Errorf("List(/nope) = %v, want PathNotFoundError", err)
		}
		if err := d.PutContent(ctx, "/new", []byte("x")); !errors.As(err, new(storagedriver.ErrUnsupportedMethod)) {
			t.Errorf("PutContent on a read-only driver = %v, want ErrUnsupportedMethod", err)
		}
	})

	t.Run("overlay", func(t *testing.T) {
		d := newTestDriver(t, f.path, false)
		pushed := repositoryPath("library/multi", "_manifests/tags/2/current/link")
		if err := d.PutContent(ctx, pushed, []byte("sha256:pushed")); err != nil {
			t.Fatal(err)
		}
		tags, err := d.List(ctx, repositoryPath("library/multi", "_manifests/tags"))
		if want := []string{repositoryPath("library/multi", "_manifests/tags/1"), repositoryPath("library/multi", "_manifests/tags/2"), repositoryPath("library/multi", "_manifests/tags/latest")}; err != nil || !reflect.DeepEqual(tags, want) {
			t.Errorf("List(tags) = %v, %v; want %v", tags, err, want)
		}
		if err := d.PutContent(ctx, tagLink, []byte("sha256:over")); err != nil {
			t.Fatal(err)
		}
		if got, err := d.GetContent(ctx, tagLink); err != nil || string(got) != "sha256:over" {
			t.Errorf("the writable layer does not shadow the bundle: %q, %v", got, err)
		}
		for _, tc := range []struct {
			path string
			want error
		}{
			{repositoryPath("library/multi", "_manifests/tags/1"), distribution.ErrUnsupported},
			{blobDataPath(layerDigest), distribution.ErrUnsupported},
			{repositoryPath("library/multi", "_manifests/tags/2"), nil},
		} {
			if err := d.Delete(ctx, tc.path); err != tc.want {
				t.Errorf("Delete(%s) = %v, want %v", tc.path, err, tc.want)
			}
		}
		if err := d.Delete(ctx, "bad//path"); !errors.As(err, new(storagedriver.InvalidPathError)) {
			t.Errorf("Delete(bad//path) = %v, want InvalidPathError", err)
		}
	})
}
