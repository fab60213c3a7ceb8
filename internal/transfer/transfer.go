// Package transfer is ferry's one copy engine. Build, push and import all
// walk an image graph (index -> manifests -> config + layers) from a source
// and write every node the destination lacks, children before parents,
// shared blobs once, with bounded concurrency and digest checks. Only the
// ends differ: a registry, a bundle, or containerd's content store.
//
// The roles follow oras-go's content package: a Fetcher reads blobs, a Target
// takes them. Optional abilities (Mounter) are found by type assertion.
package transfer

import (
	"context"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Fetcher reads a blob by descriptor. The caller closes the reader.
type Fetcher interface {
	Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error)
}

// Pusher stores a blob whose bytes content yields. content returns an error
// instead of io.EOF when the bytes do not match desc, so a Pusher that copies
// to EOF before committing never commits bad content. A Pusher that stored
// the blob without reading content (a mount) returns ErrMounted.
type Pusher interface {
	Push(ctx context.Context, desc ocispec.Descriptor, content io.Reader) error
}

// Exister reports whether a blob is already stored.
type Exister interface {
	Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error)
}

// Target is the destination of a copy.
type Target interface {
	Pusher
	Exister
}

// Mounter is implemented by targets that can store a blob without its bytes
// being sent (a registry's cross-repository mount). Mount reports whether it did.
type Mounter interface {
	Mount(ctx context.Context, desc ocispec.Descriptor) (bool, error)
}

// Status says what the copy did with one blob.
type Status int

const (
	// Copied means the blob's bytes were sent to the target.
	Copied Status = iota
	// Skipped means the target already had the blob.
	Skipped
	// Mounted means the target took the blob without its bytes being sent.
	Mounted
)

func (s Status) String() string {
	switch s {
	case Copied:
		return "copied"
	case Skipped:
		return "skipped"
	case Mounted:
		return "mounted"
	}
	return "unknown"
}

// Observer follows a copy blob by blob, for progress bars and logs. Its
// methods are called from many goroutines at once.
type Observer interface {
	// Started is called before a blob's bytes are sent.
	Started(desc ocispec.Descriptor)
	// Transferred is called as n more bytes of the blob have been sent.
	Transferred(desc ocispec.Descriptor, n int64)
	// Done is called once per blob when it is stored, skipped or mounted.
	Done(desc ocispec.Descriptor, status Status)
}

// SelectFunc chooses which children of an index or manifest to copy.
type SelectFunc func(ctx context.Context, parent ocispec.Descriptor, children []ocispec.Descriptor) ([]ocispec.Descriptor, error)

// Options tune a copy. The zero value copies everything with DefaultJobs.
type Options struct {
	// Jobs bounds how many blobs move at once; 0 means DefaultJobs (see CheckJobs).
	Jobs int
	// Select, when set, filters the children of every index and manifest
	// (platform selection). The parent is still written as it is.
	Select SelectFunc
	// TrustExistingManifests skips the whole subgraph of an index or
	// manifest the target already has. Right for registries, which refuse a
	// manifest whose references are missing; wrong for a content store that
	// may hold a manifest without all of its blobs.
	TrustExistingManifests bool
	// Observer, when set, is told about every blob.
	Observer Observer
	// Predecessors, when set, returns the manifests that refer to an
	// index or manifest (its referrers: signatures, SBOMs, ...). Each is
	// copied with its graph once the node is in the target, and theirs
	// after them, as oras-go's ExtendedCopy does.
	Predecessors PredecessorsFunc
}

// PredecessorsFunc returns the referrers of desc to copy after it.
type PredecessorsFunc func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error)

// Stats counts what a copy did.
type Stats struct {
	Copied, Skipped, Mounted int
	// BytesCopied is the number of blob bytes sent to the target.
	BytesCopied int64
	// BytesSkipped is the size of the blobs the target already had or mounted.
	BytesSkipped int64
}
