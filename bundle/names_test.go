package bundle_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/testimages"
	"github.com/ferry-oci/ferry/manifests"
)

// TestVerifyReportsInvalidName verifies a bundle naming an image
// ../../../etc/passwd: verify reports it as not an image reference.
func TestVerifyReportsInvalidName(t *testing.T) {
	const bad = "../../../etc/passwd"
	path := testbundle.Write(t, filepath.Join(t.TempDir(), "b.tar"), map[string]testbundle.Image{
		bad:                testimages.Image(t, "linux/amd64"),
		"example.com/ok:1": testimages.Image(t, "linux/arm64"),
	})
	rep, err := bundle.Verify(t.Context(), testbundle.Open(t, path), bundle.VerifyOptions{})
	if !errors.Is(err, bundle.ErrVerifyFailed) || !errors.Is(err, manifests.ErrInvalidReference) || rep == nil {
		t.Fatalf("verify: %v, want ErrVerifyFailed and ErrInvalidReference", err)
	}
	if len(rep.Problems) != 1 || len(rep.Problems[0].Images) != 1 || rep.Problems[0].Images[0] != bad {
		t.Errorf("problems %+v, want one naming %s", rep.Problems, bad)
	}
}

// schema2 is the schemaVersion of every OCI index and manifest.
var schema2 = specs.Versioned{SchemaVersion: 2}

// TestDeepIndexChain reads a bundle whose image is 20,000 indexes nested
// in one another: verify reports the nesting, inspect refuses it, both at
// once.
func TestDeepIndexChain(t *testing.T) {
	var blobs []ocispec.Descriptor
	content := map[digest.Digest][]byte{}
	add := func(mt string, v any) ocispec.Descriptor {
		b, err := json.Marshal(v)
		check(t, err)
		d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
		blobs, content[d.Digest] = append(blobs, d), b
		return d
	}
	config := add(ocispec.MediaTypeImageConfig, ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}})
	root := add(ocispec.MediaTypeImageManifest, ocispec.Manifest{Versioned: schema2, MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: []ocispec.Descriptor{}})
	for range 20000 {
		root = add(ocispec.MediaTypeImageIndex, ocispec.Index{Versioned: schema2, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{root}})
	}
	name := "example.com/deep:1"
	root.Annotations = map[string]string{bundle.AnnotationContainerdName: name, bundle.AnnotationRefName: name}
	path := filepath.Join(t.TempDir(), "deep.tar")
	w, err := bundle.Create(path, ocispec.Index{Manifests: []ocispec.Descriptor{root}}, blobs)
	check(t, err)
	for _, d := range blobs {
		check(t, w.Push(t.Context(), d, bytes.NewReader(content[d.Digest])))
	}
	check(t, w.Commit())

	r := testbundle.Open(t, path)
	rep, err := bundle.Verify(t.Context(), r, bundle.VerifyOptions{})
	if !errors.Is(err, manifests.ErrTooDeep) || rep == nil || len(rep.Problems) != 1 {
		t.Errorf("verify: %v, want one problem, ErrTooDeep", err)
	}
	if _, err := bundle.Inspect(t.Context(), r); !errors.Is(err, manifests.ErrTooDeep) {
		t.Errorf("inspect: %v, want ErrTooDeep", err)
	}
}
