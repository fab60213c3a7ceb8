package bundle_test

import (
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/testenv"
)

// TestIndependentReaders checks that other OCI tools read a bundle as
// ferry does: skopeo, go-containerregistry's layout package and a real
// containerd find every image under its name with ferry's digest.
func TestIndependentReaders(t *testing.T) {
	path, _ := writeFixture(t)
	r := testbundle.Open(t, path)
	layoutDir := testbundle.Untar(t, path)
	lp, err := layout.FromPath(layoutDir)
	check(t, err)
	ii, err := lp.ImageIndex()
	check(t, err)
	im, err := ii.IndexManifest()
	check(t, err)

	c := testenv.Containerd(t)
	c.Ctr(t, "-n", "ferry", "images", "import", "--all-platforms", path)
	listed := map[string]string{} // name -> digest
	for _, line := range strings.Split(c.Ctr(t, "-n", "ferry", "images", "ls"), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 2 {
			listed[f[0]] = f[2]
		}
	}

	for _, tc := range []struct {
		name string
		// skopeo's layout reader finds only OCI-typed descriptors by name.
		skopeo bool
	}{
		{ociIndex, true},
		{ociSingle, true},
		{dockerList, false},
		{dockerSingle, false},
	} {
		img, err := r.Image(tc.name)
		check(t, err)
		want := img.Descriptor.Digest
		t.Run(tc.name, func(t *testing.T) {
			if tc.skopeo {
				raw := testenv.Skopeo(t, "inspect", "--raw", "oci-archive:"+path+":"+tc.name)
				if got := digest.FromString(raw); got != want {
					t.Errorf("skopeo: %s, ferry: %s", got, want)
				}
			}
			if got := ggcrDigest(t, ii, im, tc.name); got != want {
				t.Errorf("go-containerregistry layout: %s, ferry: %s", got, want)
			}
			if got := listed[tc.name]; got != want.String() {
				t.Errorf("ctr images ls: %q, ferry: %s", got, want)
			}
		})
	}
}

// ggcrDigest finds the image named name in a layout's index, validates
// every blob of it with go-containerregistry and returns the digest of its
// raw manifest.
func ggcrDigest(t *testing.T, ii v1.ImageIndex, im *v1.IndexManifest, name string) digest.Digest {
	t.Helper()
	for _, d := range im.Manifests {
		if d.Annotations[bundle.AnnotationRefName] != name {
			continue
		}
		var raw []byte
		if d.MediaType.IsIndex() {
			child, err := ii.ImageIndex(d.Digest)
			check(t, err)
			check(t, validate.Index(child))
			raw, err = child.RawManifest()
			check(t, err)
		} else {
			child, err := ii.Image(d.Digest)
			check(t, err)
			check(t, validate.Image(child))
			raw, err = child.RawManifest()
			check(t, err)
		}
		return digest.FromBytes(raw)
	}
	t.Fatalf("go-containerregistry layout: no image named %s", name)
	return ""
}
