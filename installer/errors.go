// Package installer is the installer half of ferry: Push (bundle -> any
// registry), Import (bundle -> containerd), mirror configuration
// (containerd hosts.toml) and Install, the whole flow. Every step reads the
// bundle through bundle.Reader and moves bytes with the transfer engine.
package installer

import "errors"

// Sentinel errors of the installer package, wrapped with the image, blob,
// registry or socket concerned; test them with errors.Is.
var (
	// ErrAuth means a registry refused the credentials (or their absence).
	ErrAuth = errors.New("registry authentication failed")
	// ErrUnreachable means a registry or containerd could not be reached.
	ErrUnreachable = errors.New("unreachable")
	// ErrPlatformMissing means an image lacks a requested platform.
	ErrPlatformMissing = errors.New("platform not in image")
	// ErrNoImages means an image filter matched nothing in the bundle.
	ErrNoImages = errors.New("no images matched")
	// ErrImagesFailed means one or more images failed; the summary names them.
	ErrImagesFailed = errors.New("images failed")
)
