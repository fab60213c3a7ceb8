package bundle

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// Report describes a bundle: its images and what its blobs weigh.
type Report struct {
	// Digest is the digest of the bundle's index.json, which names it.
	Digest digest.Digest `json:"digest,omitempty"`
	Images []ImageReport `json:"images"`
	// Blobs and Bytes count the blob entries of the bundle.
	Blobs int   `json:"blobs"`
	Bytes int64 `json:"bytes"`
	// SharedBytes is what storing shared blobs once saves: the sum of the
	// images' sizes minus the size of the blobs they reach together.
	SharedBytes int64 `json:"sharedBytes"`
	// Delta, for a delta bundle, names its bases and counts what it
	// borrows from them; Blobs and Bytes count what it holds.
	Delta *DeltaReport `json:"delta,omitempty"`
}

// ImageReport describes one image of a bundle.
type ImageReport struct {
	Name      string        `json:"name"`
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType"`
	// Platforms are an index's entries' platforms, or a single manifest's
	// platform read from its config, as os/arch[/variant].
	Platforms []string `json:"platforms"`
	// Size is the sum of the unique blobs reachable from the image,
	// its index and manifests included (its referrers' not).
	Size int64 `json:"size"`
	// Referrers are the signatures, SBOMs, attestations and other
	// artifacts that travel with the image.
	Referrers []ReferrerReport `json:"referrers"`
}

// ReferrerReport describes one referrer of an image.
type ReferrerReport struct {
	ArtifactType string        `json:"artifactType"`
	Digest       digest.Digest `json:"digest"`
	// Size is the referrer manifest's size.
	Size int64 `json:"size"`
	// Subject is the digest of the manifest it refers to.
	Subject digest.Digest `json:"subject"`
	// Tag is cosign's tag-scheme tag it is stored under, if any.
	Tag string `json:"tag,omitempty"`
}

// Inspect describes every image of the bundle r. It reads only indexes,
// manifests and (for single-manifest images) configs, and fails, wrapping
// the sentinel concerned (ErrBlobNotFound, manifests.ErrSizeMismatch, ...),
// when one of the images' blobs is missing or its graph cannot be read;
// Verify lists every such problem.
func Inspect(ctx context.Context, r *Reader) (*Report, error) {
	g, err := r.walkGraph(ctx)
	if err != nil {
		return nil, err
	}
	if p := g.problems(); len(p) > 0 {
		return nil, fmt.Errorf("inspect: %w", p[0])
	}
	rep := &Report{Digest: r.Digest(), Images: make([]ImageReport, 0, len(g.images)), Delta: g.deltaReport(r)}
	rep.Blobs, rep.Bytes = r.totals()
	var sum, unique int64
	for _, n := range g.nodes {
		unique += n.desc.Size
	}
	for _, img := range g.images {
		platforms, err := r.platforms(ctx, img.Descriptor.MediaType, img.root)
		if err != nil {
			return nil, fmt.Errorf("inspect %s: %w", img.Name, err)
		}
		ir := ImageReport{
			Name:      img.Name,
			Digest:    img.Descriptor.Digest,
			MediaType: img.Descriptor.MediaType,
			Platforms: platforms,
			Referrers: []ReferrerReport{},
		}
		for _, ref := range r.ReferrersOf(img.Name) {
			d := ref.Descriptor
			ir.Referrers = append(ir.Referrers, ReferrerReport{ArtifactType: d.ArtifactType, Digest: d.Digest, Size: d.Size, Subject: ref.Subject, Tag: ref.Tag})
		}
		for _, d := range img.blobs {
			ir.Size += g.nodes[d].desc.Size
		}
		sum += ir.Size
		rep.Images = append(rep.Images, ir)
	}
	rep.SharedBytes = sum - unique
	return rep, nil
}

// totals counts the bundle's blob entries and their bytes.
func (r *Reader) totals() (int, int64) {
	var bytes int64
	for _, e := range r.blobs {
		bytes += e.size
	}
	return len(r.blobs), bytes
}

// platforms lists the platforms of an image from its root's content (of
// mediaType, as the walk read it): its index's entries', or the
// os/architecture/variant of a single manifest's config.
func (r *Reader) platforms(ctx context.Context, mediaType string, content []byte) ([]string, error) {
	if !manifests.IsGraphNode(mediaType) {
		return []string{}, nil
	}
	if manifests.IsIndex(mediaType) {
		idx, err := manifests.ParseIndex(content)
		if err != nil {
			return nil, err
		}
		return append([]string{}, manifests.IndexPlatforms(idx)...), nil
	}
	p, err := transfer.ManifestPlatform(ctx, r, content)
	if err != nil || p == nil {
		return []string{}, err
	}
	return []string{manifests.FormatPlatform(*p)}, nil
}
