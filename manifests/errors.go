package manifests

import "errors"

// Sentinel errors of the manifests package. They are wrapped with the
// reference, digest or file they concern; test them with errors.Is.
var (
	// ErrInvalidReference means an image reference could not be parsed.
	ErrInvalidReference = errors.New("invalid image reference")
	// ErrInvalidManifest means an index or manifest is not valid JSON of its media type.
	ErrInvalidManifest = errors.New("invalid manifest")
	// ErrManifestTooLarge means an index or manifest is over MaxManifestSize.
	ErrManifestTooLarge = errors.New("manifest larger than 4 MiB")
	// ErrInvalidPlatform means a platform string is not os/arch[/variant].
	ErrInvalidPlatform = errors.New("invalid platform")
	// ErrPlatformMissing means an image lacks a requested platform.
	ErrPlatformMissing = errors.New("platform not in image")
	// ErrPlatformMismatch means an image's config disagrees with the platform it is combined as.
	ErrPlatformMismatch = errors.New("platform does not match image config")
	// ErrInvalidImageList means an image list file is malformed.
	ErrInvalidImageList = errors.New("invalid image list")
)
