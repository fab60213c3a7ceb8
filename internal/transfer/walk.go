package transfer

import (
	"context"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/manifests"
)

// VisitFunc is called once per node of a walk. content holds the bytes of
// indexes and manifests, and is nil for other blobs.
type VisitFunc func(desc ocispec.Descriptor, content []byte) error

// Walk visits every node of the graph below root once, parents before
// children, reading and verifying indexes and manifests from src. sel, when
// set, filters the children of each index and manifest as in a copy.
func Walk(ctx context.Context, src Fetcher, root ocispec.Descriptor, sel SelectFunc, visit VisitFunc) error {
	seen := map[digest.Digest]bool{}
	var walk func(desc ocispec.Descriptor) error
	walk = func(desc ocispec.Descriptor) error {
		if seen[desc.Digest] {
			return nil
		}
		seen[desc.Digest] = true
		if !manifests.IsGraphNode(desc.MediaType) {
			return visit(desc, nil)
		}
		content, err := FetchAll(ctx, src, desc)
		if err != nil {
			return &CopyError{Op: "read", Origin: Source, Desc: desc, Err: err}
		}
		if err := visit(desc, content); err != nil {
			return err
		}
		children, err := manifests.Children(desc, content)
		if err != nil {
			return &CopyError{Op: "parse", Origin: Source, Desc: desc, Err: err}
		}
		if sel != nil {
			if children, err = sel(ctx, desc, children); err != nil {
				return err
			}
		}
		for _, child := range children {
			if err := walk(child); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(root)
}
