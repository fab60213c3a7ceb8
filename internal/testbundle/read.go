package testbundle

import (
	"context"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/manifests"
)

// ReadIndex reads and parses an index of the bundle, failing the test on error.
func ReadIndex(t testing.TB, r *bundle.Reader, d ocispec.Descriptor) ocispec.Index {
	t.Helper()
	return read(t, r, d, manifests.ParseIndex)
}

// ReadManifest reads and parses a manifest of the bundle, failing the test on error.
func ReadManifest(t testing.TB, r *bundle.Reader, d ocispec.Descriptor) ocispec.Manifest {
	t.Helper()
	return read(t, r, d, manifests.ParseManifest)
}

func read[T any](t testing.TB, r *bundle.Reader, d ocispec.Descriptor, parse func([]byte) (T, error)) T {
	t.Helper()
	b, err := r.ReadAll(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	v, err := parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
