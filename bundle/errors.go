// Package bundle reads and writes ferry bundles: a plain, deterministic tar
// of an OCI image layout (oci-layout, index.json, blobs/sha256/*), with
// small blobs before layers, readable in place by digest.
package bundle

import (
	"errors"
	"fmt"

	"github.com/ferry-oci/ferry/manifests"
)

// Sentinel errors of the bundle package, wrapped with the file, image or
// digest concerned; test them with errors.Is.
var (
	// ErrNotBundle means a file is not a tar holding an OCI image layout.
	ErrNotBundle = errors.New("not an OCI layout tarball")
	// ErrDockerArchive means a file is a docker-archive (`docker save`
	// output), which ferry build turns into a bundle; it is an ErrNotBundle.
	ErrDockerArchive = fmt.Errorf("%w: a docker-archive (docker save output)", ErrNotBundle)
	// ErrLayoutDir means a path is an OCI image layout directory, which
	// ferry build turns into a bundle; it is an ErrNotBundle.
	ErrLayoutDir = fmt.Errorf("%w: an OCI image layout directory", ErrNotBundle)
	// ErrTempSpace means a bundle that must be copied to be read
	// (compressed, or from a pipe) does not fit in the temporary directory.
	ErrTempSpace = errors.New("not enough space for the temporary copy")
	// ErrInvalidBundle means a bundle's tar or layout is malformed or unsafe.
	ErrInvalidBundle = errors.New("invalid bundle")
	// ErrBlobNotFound means a digest is not in the bundle; it is also a
	// manifests.ErrNotFound.
	ErrBlobNotFound = fmt.Errorf("blob not in bundle: %w", manifests.ErrNotFound)
	// ErrUnplannedBlob means a Writer was given a blob it was not created for.
	ErrUnplannedBlob = errors.New("blob not planned for this bundle")
	// ErrIncomplete means a Writer was committed before every planned blob was written.
	ErrIncomplete = errors.New("bundle incomplete")
	// ErrImageNotFound means no image of that name is in the bundle.
	ErrImageNotFound = fmt.Errorf("image not in bundle: %w", manifests.ErrNotFound)
	// ErrVerifyFailed means Verify found bad or missing blobs.
	ErrVerifyFailed = errors.New("bundle verification failed")
	// ErrLoneDelta means a delta bundle was given without its bases, where
	// every blob of its images is needed.
	ErrLoneDelta = errors.New("a delta bundle needs its base")
	// ErrBaseMismatch means a delta was given with bundles that are not
	// the bases it records, or after them.
	ErrBaseMismatch = errors.New("not the delta's base")
	// ErrIncompleteBase means a delta's bases lack blobs the delta borrows.
	ErrIncompleteBase = errors.New("base incomplete for the delta")
	// ErrBaseAbsent means the target of a push or import of a delta lacks
	// blobs the delta borrows: its base must go there first.
	ErrBaseAbsent = errors.New("the target lacks the delta's base")
	// ErrNotDelta means a full bundle was given where a delta is needed.
	ErrNotDelta = errors.New("not a delta bundle")
)
