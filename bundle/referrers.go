package bundle

import (
	"context"
	"fmt"
	"sort"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// Annotations of a referrer's index.json entry (see the README's bundle
// section). An entry with AnnotationReferrerSubject is a referrer, not an
// image: it has no io.containerd.image.name, so containerd's import skips it.
const (
	// AnnotationReferrerSubject is the digest of the manifest the referrer
	// refers to: its subject field, or the digest a cosign tag names.
	AnnotationReferrerSubject = "io.github.ferry-oci.referrer.subject"
	// AnnotationReferrerImage is the full reference of the image the
	// referrer travels with; its repository is where push and serve put it.
	AnnotationReferrerImage = "io.github.ferry-oci.referrer.image"
	// AnnotationReferrerTag is the cosign tag-scheme tag a manifest is
	// stored under ("sha256-<hex>.sig", ".att", ".sbom"). It is not an
	// org.opencontainers.image.ref.name: ctr images import would take a
	// named entry for an image and fail to unpack a signature.
	AnnotationReferrerTag = "io.github.ferry-oci.referrer.tag"
)

// Referrer is a manifest that travels with an image without being one: an
// OCI 1.1 referrer (its subject is the image's root or platform manifest,
// or another referrer of the image) or a manifest of cosign's tag scheme.
type Referrer struct {
	// Image is the full reference of the image it travels with.
	Image string
	// Subject is the digest of the manifest it refers to.
	Subject digest.Digest
	// Tag is the cosign tag-scheme tag it is stored under
	// ("sha256-<hex>.sig", ".att", ".sbom"), or "" for an OCI 1.1 referrer.
	Tag string
	// Descriptor is its manifest's descriptor, ArtifactType included.
	Descriptor ocispec.Descriptor
}

// Referrers returns every referrer of the bundle, sorted by image,
// subject and digest.
func (r *Reader) Referrers() []Referrer { return append([]Referrer(nil), r.referrers...) }

// ReferrersOf returns the referrers that travel with the image named name
// (its full reference), sorted by subject and digest.
func (r *Reader) ReferrersOf(name string) []Referrer {
	var out []Referrer
	for _, ref := range r.referrers {
		if ref.Image == name {
			out = append(out, ref)
		}
	}
	return out
}

// referrerEdges makes referrers edges of a walk: each after its subject.
func referrerEdges(refs []Referrer) transfer.EdgesFunc {
	return func(_ context.Context, desc ocispec.Descriptor, _ []byte) ([]ocispec.Descriptor, error) {
		var out []ocispec.Descriptor
		for _, ref := range refs {
			if ref.Subject == desc.Digest {
				out = append(out, ref.Descriptor)
			}
		}
		return out, nil
	}
}

// unionReferrers keeps, of the parts of a Union, the referrers of each
// image from the part its image comes from (owner).
func unionReferrers(parts []*Reader, owner map[string]*Reader) []Referrer {
	var out []Referrer
	for _, p := range parts {
		for _, ref := range p.referrers {
			if owner[ref.Image] == p {
				out = append(out, ref)
			}
		}
	}
	sortReferrers(out)
	return out
}

// referrerOf reads a referrer from its index.json entry; ok is false for
// an entry without AnnotationReferrerSubject (an image).
func referrerOf(desc ocispec.Descriptor) (ref Referrer, ok bool, err error) {
	subject, ok := desc.Annotations[AnnotationReferrerSubject]
	if !ok {
		return Referrer{}, false, nil
	}
	ref = Referrer{Image: desc.Annotations[AnnotationReferrerImage], Subject: digest.Digest(subject), Descriptor: desc}
	if err := ref.Subject.Validate(); err != nil {
		return ref, true, fmt.Errorf("%w: index.json referrer %s: subject %q: %v", ErrInvalidBundle, desc.Digest, subject, err)
	}
	if ref.Image == "" {
		return ref, true, fmt.Errorf("%w: index.json referrer %s has no %s", ErrInvalidBundle, desc.Digest, AnnotationReferrerImage)
	}
	if tag, ok := desc.Annotations[AnnotationReferrerTag]; ok {
		if d, _, ok := manifests.ParseCosignTag(tag); !ok || d != ref.Subject {
			return ref, true, fmt.Errorf("%w: index.json referrer %s: %q is not cosign's tag for %s", ErrInvalidBundle, desc.Digest, tag, ref.Subject)
		}
		ref.Tag = tag
	}
	return ref, true, nil
}

// referrerEntry is the index.json entry of a referrer (the README's
// convention): its descriptor with the subject, image and (for a cosign
// tag-scheme manifest) tag annotations.
func referrerEntry(ref Referrer) ocispec.Descriptor {
	d := ref.Descriptor
	d.Annotations = map[string]string{
		AnnotationReferrerSubject: ref.Subject.String(),
		AnnotationReferrerImage:   ref.Image,
	}
	if ref.Tag != "" {
		d.Annotations[AnnotationReferrerTag] = ref.Tag
	}
	return d
}

// sortKey orders index.json entries and referrers: by image name, each
// image before its referrers, the referrers by subject and digest.
type sortKey struct {
	image, subject string
	digest         digest.Digest
}

func (a sortKey) less(b sortKey) bool {
	if a.image != b.image {
		return a.image < b.image
	}
	if a.subject != b.subject {
		return a.subject < b.subject
	}
	return a.digest < b.digest
}

// entryKey is the sortKey of an index.json entry.
func entryKey(d ocispec.Descriptor) sortKey {
	if img, ok := d.Annotations[AnnotationReferrerImage]; ok {
		return sortKey{img, d.Annotations[AnnotationReferrerSubject], d.Digest}
	}
	return sortKey{image: d.Annotations[AnnotationRefName]}
}

// sortIndex orders index.json entries by entryKey.
func sortIndex(entries []ocispec.Descriptor) {
	sort.SliceStable(entries, func(i, j int) bool { return entryKey(entries[i]).less(entryKey(entries[j])) })
}

// sortReferrers orders referrers by image, subject and digest.
func sortReferrers(refs []Referrer) {
	key := func(r Referrer) sortKey { return sortKey{r.Image, r.Subject.String(), r.Descriptor.Digest} }
	sort.SliceStable(refs, func(i, j int) bool { return key(refs[i]).less(key(refs[j])) })
}

// checkReferrers records referrers whose image is not in the bundle, or
// whose subject is neither a blob of their image nor another of its
// referrers.
func (g *graph) checkReferrers(refs []Referrer) {
	reach := map[string]map[digest.Digest]bool{}
	for _, img := range g.images {
		reach[img.Name] = map[digest.Digest]bool{}
		for _, d := range img.blobs {
			reach[img.Name][d] = true
		}
	}
	for _, ref := range refs {
		if set := reach[ref.Image]; set != nil {
			set[ref.Descriptor.Digest] = true
		}
	}
	for _, ref := range refs {
		var err error
		switch set := reach[ref.Image]; {
		case set == nil:
			err = fmt.Errorf("%w: referrer of %s, an image the bundle does not hold", ErrInvalidBundle, ref.Image)
		case !set[ref.Subject]:
			err = fmt.Errorf("%w: referrer of %s: its subject %s is not in the image", ErrInvalidBundle, ref.Image, ref.Subject)
		}
		if err != nil {
			d := ref.Descriptor
			g.extra = append(g.extra, Problem{Digest: d.Digest, MediaType: d.MediaType, Images: nonEmpty(ref.Image), What: err.Error(), Err: err})
		}
	}
}
