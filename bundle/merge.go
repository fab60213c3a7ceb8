package bundle

import (
	"context"
	"fmt"
)

// Merge writes at path the full bundle of the images of delta, reading
// their blobs from delta and from base (one bundle, or a Union of several,
// which must hold every base delta records, ahead of it). The result is
// byte-identical to a full build of the same images (and referrers) with
// the delta's entry time: same index.json without AnnotationBases, same
// blobs, same order. opts.ModTime and opts.Base are ignored.
func Merge(ctx context.Context, path string, base, delta *Reader, opts WriteOptions) (*WriteResult, error) {
	if len(delta.bases) == 0 {
		return nil, fmt.Errorf("merge %s: %w: it records no base (AnnotationBases on index.json)", delta.Name(), ErrNotDelta)
	}
	both, err := Union(ctx, base, delta)
	if err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	sources := make([]Source, 0, len(delta.images))
	for _, img := range delta.images {
		sources = append(sources, Source{Name: img.Name, Root: img.Descriptor, Fetcher: both, Referrers: delta.ReferrersOf(img.Name)})
	}
	opts.ModTime, opts.Base = delta.modTime, nil
	res, err := Write(ctx, path, sources, opts)
	if err != nil {
		return nil, fmt.Errorf("merge %s: %w", delta.Name(), err)
	}
	return res, nil
}
