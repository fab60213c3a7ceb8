package bundle

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// Source is one image to write into a bundle: the name it gets and where
// its graph is read from.
type Source struct {
	// Name is the full normalized reference the image gets in index.json.
	Name string
	// Root is the image's index or manifest.
	Root ocispec.Descriptor
	// Fetcher reads the image's blobs, its referrers' included.
	Fetcher transfer.Fetcher
	// Referrers travel with the image (Image is set to Name); each is
	// written after the image, referrers of referrers after their subjects.
	Referrers []Referrer
}

// WriteOptions tune Write. The zero value works.
type WriteOptions struct {
	// Jobs bounds the blobs in flight; 0 means transfer.DefaultJobs.
	Jobs int
	// ModTime is every tar entry's time; the zero value means the Unix epoch.
	ModTime time.Time
	// Observer, when set, follows every blob.
	Observer transfer.Observer
	// Base, when set, makes a delta of it (one bundle, or a Union of
	// several): the bundle holds every index, manifest and config, but
	// only the other blobs that Base lacks, which are never fetched, and
	// records Base's bundles in index.json (AnnotationBases).
	Base *Reader
}

// WriteResult says what Write wrote.
type WriteResult struct {
	Images int
	// Blobs and Bytes count the unique blobs in the bundle.
	Blobs int
	Bytes int64
	// SharedBytes is what deduplication saved: the bytes images share.
	SharedBytes int64
	// BorrowedBlobs and BorrowedBytes count the blobs a delta leaves to
	// its base.
	BorrowedBlobs int
	BorrowedBytes int64
}

// Write writes images into a new bundle at path, atomically. It first
// learns every graph (reading only indexes and manifests, kept in memory),
// then plans the tar and streams every blob to its place, shared blobs
// once. On any error or cancellation no file is left at path.
func Write(ctx context.Context, path string, images []Source, opts WriteOptions) (*WriteResult, error) {
	if err := transfer.CheckJobs(opts.Jobs); err != nil {
		return nil, err
	}
	if opts.Base != nil {
		if err := opts.Base.CheckComplete(); err != nil {
			return nil, fmt.Errorf("base: %w", err)
		}
	}
	plan, err := planImages(ctx, images, opts.Jobs, opts.Base)
	if err != nil {
		return nil, err
	}
	var wopts []WriterOption
	if !opts.ModTime.IsZero() {
		wopts = append(wopts, WithModTime(opts.ModTime))
	}
	w, err := Create(path, plan.index, plan.blobs, wopts...)
	if err != nil {
		return nil, err
	}
	defer w.Abort()
	copier := transfer.NewCopier(deltaTarget{w, plan.borrowed}, transfer.Options{Jobs: opts.Jobs, Observer: opts.Observer})
	g, gctx := errgroup.WithContext(ctx)
	for _, img := range images {
		g.Go(func() error {
			src := transfer.Overlay{plan.graphs, img.Fetcher}
			if err := copier.Copy(gctx, src, img.Root); err != nil {
				return fmt.Errorf("image %s: %w", img.Name, err)
			}
			for _, ref := range img.Referrers {
				if err := copier.Copy(gctx, src, ref.Descriptor); err != nil {
					return fmt.Errorf("image %s: referrer %s: %w", img.Name, ref.Descriptor.Digest, err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := w.Commit(); err != nil {
		return nil, err
	}
	return &WriteResult{
		Images: len(plan.index.Manifests), Blobs: len(plan.blobs), Bytes: plan.bytes, SharedBytes: plan.sharedBytes,
		BorrowedBlobs: len(plan.borrowed), BorrowedBytes: plan.borrowedBytes,
	}, nil
}

// deltaTarget is a bundle Writer that reports the blobs a delta borrows
// from its base as present, so the copy engine never fetches them.
type deltaTarget struct {
	*Writer
	borrowed map[digest.Digest]bool
}

// Exists implements transfer.Exister.
func (t deltaTarget) Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	if t.borrowed[desc.Digest] {
		return true, nil
	}
	return t.Writer.Exists(ctx, desc)
}

// plan is what a bundle will hold, learned before writing.
type plan struct {
	index       ocispec.Index
	blobs       []ocispec.Descriptor
	graphs      *transfer.Memory // indexes and manifests already read
	bytes       int64
	sharedBytes int64
	// borrowed are the blobs a delta leaves to its base.
	borrowed      map[digest.Digest]bool
	borrowedBytes int64
}

func planImages(ctx context.Context, images []Source, jobs int, base *Reader) (*plan, error) {
	p := &plan{graphs: transfer.NewMemory(), borrowed: map[digest.Digest]bool{}}
	var mu sync.Mutex
	blobs := map[digest.Digest]ocispec.Descriptor{}
	names := map[string]digest.Digest{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(transfer.Jobs(jobs))
	for _, img := range images {
		if prev, dup := names[img.Name]; dup {
			if prev != img.Root.Digest {
				return nil, fmt.Errorf("image %s: %w: named twice with different content (%s and %s)", img.Name, ErrInvalidBundle, prev, img.Root.Digest)
			}
			continue
		}
		names[img.Name] = img.Root.Digest
		root := img.Root
		root.Annotations = map[string]string{AnnotationContainerdName: img.Name, AnnotationRefName: img.Name}
		p.index.Manifests = append(p.index.Manifests, root)
		for _, ref := range img.Referrers {
			ref.Image = img.Name
			p.index.Manifests = append(p.index.Manifests, referrerEntry(ref))
		}
		w := &transfer.Walker{Src: img.Fetcher, Edges: referrerEdges(img.Referrers)}
		g.Go(func() error {
			visit := func(desc ocispec.Descriptor, content []byte) error {
				mu.Lock()
				defer mu.Unlock()
				if content != nil {
					p.graphs.Add(desc.MediaType, content)
				}
				if _, ok := blobs[desc.Digest]; ok {
					p.sharedBytes += desc.Size
					return nil
				}
				blobs[desc.Digest] = ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}
				if base != nil && !manifests.IsSmall(desc.MediaType) && anyHolds([]*Reader{base}, desc) {
					p.borrowed[desc.Digest] = true
					p.borrowedBytes += desc.Size
					return nil
				}
				p.bytes += desc.Size
				return nil
			}
			if err := w.Walk(gctx, img.Root, visit); err != nil {
				return fmt.Errorf("image %s: %w", img.Name, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sortIndex(p.index.Manifests)
	for d, desc := range blobs {
		if !p.borrowed[d] {
			p.blobs = append(p.blobs, desc)
		}
	}
	if base != nil {
		p.index.Annotations = map[string]string{AnnotationBases: joinDigests(base.bundleDigests())}
	}
	return p, nil
}
