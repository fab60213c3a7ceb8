package build_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/bundle/build"
	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// tarOf is a tar stream of the named files, in order.
func tarOf(t *testing.T, files ...[2][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: string(f[0]), Mode: 0o644, Size: int64(len(f[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dockerArchive writes a `docker save`-shaped archive of one image with
// one uncompressed layer, whose config lists diffID for it.
func dockerArchive(t *testing.T, layer []byte, diffID digest.Digest) (path string, config []byte) {
	t.Helper()
	config = mustJSON(t, ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}}})
	manifest := mustJSON(t, []map[string]any{{"Config": "config.json", "RepoTags": []string{"bbox:1.0"}, "Layers": []string{"layer.tar"}}})
	path = filepath.Join(t.TempDir(), "saved.tar")
	data := tarOf(t, [2][]byte{[]byte("layer.tar"), layer}, [2][]byte{[]byte("config.json"), config}, [2][]byte{[]byte("manifest.json"), manifest})
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, config
}

// TestDockerArchiveSource converts a generated docker archive on its own:
// names normalized, config kept byte for byte, the layer gzipped with its
// uncompressed bytes equal to the diff_id; a diff_id that does not match
// or a missing manifest.json is refused.
func TestDockerArchiveSource(t *testing.T) {
	layer := tarOf(t, [2][]byte{[]byte("etc/hello"), []byte("hello from a saved image\n")})
	t.Run("converted", func(t *testing.T) {
		path, config := dockerArchive(t, layer, digest.FromBytes(layer))
		da, err := build.OpenDockerArchive(t.Context(), path, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer da.Close()
		if len(da.Images) != 1 || len(da.Images[0].RepoTags) != 1 || da.Images[0].RepoTags[0] != "docker.io/library/bbox:1.0" {
			t.Fatalf("images %+v, want one named docker.io/library/bbox:1.0", da.Images)
		}
		img := da.Images[0]
		if img.Descriptor.Platform == nil || manifests.FormatPlatform(*img.Descriptor.Platform) != "linux/amd64" {
			t.Errorf("platform %v, want linux/amd64", img.Descriptor.Platform)
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(fetch(t, da, img.Descriptor), &m); err != nil {
			t.Fatal(err)
		}
		if got := fetch(t, da, m.Config); !bytes.Equal(got, config) {
			t.Errorf("config %s, want the archive's %s", got, config)
		}
		if len(m.Layers) != 1 || m.Layers[0].MediaType != ocispec.MediaTypeImageLayerGzip {
			t.Fatalf("layers %+v, want one gzip layer", m.Layers)
		}
		zr, err := gzip.NewReader(bytes.NewReader(fetch(t, da, m.Layers[0])))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(zr); err != nil || !bytes.Equal(got, layer) {
			t.Errorf("layer uncompresses to %d bytes (%v), want the archive's %d", len(got), err, len(layer))
		}
	})
	t.Run("diff_id mismatch", func(t *testing.T) {
		path, _ := dockerArchive(t, layer, digest.FromString("other"))
		_, err := build.OpenDockerArchive(t.Context(), path, 1)
		if !errors.Is(err, build.ErrInvalidSource) || !strings.Contains(err.Error(), "config says") {
			t.Errorf("err %v, want ErrInvalidSource naming the config's diff_id", err)
		}
	})
	t.Run("no manifest.json", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "plain.tar")
		if err := os.WriteFile(path, layer, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := build.OpenDockerArchive(t.Context(), path, 1)
		if !errors.Is(err, build.ErrInvalidSource) || !strings.Contains(err.Error(), path) {
			t.Errorf("err %v, want ErrInvalidSource naming %s", err, path)
		}
	})
}

// TestLayoutDirSource reads a hand-written OCI layout, which skopeo
// accepts too: blobs come back verified, a missing blob is ErrNotFound, a
// blob linked out of the directory is refused, a bad oci-layout file is
// ErrInvalidSource.
func TestLayoutDirSource(t *testing.T) {
	dir := t.TempDir()
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	put := func(mediaType string, b []byte) ocispec.Descriptor {
		d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
		if err := os.WriteFile(filepath.Join(blobs, d.Digest.Encoded()), b, 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	layer := tarOf(t, [2][]byte{[]byte("etc/hello"), []byte("hello from a layout\n")})
	config := put(ocispec.MediaTypeImageConfig, mustJSON(t, ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "arm64"},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(layer)}}}))
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: []ocispec.Descriptor{put(ocispec.MediaTypeImageLayer, layer)}}
	m.SchemaVersion = 2
	manifestBytes := mustJSON(t, m)
	md := put(ocispec.MediaTypeImageManifest, manifestBytes)
	md.Annotations = map[string]string{ocispec.AnnotationRefName: "1.0"}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{md}}
	idx.SchemaVersion = 2
	writeFile(t, filepath.Join(dir, "index.json"), mustJSON(t, idx))
	writeFile(t, filepath.Join(dir, ocispec.ImageLayoutFile), mustJSON(t, ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion}))

	if raw := testenv.Skopeo(t, "inspect", "--raw", "oci:"+dir+":1.0"); raw != string(manifestBytes) {
		t.Fatalf("skopeo reads the layout's manifest as %s, want %s", raw, manifestBytes)
	}
	l, err := build.OpenLayoutDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got, err := l.Index()
	if err != nil || len(got.Manifests) != 1 || got.Manifests[0].Digest != md.Digest {
		t.Fatalf("index %+v, %v; want the one manifest %s", got, err, md.Digest)
	}
	if b := fetch(t, l, m.Layers[0]); !bytes.Equal(b, layer) {
		t.Errorf("layer: %d bytes, want %d", len(b), len(layer))
	}

	missing := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromString("absent"), Size: 6}
	if _, err := l.Fetch(t.Context(), missing); !errors.Is(err, manifests.ErrNotFound) {
		t.Errorf("missing blob: %v, want ErrNotFound", err)
	}
	outside := filepath.Join(t.TempDir(), "secret")
	writeFile(t, outside, []byte("outside"))
	linked := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromString("outside"), Size: 7}
	if err := os.Symlink(outside, filepath.Join(blobs, linked.Digest.Encoded())); err != nil {
		t.Fatal(err)
	}
	if rc, err := l.Fetch(t.Context(), linked); err == nil {
		rc.Close()
		t.Errorf("a blob linked out of the layout was read")
	}

	writeFile(t, filepath.Join(dir, ocispec.ImageLayoutFile), []byte(`{}`))
	if _, err := build.OpenLayoutDir(dir); !errors.Is(err, build.ErrInvalidSource) {
		t.Errorf("bad oci-layout file: %v, want ErrInvalidSource", err)
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// fetch reads a blob through transfer's checked read.
func fetch(t *testing.T, f transfer.Fetcher, d ocispec.Descriptor) []byte {
	t.Helper()
	b, err := transfer.FetchAll(t.Context(), f, d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
