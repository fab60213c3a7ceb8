package testbundle

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ferry-oci/ferry/internal/testimages"
)

// Names of the images of Releases.
const (
	// ReleaseMulti is v1's multi-arch image; ReleaseMultiV2 is v2's, with
	// one layer changed.
	ReleaseMulti   = "docker.io/ferrytest/multi:1"
	ReleaseMultiV2 = "docker.io/ferrytest/multi:2"
	// ReleaseKeep and ReleaseKeepList are in both releases, unchanged.
	ReleaseKeep     = "docker.io/ferrytest/keep:1"
	ReleaseKeepList = "quay.io/ferrytest/keep-list:1"
)

// ReleaseDropped are the images of v1 that v2 drops; ReleaseAdded are the
// images v2 adds.
var (
	ReleaseDropped = []string{"docker.io/ferrytest/drop-a:1", "docker.io/ferrytest/drop-b:1"}
	ReleaseAdded   = []string{"docker.io/ferrytest/new-a:1", "docker.io/ferrytest/new-b:1", "quay.io/ferrytest/new-c:1"}
)

// Releases returns two releases of a small platform, as an upgrade
// makes them: v2 drops two images of v1 (ReleaseDropped), adds three
// (ReleaseAdded, on v1's base layers), and changes one layer of v1's
// multi-arch image (ReleaseMulti becomes ReleaseMultiV2); ReleaseKeep and
// ReleaseKeepList are the same in both. Every image has the busybox layer
// and a base layer they share; layers are random and about 32 KiB.
func Releases(t testing.TB) (v1, v2 map[string]Image) {
	t.Helper()
	layer := func() testimages.Option {
		l, err := random.Layer(32<<10, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		return testimages.WithSharedBase(l)
	}
	base, kept, changed := layer(), layer(), layer()
	own := testimages.WithRandomLayers(1, 32<<10)
	multi := []string{"linux/amd64", "linux/arm64"}
	common := map[string]Image{
		ReleaseKeep:     testimages.Image(t, "linux/amd64", base, own),
		ReleaseKeepList: testimages.Index(t, multi, testimages.Docker(), own),
	}
	v1, v2 = map[string]Image{}, map[string]Image{}
	for name, img := range common {
		v1[name], v2[name] = img, img
	}
	v1[ReleaseMulti] = testimages.Index(t, multi, base, kept, changed)
	v2[ReleaseMultiV2] = testimages.Index(t, multi, base, kept, layer())
	for _, name := range ReleaseDropped {
		v1[name] = testimages.Image(t, "linux/amd64", base, own)
	}
	for _, name := range ReleaseAdded {
		v2[name] = testimages.Image(t, "linux/amd64", base, own)
	}
	return v1, v2
}
