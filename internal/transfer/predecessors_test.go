package transfer_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// addReferrer adds an artifact manifest whose subject is subject.
func addReferrer(g graph, subject ocispec.Descriptor, artifactType, payload string) ocispec.Descriptor {
	layer := g.src.Add("application/vnd.example.payload", []byte(payload))
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: artifactType,
		Config: ocispec.DescriptorEmptyJSON, Layers: []ocispec.Descriptor{layer}, Subject: &subject}
	m.SchemaVersion = 2
	g.src.Add(ocispec.DescriptorEmptyJSON.MediaType, ocispec.DescriptorEmptyJSON.Data)
	b, _ := json.Marshal(m)
	return g.src.Add(ocispec.MediaTypeImageManifest, b)
}

// TestCopyPredecessors copies referrers after their subjects (a signature
// on the index, an SBOM on a platform manifest, a signature on the SBOM),
// also when the target already has the subject, and fails the graph on a
// referrer it cannot read.
func TestCopyPredecessors(t *testing.T) {
	g := newGraph(t)
	sig := addReferrer(g, g.index, manifests.ArtifactTypeCosignSignature, "index signature")
	sbom := addReferrer(g, g.amd64, "application/spdx+json", "sbom")
	sbomSig := addReferrer(g, sbom, manifests.ArtifactTypeCosignSignature, "sbom signature")
	preds := map[digest.Digest][]ocispec.Descriptor{}
	for _, edge := range [][2]ocispec.Descriptor{{g.index, sig}, {g.amd64, sbom}, {sbom, sbomSig}} {
		preds[edge[0].Digest] = append(preds[edge[0].Digest], edge[1])
	}
	find := func(_ context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		return preds[desc.Digest], nil
	}
	for _, trust := range []bool{false, true} {
		dst := &recorder{Memory: transfer.NewMemory()}
		if _, err := transfer.Copy(context.Background(), g.src, dst, g.index, transfer.Options{TrustExistingManifests: trust}); err != nil {
			t.Fatal(err)
		}
		before := len(dst.pushed)
		if _, err := transfer.Copy(context.Background(), g.src, dst, g.index, transfer.Options{TrustExistingManifests: trust, Predecessors: find}); err != nil {
			t.Fatal(err)
		}
		if got := len(dst.pushed) - before; got != 7 {
			t.Errorf("trust %v: the referrers' copy pushed %d blobs, want 7 (3 manifests, 3 layers, the empty config)", trust, got)
		}
	}
	dst := &recorder{Memory: transfer.NewMemory()}
	if _, err := transfer.Copy(context.Background(), g.src, dst, g.index, transfer.Options{Predecessors: find}); err != nil {
		t.Fatal(err)
	}
	for _, edge := range [][2]ocispec.Descriptor{{g.index, sig}, {g.amd64, sbom}, {sbom, sbomSig}} {
		if s, r := dst.position(edge[0].Digest), dst.position(edge[1].Digest); s < 0 || r < s {
			t.Errorf("referrer %s at %d, its subject %s at %d: want it after", edge[1].Digest, r, edge[0].Digest, s)
		}
	}

	missing := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: "sha256:0000000000000000000000000000000000000000000000000000000000000000", Size: 2}
	bad := func(_ context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		if desc.Digest == g.arm64.Digest {
			return []ocispec.Descriptor{missing}, nil
		}
		return nil, nil
	}
	_, err := transfer.Copy(context.Background(), g.src, transfer.NewMemory(), g.index, transfer.Options{Predecessors: bad})
	var cerr *transfer.CopyError
	if !errors.As(err, &cerr) || cerr.Desc.Digest != missing.Digest || cerr.Origin != transfer.Source || !errors.Is(err, manifests.ErrNotFound) {
		t.Errorf("copy with a referrer the source lacks: %v, want a CopyError naming it", err)
	}
}
