package installer_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/installer"
	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
	"github.com/ferry-oci/ferry/manifests"
)

// wrongSizeBundle holds three images sharing the busybox layer, in three
// repositories (so the layer is mounted between them); b-bad's manifest
// declares the layer with size(real size). It returns the bundle and the layer.
func wrongSizeBundle(t *testing.T, size func(int64) int64) (*bundle.Reader, ocispec.Descriptor) {
	t.Helper()
	path := testbundle.Write(t, filepath.Join(t.TempDir(), "bundle.tar"), map[string]testbundle.Image{
		"docker.io/library/a-good:1": testimages.Image(t, "linux/amd64"),
		"docker.io/library/b-bad:1":  testimages.Image(t, "linux/amd64", testimages.WithRandomLayers(1, 4<<10)),
		"docker.io/library/c-good:1": testimages.Image(t, "linux/arm64"),
	})
	var layer ocispec.Descriptor
	path = testbundle.RewriteManifest(t, path, "docker.io/library/b-bad:1", func(m *ocispec.Manifest) {
		layer = m.Layers[0] // busybox, shared by all three
		m.Layers[0].Size = size(layer.Size)
	})
	return testbundle.Open(t, path), layer
}

var wrongSizes = []struct {
	name string
	size func(int64) int64
}{
	{"one byte more", func(n int64) int64 { return n + 1 }},
	{"one byte less", func(n int64) int64 { return n - 1 }},
	{"huge", func(int64) int64 { return 1<<63 - 1<<60 }}, // 7 EiB, as "7.8 EiB not sent" once
}

// TestPushWrongDeclaredSize: a manifest that declares a shared layer with
// a wrong size fails its image, every time, whichever path the layer takes
// (sent, found present, or mounted from another repository); the images
// that declare it right are pushed and pullable.
func TestPushWrongDeclaredSize(t *testing.T) {
	reg := testenv.Registry(t)
	for i, tc := range wrongSizes {
		t.Run(tc.name, func(t *testing.T) {
			r, layer := wrongSizeBundle(t, tc.size)
			prefix := "size" + string(rune('a'+i))
			res, err := installer.Push(context.Background(), r, pushOptions(reg, reg.Host, prefix))
			if !errors.Is(err, manifests.ErrImagesFailed) {
				t.Fatalf("push: %v, want manifests.ErrImagesFailed", err)
			}
			bad := image(t, res, "docker.io/library/b-bad:1").Err
			t.Logf("b-bad: %v", bad)
			if !errors.Is(bad, manifests.ErrSizeMismatch) || !strings.Contains(bad.Error(), layer.Digest.String()) ||
				!strings.Contains(bad.Error(), "b-bad") {
				t.Errorf("b-bad: %v; want a size mismatch naming the image and %s", bad, layer.Digest)
			}
			if _, err := ggcr.Head(ref(t, reg, prefix+"/library/b-bad:1"), ggcr.WithTransport(reg.Transport())); err == nil {
				t.Error("b-bad is tagged in the registry")
			}
			for _, good := range []string{"a-good", "c-good"} {
				if err := image(t, res, "docker.io/library/"+good+":1").Err; err != nil {
					t.Errorf("%s: %v", good, err)
					continue
				}
				img, err := ggcr.Image(ref(t, reg, prefix+"/library/"+good+":1"), ggcr.WithTransport(reg.Transport()))
				if err != nil {
					t.Fatal(err)
				}
				if err := validate.Image(img); err != nil {
					t.Errorf("%s does not pull whole from the registry: %v", good, err)
				}
			}
		})
	}
}

func ref(t *testing.T, reg *testenv.RegistryServer, path string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(reg.Ref(path), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
