package transfer

import (
	"errors"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrMounted is returned by a Pusher that stored a blob without reading
// its content (a registry's cross-repository mount); the copy counts it as
// mounted. It is a signal between the engine and its ends, not a failure;
// failures wrap the sentinels of package manifests (ErrNotFound,
// ErrDigestMismatch, ErrSizeMismatch, ...).
var ErrMounted = errors.New("mounted instead of sent")

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
