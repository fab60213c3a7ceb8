// Package containerd imports bundles into containerd: blobs into the content
// store under one lease, image records, unpacking into a snapshotter, and
// the node's platform. Errors wrap the sentinels of package manifests.
package containerd

import "errors"

// ErrSnapshotterUnavailable means containerd has no working snapshotter of that name.
var ErrSnapshotterUnavailable = errors.New("snapshotter not available")
