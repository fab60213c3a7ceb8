package build

import (
	"context"
	"errors"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/internal/remote"
	"github.com/ferry-oci/ferry/manifests"
)

// registrySource is a registry repository as a build source: the one
// registry client's Repository (a transfer.Fetcher that lists referrers)
// with the referrerFinder's Tag.
type registrySource struct {
	*remote.Repository
}

// openRegistry resolves a registry reference to its image.
func (r *resolver) openRegistry(ctx context.Context, ref string) (ocispec.Descriptor, registrySource, error) {
	root, repo, err := r.registries.Resolve(ctx, ref)
	if errors.Is(err, manifests.ErrNotFound) {
		return root, registrySource{}, fmt.Errorf("%w: %w", ErrImageNotFound, err)
	}
	return root, registrySource{repo}, err
}

// Tag resolves a tag of the repository; ok is false when the registry has
// no such tag.
func (s registrySource) Tag(ctx context.Context, tag string) (ocispec.Descriptor, bool, error) {
	desc, err := s.ResolveTag(ctx, tag)
	if errors.Is(err, manifests.ErrNotFound) {
		return ocispec.Descriptor{}, false, nil
	}
	return desc, err == nil, err
}
