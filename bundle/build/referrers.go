package build

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// referrerFinder finds the referrers of a manifest in an image source.
type referrerFinder interface {
	// Referrers lists the manifests whose subject is subject.
	Referrers(ctx context.Context, subject digest.Digest) ([]ocispec.Descriptor, error)
	// Tag resolves a tag; ok is false when there is none.
	Tag(ctx context.Context, tag string) (desc ocispec.Descriptor, ok bool, err error)
}

// cosignSuffixes are the tags of cosign's tag scheme looked up for every
// manifest.
var cosignSuffixes = []string{manifests.CosignSignatureSuffix, manifests.CosignAttestationSuffix, manifests.CosignSBOMSuffix}

// withReferrers adds to src every referrer of its root and of its
// platform manifests found by finder, then their referrers, and so on,
// keeping those of a wanted artifact type: a walk of the image's graph in
// which the referrers of each index and manifest are edges after its
// children. A listed referrer that cannot be read is an error naming it.
// The returned source keeps in memory the indexes and manifests the walk
// read, so writing the bundle does not fetch them again.
func (r *resolver) withReferrers(ctx context.Context, src bundle.Source, finder referrerFinder) (bundle.Source, error) {
	if finder == nil || r.opts.Referrers == manifests.ReferrersNone {
		return src, nil
	}
	seen := map[digest.Digest]bool{}
	w := &transfer.Walker{Src: src.Fetcher, Edges: func(ctx context.Context, desc ocispec.Descriptor, _ []byte) ([]ocispec.Descriptor, error) {
		found, err := referrersOf(ctx, finder, src.Fetcher, desc.Digest)
		if err != nil {
			return nil, err
		}
		var next []ocispec.Descriptor
		for _, ref := range found {
			if d := ref.Descriptor.Digest; !seen[d] && r.wantArtifactType(ref.Descriptor.ArtifactType) {
				seen[d] = true
				src.Referrers = append(src.Referrers, ref)
				next = append(next, ref.Descriptor)
			}
		}
		return next, nil
	}}
	read := transfer.NewMemory() // what the walk read, so Write reads it again from memory
	err := w.Walk(ctx, src.Root, func(desc ocispec.Descriptor, content []byte) error {
		if content != nil {
			read.Add(desc.MediaType, content)
		}
		return nil
	})
	src.Fetcher = transfer.Overlay{read, src.Fetcher}
	return src, err
}

// wantArtifactType applies the --artifact-type filter.
func (r *resolver) wantArtifactType(t string) bool {
	return len(r.opts.ArtifactTypes) == 0 || slices.Contains(r.opts.ArtifactTypes, t)
}

// referrersOf lists subject's OCI 1.1 referrers and cosign tag-scheme
// manifests, each read to learn (and check) what it is.
func referrersOf(ctx context.Context, finder referrerFinder, f transfer.Fetcher, subject digest.Digest) ([]bundle.Referrer, error) {
	descs, err := finder.Referrers(ctx, subject)
	if err != nil {
		return nil, err
	}
	var out []bundle.Referrer
	for _, d := range descs {
		ref, err := describeReferrer(ctx, f, subject, "", d)
		if err != nil {
			return nil, err
		}
		out = append(out, ref)
	}
	for _, suffix := range cosignSuffixes {
		tag := manifests.CosignTag(subject, suffix)
		d, ok, err := finder.Tag(ctx, tag)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		ref, err := describeReferrer(ctx, f, subject, tag, d)
		if err != nil {
			return nil, err
		}
		out = append(out, ref)
	}
	return out, nil
}

// describeReferrer reads the referrer d of subject (stored under tag in
// cosign's scheme, or an OCI 1.1 referrer when tag is "") and returns it
// with its artifact type.
func describeReferrer(ctx context.Context, f transfer.Fetcher, subject digest.Digest, tag string, d ocispec.Descriptor) (bundle.Referrer, error) {
	d = ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}
	what := fmt.Sprintf("referrer %s of %s", d.Digest, subject)
	if tag != "" {
		what = fmt.Sprintf("cosign tag %s (%s)", tag, d.Digest)
	}
	if !manifests.IsGraphNode(d.MediaType) {
		return bundle.Referrer{}, fmt.Errorf("%s: %w: media type %q is not a manifest", what, manifests.ErrInvalidManifest, d.MediaType)
	}
	content, err := transfer.FetchAll(ctx, f, d)
	if err != nil {
		return bundle.Referrer{}, fmt.Errorf("%s: %w", what, err)
	}
	listed, named, err := manifests.Referrer(d, content)
	if err != nil {
		return bundle.Referrer{}, fmt.Errorf("%s: %w", what, err)
	}
	if tag == "" && (named == nil || named.Digest != subject) {
		return bundle.Referrer{}, fmt.Errorf("%s: %w: its subject is not %s", what, manifests.ErrInvalidManifest, subject)
	}
	d.ArtifactType = listed.ArtifactType
	if tag != "" {
		d.ArtifactType = cosignTagType(content, tag, listed.ArtifactType)
	}
	return bundle.Referrer{Subject: subject, Tag: tag, Descriptor: d}, nil
}

// cosignTagType is the artifact type of a cosign tag-scheme manifest,
// which has none of its own: cosign's signature type for a .sig tag, the
// first layer's media type when the config is an image config or empty
// (cosign's .att and .sbom), else listed (the config's media type).
func cosignTagType(content []byte, tag, listed string) string {
	if strings.HasSuffix(tag, manifests.CosignSignatureSuffix) {
		return manifests.ArtifactTypeCosignSignature
	}
	m, err := manifests.ParseManifest(content)
	if err == nil && (manifests.IsConfig(m.Config.MediaType) || m.Config.MediaType == ocispec.MediaTypeEmptyJSON) && len(m.Layers) > 0 {
		return m.Layers[0].MediaType
	}
	return listed
}

// layoutFinder finds referrers in an OCI layout's index.json (an oci:
// directory, or an oci-archive: such as a bundle): the manifests listed
// there with a subject, those listed by a referrers tag schema index
// there, and cosign tag-scheme tags named there.
type layoutFinder struct {
	index ocispec.Index
	f     transfer.Fetcher

	once      sync.Once
	err       error
	bySubject map[digest.Digest][]ocispec.Descriptor
	tags      map[string]ocispec.Descriptor
}

// Referrers implements referrerFinder.
func (l *layoutFinder) Referrers(ctx context.Context, subject digest.Digest) ([]ocispec.Descriptor, error) {
	l.once.Do(func() { l.err = l.load(ctx) })
	return l.bySubject[subject], l.err
}

// Tag implements referrerFinder.
func (l *layoutFinder) Tag(ctx context.Context, tag string) (ocispec.Descriptor, bool, error) {
	l.once.Do(func() { l.err = l.load(ctx) })
	d, ok := l.tags[tag]
	return d, ok, l.err
}

// load reads every index.json entry that may be a referrer.
func (l *layoutFinder) load(ctx context.Context) error {
	l.bySubject, l.tags = map[digest.Digest][]ocispec.Descriptor{}, map[string]ocispec.Descriptor{}
	seen := map[digest.Digest]bool{}
	for _, d := range l.index.Manifests {
		name := d.Annotations[bundle.AnnotationRefName]
		tag := layoutTag(d)
		if _, _, ok := manifests.ParseCosignTag(tag); ok {
			l.tags[tag] = d
			continue
		}
		candidates := []ocispec.Descriptor{d}
		if manifests.IsIndex(d.MediaType) && isReferrersTag(tag) {
			content, err := transfer.FetchAll(ctx, l.f, d)
			if err != nil {
				return fmt.Errorf("referrers index %s: %w", name, err)
			}
			idx, err := manifests.ParseIndex(content)
			if err != nil {
				return fmt.Errorf("referrers index %s: %w", name, err)
			}
			candidates = idx.Manifests
		}
		for _, c := range candidates {
			if err := l.addIfReferrer(ctx, c, seen); err != nil {
				return err
			}
		}
	}
	return nil
}

// addIfReferrer reads a manifest and files it under its subject, if any.
func (l *layoutFinder) addIfReferrer(ctx context.Context, d ocispec.Descriptor, seen map[digest.Digest]bool) error {
	if seen[d.Digest] || !manifests.IsManifest(d.MediaType) {
		return nil
	}
	seen[d.Digest] = true
	content, err := transfer.FetchAll(ctx, l.f, d)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", d.Digest, err)
	}
	_, subject, err := manifests.Referrer(d, content)
	if err != nil {
		return err
	}
	if subject != nil {
		l.bySubject[subject.Digest] = append(l.bySubject[subject.Digest], d)
	}
	return nil
}

// isLayoutReferrer reports whether an oci: layout's index.json entry is a
// referrer or a referrers or cosign tag rather than an image: ferry's
// referrer annotation, or a name that is such a tag.
func isLayoutReferrer(d ocispec.Descriptor) bool {
	if _, ok := d.Annotations[bundle.AnnotationReferrerSubject]; ok {
		return true
	}
	tag := layoutTag(d)
	_, _, cosign := manifests.ParseCosignTag(tag)
	return cosign || isReferrersTag(tag)
}

// layoutTag is the tag of a layout's index.json entry: ferry's referrer
// tag annotation, or the tag of its org.opencontainers.image.ref.name
// (a bare tag, as oras and skopeo write, or a full reference).
func layoutTag(d ocispec.Descriptor) string {
	if tag, ok := d.Annotations[bundle.AnnotationReferrerTag]; ok {
		return tag
	}
	name := d.Annotations[bundle.AnnotationRefName]
	return name[strings.LastIndex(name, ":")+1:]
}

// isReferrersTag reports whether tag is a referrers tag schema tag
// ("sha256-<hex>").
func isReferrersTag(tag string) bool {
	alg, hex, ok := strings.Cut(tag, "-")
	return ok && digest.NewDigestFromEncoded(digest.Algorithm(alg), hex).Validate() == nil
}
