package containerd

import (
	"context"
	"fmt"

	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/bundle"
)

// checkBase refuses the import of a delta (before anything is written)
// when containerd lacks blobs it borrows: those of the selected images and
// platforms, found by the walk a copy makes.
func (p *importPlan) checkBase(ctx context.Context, r *bundle.Reader, store content.Store, selected []bundle.Image) error {
	if len(r.Bases()) == 0 {
		return nil
	}
	seen := map[digest.Digest]bool{}
	missing := 0
	for _, img := range selected {
		err := r.WalkBorrowed(ctx, r, img.Descriptor, p.selectFunc, func(desc ocispec.Descriptor) error {
			if seen[desc.Digest] {
				return nil
			}
			seen[desc.Digest] = true
			_, err := store.Info(ctx, desc.Digest)
			if errdefs.IsNotFound(err) {
				missing++
				return nil
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("image %s: %w", img.Name, err)
		}
	}
	if missing > 0 {
		return r.BaseAbsentError("import", fmt.Sprintf("containerd at %s (namespace %s)", p.Address, p.Namespace), missing, len(seen))
	}
	return nil
}
