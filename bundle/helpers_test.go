package bundle_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/testimages"
)

// Names of the fixture's images.
const (
	ociIndex     = "docker.io/library/oci-index:1"
	dockerList   = "docker.io/library/docker-list:1"
	ociSingle    = "registry.example.com/team/single:2.0"
	dockerSingle = "docker.io/library/docker-single:1"
)

// fixture is a small set of real images covering what a bundle holds: an
// OCI index and a Docker manifest list that share a base layer, and single
// OCI and Docker manifests. Every image has the busybox layer.
func fixture(t testing.TB) map[string]testbundle.Image {
	t.Helper()
	base, err := random.Layer(2048, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	small := testimages.WithRandomLayers(1, 1024)
	return map[string]testbundle.Image{
		ociIndex:     testimages.Index(t, []string{"linux/amd64", "linux/arm64"}, testimages.WithSharedBase(base), small),
		dockerList:   testimages.Index(t, []string{"linux/amd64", "linux/arm/v7"}, testimages.Docker(), testimages.WithSharedBase(base), small),
		ociSingle:    testimages.Image(t, "linux/arm64", small),
		dockerSingle: testimages.Image(t, "linux/amd64", testimages.Docker(), small),
	}
}

// writeFixture writes the fixture to a bundle in a temp dir.
func writeFixture(t testing.TB) (string, map[string]testbundle.Image) {
	t.Helper()
	images := fixture(t)
	return testbundle.Write(t, filepath.Join(t.TempDir(), "bundle.tar"), images), images
}

// blobs lists every blob an image reaches, its root included, with the
// media type and size it is referenced by, as go-containerregistry sees them.
func blobs(t testing.TB, img testbundle.Image) map[digest.Digest]ocispec.Descriptor {
	t.Helper()
	out := map[digest.Digest]ocispec.Descriptor{}
	add := func(mt types.MediaType, d v1.Hash, size int64) {
		out[digest.Digest(d.String())] = ocispec.Descriptor{MediaType: string(mt), Digest: digest.Digest(d.String()), Size: size}
	}
	var walk func(img testbundle.Image)
	walk = func(img testbundle.Image) {
		mt, err := img.MediaType()
		check(t, err)
		raw, err := img.RawManifest()
		check(t, err)
		h, size, err := v1.SHA256(bytes.NewReader(raw))
		check(t, err)
		add(mt, h, size)
		switch v := img.(type) {
		case v1.ImageIndex:
			im, err := v.IndexManifest()
			check(t, err)
			for _, d := range im.Manifests {
				var child testbundle.Image
				if d.MediaType.IsIndex() {
					child, err = v.ImageIndex(d.Digest)
				} else {
					child, err = v.Image(d.Digest)
				}
				check(t, err)
				walk(child)
			}
		case v1.Image:
			m, err := v.Manifest()
			check(t, err)
			add(m.Config.MediaType, m.Config.Digest, m.Config.Size)
			for _, l := range m.Layers {
				add(l.MediaType, l.Digest, l.Size)
			}
		}
	}
	walk(img)
	return out
}

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// dirEntries lists the names in dir.
func dirEntries(t testing.TB, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	check(t, err)
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}
