package bundle

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/internal/tarindex"
	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// Reader reads a bundle in place. Opening it scans the tar headers once
// (O(entries), not O(bytes)); every blob is then read through an
// io.SectionReader of the file. It is the one way ferry reads a bundle:
// the registry, push and import all take a Reader.
//
// Reader also reads OCI layout tarballs that other tools wrote (skopeo's
// oci-archive, ctr export), in any entry order.
type Reader struct {
	closers []func() error
	blobs   map[digest.Digest]entry
	index   ocispec.Index
	images  []Image
	identity
	// referrers are the index.json entries that travel with an image
	// without being one (referrers.go).
	referrers []Referrer
}

// entry is where a blob's bytes lie: in which tar, and where in it.
type entry struct {
	ra           io.ReaderAt
	offset, size int64
}

// Image is one image of a bundle: its name and its root descriptor.
type Image struct {
	// Name is the full normalized reference, or the layout's own name
	// when it is not a reference.
	Name       string
	Descriptor ocispec.Descriptor
}

// ImageName is an image's name, for manifests.SelectImages.
func ImageName(img Image) string { return img.Name }

// NewReader reads a bundle of size bytes from ra.
func NewReader(ra io.ReaderAt, size int64) (*Reader, error) {
	idx, err := tarindex.Scan(ra, size)
	if errors.Is(err, tarindex.ErrNotTar) {
		return nil, fmt.Errorf("%w: %w", ErrNotBundle, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidBundle, err)
	}
	if _, ok := idx[layoutFile]; !ok && idx["manifest.json"].Type != 0 {
		return nil, ErrDockerArchive
	}
	r := &Reader{blobs: map[digest.Digest]entry{}}
	for name, e := range idx {
		if e.Type != tar.TypeReg {
			return nil, fmt.Errorf("%w: %q is not a regular file (links are not allowed)", ErrInvalidBundle, name)
		}
		if !strings.HasPrefix(name, blobsDir+"/") {
			continue
		}
		d, err := blobDigest(name)
		if err != nil {
			return nil, err
		}
		if _, dup := r.blobs[d]; dup {
			return nil, fmt.Errorf("%w: %q appears twice", ErrInvalidBundle, name)
		}
		r.blobs[d] = entry{ra: ra, offset: e.Offset, size: e.Size}
	}
	layoutEntry, hasLayout := idx[layoutFile]
	indexEntry, hasIndex := idx[indexFile]
	if !hasLayout || !hasIndex {
		return nil, fmt.Errorf("%w: no oci-layout or index.json", ErrNotBundle)
	}
	if err := r.readLayout(entry{ra: ra, offset: layoutEntry.Offset, size: layoutEntry.Size}); err != nil {
		return nil, err
	}
	if err := r.readIndex(entry{ra: ra, offset: indexEntry.Offset, size: indexEntry.Size}); err != nil {
		return nil, err
	}
	r.modTime = indexEntry.ModTime
	return r, nil
}

func blobDigest(name string) (digest.Digest, error) {
	parts := strings.Split(name, "/")
	if len(parts) != 3 {
		return "", fmt.Errorf("%w: unexpected blob path %q", ErrInvalidBundle, name)
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(parts[1]), parts[2])
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("%w: blob path %q: %v", ErrInvalidBundle, name, err)
	}
	return d, nil
}

func (r *Reader) readSmall(e entry, what string) ([]byte, error) {
	if e.size > manifests.MaxManifestSize {
		return nil, fmt.Errorf("%w: %s is %d bytes, over 4 MiB", ErrInvalidBundle, what, e.size)
	}
	b := make([]byte, e.size)
	if _, err := e.ra.ReadAt(b, e.offset); err != nil && !(err == io.EOF && len(b) == 0) {
		return nil, fmt.Errorf("%w: read %s: %v", ErrInvalidBundle, what, err)
	}
	return b, nil
}

func (r *Reader) readLayout(e entry) error {
	b, err := r.readSmall(e, layoutFile)
	if err != nil {
		return err
	}
	var l ocispec.ImageLayout
	if err := json.Unmarshal(b, &l); err != nil || l.Version == "" {
		return fmt.Errorf("%w: oci-layout is not {\"imageLayoutVersion\": ...}", ErrNotBundle)
	}
	return nil
}

func (r *Reader) readIndex(e entry) error {
	b, err := r.readSmall(e, indexFile)
	if err != nil {
		return err
	}
	idx, err := manifests.ParseIndex(b)
	if err != nil {
		return fmt.Errorf("%w: index.json: %v", ErrInvalidBundle, err)
	}
	r.index = idx
	if err := r.readDelta(b); err != nil {
		return err
	}
	for _, d := range idx.Manifests {
		ref, isReferrer, err := referrerOf(d)
		if err != nil {
			return err
		}
		if isReferrer {
			r.referrers = append(r.referrers, ref)
			continue
		}
		name := d.Annotations[AnnotationContainerdName]
		if name == "" {
			name = d.Annotations[AnnotationRefName]
		}
		r.images = append(r.images, Image{Name: name, Descriptor: d})
	}
	sort.SliceStable(r.images, func(i, j int) bool { return r.images[i].Name < r.images[j].Name })
	sortReferrers(r.referrers)
	return nil
}

// Close releases the file.
func (r *Reader) Close() error {
	var errs []error
	for _, c := range r.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// Index returns the bundle's index.json.
func (r *Reader) Index() ocispec.Index { return r.index }

// Images returns the bundle's images, sorted by name.
func (r *Reader) Images() []Image { return append([]Image(nil), r.images...) }

// Image returns the image named name (a full or short reference).
func (r *Reader) Image(name string) (Image, error) {
	full, _ := manifests.NormalizeReference(name)
	for _, img := range r.images {
		if img.Name == name || (full != "" && img.Name == full) {
			return img, nil
		}
	}
	return Image{}, fmt.Errorf("%s: %w", name, ErrImageNotFound)
}

// Digests returns every blob digest in the bundle, sorted.
func (r *Reader) Digests() []digest.Digest {
	out := make([]digest.Digest, 0, len(r.blobs))
	for d := range r.blobs {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Size returns a blob's size and whether the bundle has it.
func (r *Reader) Size(d digest.Digest) (int64, bool) {
	e, ok := r.blobs[d]
	return e.size, ok
}

// Blob returns a reader of a blob's raw bytes in the tar. It does not
// verify them; Fetch's callers and the registry's do.
func (r *Reader) Blob(d digest.Digest) (*io.SectionReader, error) {
	e, ok := r.blobs[d]
	if !ok {
		return nil, fmt.Errorf("%s: %w", d, ErrBlobNotFound)
	}
	return io.NewSectionReader(e.ra, e.offset, e.size), nil
}

// Fetch implements transfer.Fetcher. The bytes are not verified here; the
// copy engine verifies every blob it moves.
func (r *Reader) Fetch(_ context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	sr, err := r.Blob(desc.Digest)
	if err != nil {
		return nil, err
	}
	if sr.Size() != desc.Size {
		return nil, fmt.Errorf("%s: %w: bundle has %d bytes, descriptor says %d", desc.Digest, manifests.ErrSizeMismatch, sr.Size(), desc.Size)
	}
	return io.NopCloser(sr), nil
}

// Exists implements transfer.Exister.
func (r *Reader) Exists(_ context.Context, desc ocispec.Descriptor) (bool, error) {
	_, ok := r.blobs[desc.Digest]
	return ok, nil
}

// ReadAll reads and verifies a small blob (index, manifest, config).
func (r *Reader) ReadAll(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
	return transfer.FetchAll(ctx, r, desc)
}
