package installer_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/bundle/build"
	"github.com/ferry-oci/ferry/installer"
	"github.com/ferry-oci/ferry/internal/remote"
	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
	"github.com/ferry-oci/ferry/manifests"
	"github.com/ferry-oci/ferry/manifests/imagelist"
)

// TestPushPlatformSameDigestAsBuild builds multi-arch images (an OCI index
// and a Docker manifest list) from a real registry with --platform, and
// separately pushes the unfiltered bundle with --platform to a real
// docker-registry: the filtered index must have the same digest both ways.
func TestPushPlatformSameDigestAsBuild(t *testing.T) {
	ctx := context.Background()
	src := testenv.Registry(t)
	testimages.Push(t, src, "library/oci:1", testimages.Index(t, []string{"linux/amd64", "linux/arm64", "linux/arm/v7"}))
	testimages.Push(t, src, "library/docker:1", testimages.Index(t, []string{"linux/amd64", "linux/arm64"}, testimages.Docker()))
	names := []string{src.Ref("library/oci:1"), src.Ref("library/docker:1")}
	arm64 := []ocispec.Platform{{OS: "linux", Architecture: "arm64"}}

	dir := t.TempDir()
	buildBundle := func(name string, platforms []ocispec.Platform) string {
		list := &imagelist.List{}
		if err := list.AddRefs(names); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, name)
		opts := build.Options{List: list, Output: out, Platforms: platforms, Registry: remote.Options{PlainHTTP: true}}
		if _, err := build.Build(ctx, opts); err != nil {
			t.Fatalf("build %s: %v", name, err)
		}
		return out
	}
	full := testbundle.Open(t, buildBundle("full.tar", nil))
	filtered := testbundle.Open(t, buildBundle("arm64.tar", arm64))

	dst := testenv.Registry(t)
	opts := pushOptions(dst, dst.Host, "pushed")
	opts.Platforms = arm64
	res, err := installer.Push(ctx, full, opts)
	if err != nil {
		t.Fatalf("push --platform linux/arm64: %v", err)
	}
	if len(res.Images) != len(names) {
		t.Fatalf("pushed %d images, want %d", len(res.Images), len(names))
	}
	for _, img := range res.Images {
		built, err := filtered.Image(img.Name)
		if err != nil {
			t.Fatal(err)
		}
		unfiltered, err := full.Image(img.Name)
		if err != nil {
			t.Fatal(err)
		}
		_, path, tag, err := manifests.SplitReference(img.Name)
		if err != nil {
			t.Fatal(err)
		}
		inRegistry := digest.FromBytes(inspectRaw(t, dst, "pushed/"+path+":"+tag))
		switch {
		case built.Descriptor.Digest == unfiltered.Descriptor.Digest:
			t.Fatalf("%s: build --platform kept the unfiltered digest %s", img.Name, built.Descriptor.Digest)
		case img.Digest != built.Descriptor.Digest || inRegistry != built.Descriptor.Digest:
			t.Errorf("%s: build --platform gives %s, push --platform gives %s (registry holds %s)",
				img.Name, built.Descriptor.Digest, img.Digest, inRegistry)
		}
	}
}
