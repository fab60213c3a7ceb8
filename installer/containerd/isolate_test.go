package containerd_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/installer/containerd"
	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
	"github.com/ferry-oci/ferry/manifests"
)

// TestImportIsolatesImages: one image's corrupt manifest, or its manifest
// declaring a shared layer with a wrong size, fails that image only; the
// others are recorded, whatever order the copies run in.
func TestImportIsolatesImages(t *testing.T) {
	ctd := testenv.Containerd(t)
	const n, broken = 8, "docker.io/library/img3:1"
	images := map[string]testbundle.Image{}
	for i := range n {
		images[fmt.Sprintf("docker.io/library/img%d:1", i)] = testimages.Image(t, nodePlatform, testimages.WithRandomLayers(1, 2<<10))
	}
	path := testbundle.Write(t, filepath.Join(t.TempDir(), "bundle.tar"), images)
	for _, tc := range []struct {
		name string
		make func(t *testing.T) (string, digest.Digest, error) // bundle, blob named, sentinel
	}{
		{"corrupt manifest", func(t *testing.T) (string, digest.Digest, error) {
			img, err := testbundle.Open(t, path).Image(broken)
			if err != nil {
				t.Fatal(err)
			}
			cp := testbundle.RewriteManifest(t, path, "docker.io/library/img0:1", func(*ocispec.Manifest) {}) // a copy
			testbundle.FlipBlob(t, cp, img.Descriptor.Digest)
			return cp, img.Descriptor.Digest, manifests.ErrDigestMismatch
		}},
		{"shared layer with a wrong size", func(t *testing.T) (string, digest.Digest, error) {
			var layer digest.Digest
			cp := testbundle.RewriteManifest(t, path, broken, func(m *ocispec.Manifest) {
				layer = m.Layers[0].Digest // busybox, in every image
				m.Layers[0].Size++
			})
			return cp, layer, manifests.ErrSizeMismatch
		}},
	} {
		// One job: the images go in order, so the good ones have
		// written the shared layer when the broken one comes to it.
		for _, jobs := range []int{1, 0} {
			t.Run(fmt.Sprintf("%s jobs %d", tc.name, jobs), func(t *testing.T) {
				checkIsolated(t, ctd, broken, jobs, tc.make)
			})
		}
	}
}

func checkIsolated(t *testing.T, ctd *testenv.ContainerdServer, broken string, jobs int, make func(t *testing.T) (string, digest.Digest, error)) {
	bpath, blob, sentinel := make(t)
	ns := strings.NewReplacer(" ", "-", "/", "-").Replace(strings.ToLower(t.Name()))
	res, err := containerd.Import(context.Background(), testbundle.Open(t, bpath),
		containerd.ImportOptions{Address: ctd.Address, Namespace: ns, NoUnpack: true, Jobs: jobs})
	if !errors.Is(err, manifests.ErrImagesFailed) || res == nil {
		t.Fatalf("import: %v, want manifests.ErrImagesFailed with a result", err)
	}
	recorded := ctrImages(t, ctd, ns)
	for _, img := range res.Images {
		switch {
		case img.Name == broken:
			if !strings.Contains(img.Error, broken) || !strings.Contains(img.Error, blob.String()) || !errors.Is(err, sentinel) {
				t.Errorf("%s: %q (%v); want it failed naming the image and %s", img.Name, img.Error, err, blob)
			}
			if _, ok := recorded[img.Name]; ok {
				t.Errorf("%s is recorded", img.Name)
			}
		case img.Error != "":
			t.Errorf("%s failed: %s", img.Name, img.Error)
		case recorded[img.Name] != img.Digest:
			t.Errorf("%s: recorded %q, want %s", img.Name, recorded[img.Name], img.Digest)
		}
	}
}
