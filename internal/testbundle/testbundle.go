// Package testbundle writes bundles from go-containerregistry images for
// tests, through the same bundle.Write that ferry build uses.
package testbundle

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/bundle/build"
)

// Image is what Write accepts for each name: a v1.Image or v1.ImageIndex.
type Image interface {
	partial.Describable
	RawManifest() ([]byte, error)
}

// Write writes images (full reference -> image or index) into a bundle at
// path and returns path. It fails the test on any error.
func Write(t testing.TB, path string, images map[string]Image) string {
	t.Helper()
	WriteOpts(t, path, images, bundle.WriteOptions{})
	return path
}

// WriteOpts is Write with options (a delta's Base, say); it returns what
// bundle.Write reports.
func WriteOpts(t testing.TB, path string, images map[string]Image, opts bundle.WriteOptions) *bundle.WriteResult {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	var sources []bundle.Source
	for name, img := range images {
		if err := writeGraph(lp, img); err != nil {
			t.Fatalf("testbundle: %s: %v", name, err)
		}
		desc, err := describe(img)
		if err != nil {
			t.Fatalf("testbundle: %s: %v", name, err)
		}
		sources = append(sources, bundle.Source{Name: name, Root: desc})
	}
	src, err := build.OpenLayoutDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for i := range sources {
		sources[i].Fetcher = src
	}
	res, err := bundle.Write(context.Background(), path, sources, opts)
	if err != nil {
		t.Fatalf("testbundle: write %s: %v", path, err)
	}
	return res
}

func writeGraph(lp layout.Path, img Image) error {
	switch v := img.(type) {
	case v1.ImageIndex:
		return lp.WriteIndex(v)
	case v1.Image:
		return lp.WriteImage(v)
	}
	return fmt.Errorf("%T is neither a v1.Image nor a v1.ImageIndex", img)
}

func describe(img Image) (ocispec.Descriptor, error) {
	mt, err := img.MediaType()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{MediaType: string(mt), Digest: digest.FromBytes(raw), Size: int64(len(raw))}, nil
}
