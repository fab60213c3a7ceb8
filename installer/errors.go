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
	// ErrTLSTrust means a registry's TLS certificate could not be verified.
	ErrTLSTrust = errors.New("registry certificate not trusted")
	// ErrPlainHTTP means a registry speaks plain HTTP and --plain-http was not given.
	ErrPlainHTTP = errors.New("registry speaks plain HTTP")
	// ErrMediaTypeRejected means a registry refused a manifest's media type.
	ErrMediaTypeRejected = errors.New("registry rejected the media type")
	// ErrInvalidOptions means the options of a call are malformed (a usage error).
	ErrInvalidOptions = errors.New("invalid options")
	// ErrSnapshotterUnavailable means containerd has no working snapshotter of that name.
	ErrSnapshotterUnavailable = errors.New("snapshotter not available")
	// ErrStepsFailed means one or more steps of an install failed.
	ErrStepsFailed = errors.New("install steps failed")
)
