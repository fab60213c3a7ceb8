// Package build is ferry's build pipeline: it resolves the entries of an
// image list (registry references, OCI layout directories, OCI layout
// tarballs such as other bundles, docker-archive tarballs, per-arch images
// to combine), filters platforms, and writes one bundle with bundle.Write.
package build

import (
	"errors"
	"fmt"

	"github.com/ferry-oci/ferry/manifests"
)

// Sentinel errors of the build package, wrapped with the image or file.
var (
	// ErrInvalidSource means an archive or layout is corrupt, truncated or unsafe.
	ErrInvalidSource = errors.New("invalid image source")
	// ErrImageNotFound means a source has no image of the name asked.
	ErrImageNotFound = fmt.Errorf("image not found in source: %w", manifests.ErrNotFound)
	// ErrNoName means an image source gives no usable reference to name
	// the image by; the image list entry needs a name.
	ErrNoName = errors.New("the source names no image reference: give the entry a name (name: in a list, --name after its --image)")
)
