// Package containerd imports bundles into containerd: blobs into the content
// store under one lease, image records, unpacking into a snapshotter, and
// the node's platform. Errors wrap the sentinels of package manifests.
package containerd

import "errors"

var (
	// ErrSnapshotterUnavailable means containerd has no working snapshotter of that name.
	ErrSnapshotterUnavailable = errors.New("snapshotter not available")
	// ErrVersion means `containerd --version` could not be run or read.
	ErrVersion = errors.New("cannot tell containerd's version")
)
