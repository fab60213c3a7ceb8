package build

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Referrers lists the manifests of the repository whose subject is
// subject: from the registry's referrers API, or from the referrers tag
// schema index (tag sha256-<hex>) where the API is missing.
func (r *Repository) Referrers(ctx context.Context, subject digest.Digest) ([]ocispec.Descriptor, error) {
	ref := r.repo.Digest(subject.String())
	idx, err := remote.Referrers(ref, remote.Reuse(r.puller), remote.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("referrers of %s: %w", ref, classify(err))
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("referrers of %s: %w", ref, err)
	}
	out := make([]ocispec.Descriptor, 0, len(im.Manifests))
	for _, m := range im.Manifests {
		out = append(out, ocispec.Descriptor{
			MediaType: string(m.MediaType), Digest: digest.Digest(m.Digest.String()), Size: m.Size,
			ArtifactType: m.ArtifactType, Annotations: m.Annotations,
		})
	}
	return out, nil
}

// Tag resolves a tag of the repository; ok is false when the registry has
// no such tag.
func (r *Repository) Tag(ctx context.Context, tag string) (ocispec.Descriptor, bool, error) {
	ref := r.repo.Tag(tag)
	d, err := r.puller.Head(ctx, ref)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return ocispec.Descriptor{}, false, nil
	}
	if err != nil {
		return ocispec.Descriptor{}, false, fmt.Errorf("%s: %w", ref, classify(err))
	}
	return ocispec.Descriptor{MediaType: string(d.MediaType), Digest: digest.Digest(d.Digest.String()), Size: d.Size}, true, nil
}
