package transfer

import (
	"errors"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Sentinel errors of the transfer package, wrapped with the digest concerned.
var (
	// ErrDigestMismatch means a blob's bytes do not hash to its digest.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrSizeMismatch means a blob has more or fewer bytes than its descriptor says.
	ErrSizeMismatch = errors.New("size mismatch")
	// ErrNotFound means a blob is not in the store asked.
	ErrNotFound = errors.New("not found")
	// ErrMounted is returned by a Pusher that stored a blob without
	// reading its content (a registry's cross-repository mount); the copy
	// counts it as mounted.
	ErrMounted = errors.New("mounted instead of sent")
)

// Origin says which end of a copy failed.
type Origin string

// The two ends of a copy.
const (
	Source      Origin = "source"
	Destination Origin = "destination"
)

// CopyError is a failure to copy one blob: which operation, at which end,
// on which descriptor.
type CopyError struct {
	Op     string
	Origin Origin
	Desc   ocispec.Descriptor
	Err    error
}

func (e *CopyError) Error() string {
	return fmt.Sprintf("%s %s %s (%s): %v", e.Origin, e.Op, e.Desc.Digest, e.Desc.MediaType, e.Err)
}

func (e *CopyError) Unwrap() error { return e.Err }
