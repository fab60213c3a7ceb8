package manifests

import (
	"errors"
	"fmt"
)

// The one sentinel set of ferry (errdef style, like containerd's errdefs
// and oras-go's errdef). Every package wraps these with the reference,
// digest, file or flag concerned instead of defining its own; callers test
// them with errors.Is, and the CLI maps them to exit codes in one place.
var (
	// ErrInvalidArgument means a call was given a malformed option, flag or
	// value: a usage error (exit code 2).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotFound means a blob, image or file is not where it was asked for.
	ErrNotFound = errors.New("not found")
	// ErrDigestMismatch means a blob's bytes do not hash to its digest.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrSizeMismatch means a blob has more or fewer bytes than its descriptor says.
	ErrSizeMismatch = errors.New("size mismatch")
	// ErrUnauthorized means a registry refused the credentials (or their absence).
	ErrUnauthorized = errors.New("registry authentication failed")
	// ErrUnreachable means a registry or containerd could not be reached.
	ErrUnreachable = errors.New("unreachable")
	// ErrTLSTrust means a registry's TLS certificate could not be verified.
	ErrTLSTrust = errors.New("registry certificate not trusted")
	// ErrPlainHTTP means a registry speaks plain HTTP and --plain-http was not given.
	ErrPlainHTTP = errors.New("registry speaks plain HTTP")
	// ErrMediaTypeRejected means a registry refused a manifest's media type.
	ErrMediaTypeRejected = errors.New("registry rejected the media type")
	// ErrNoImages means an image filter matched nothing.
	ErrNoImages = errors.New("no images matched")
	// ErrAlreadyExists means a tag already points at other content (push
	// --on-existing-tag=fail).
	ErrAlreadyExists = errors.New("already exists")
	// ErrImagesFailed means one or more images failed; the summary names them.
	ErrImagesFailed = errors.New("images failed")

	// ErrInvalidReference means an image reference could not be parsed.
	ErrInvalidReference = errors.New("invalid image reference")
	// ErrInvalidManifest means an index or manifest is not valid JSON of its media type.
	ErrInvalidManifest = errors.New("invalid manifest")
	// ErrTooDeep means indexes nest deeper than MaxDepth.
	ErrTooDeep = fmt.Errorf("indexes nested deeper than %d levels", MaxDepth)
	// ErrManifestTooLarge means an index or manifest is over MaxManifestSize.
	ErrManifestTooLarge = fmt.Errorf("manifest larger than 4 MiB: %w", ErrTooLarge)
	// ErrTooLarge means a file or blob read whole (ReadAtMost) is over its limit.
	ErrTooLarge = errors.New("too large")
	// ErrInvalidPlatform means a platform string is not os/arch[/variant].
	ErrInvalidPlatform = errors.New("invalid platform")
	// ErrPlatformMissing means an image lacks a requested platform.
	ErrPlatformMissing = errors.New("platform not in image")
	// ErrPlatformMismatch means an image's config disagrees with the platform it is combined as.
	ErrPlatformMismatch = errors.New("platform does not match image config")
	// ErrInvalidImageList means an image list file is malformed.
	ErrInvalidImageList = errors.New("invalid image list")
)
