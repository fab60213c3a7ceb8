// Package source resolves the entries of an image list to image graphs that
// the copy engine can read: registry references, OCI layout directories,
// OCI layout tarballs (other bundles) and docker-archive tarballs.
package source

import "errors"

// Sentinel errors of the source package, wrapped with the image or file.
var (
	// ErrInvalidSource means an archive or layout is corrupt, truncated or unsafe.
	ErrInvalidSource = errors.New("invalid image source")
	// ErrUnauthorized means a registry refused access without valid credentials.
	ErrUnauthorized = errors.New("registry refused access")
	// ErrImageNotFound means a source has no image of the name asked.
	ErrImageNotFound = errors.New("image not found in source")
)
