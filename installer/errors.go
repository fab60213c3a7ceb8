// Package installer is the installer half of ferry: Push (bundle -> any
// registry), mirror configuration (containerd hosts.toml) and Install, the
// whole flow composed with installer/containerd's Import. Every step reads
// the bundle through bundle.Reader and moves bytes with the transfer engine;
// errors wrap the sentinels of package manifests.
package installer

import "errors"

// ErrStepsFailed means one or more steps of an install failed.
var ErrStepsFailed = errors.New("install steps failed")
