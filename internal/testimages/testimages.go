// Package testimages builds real, small, multi-arch container images for
// ferry's tests with internal/sampleimages: a busybox layer (from the
// busybox-static package) plus random layers, as OCI or Docker schema2
// images and indexes, and pushes them to a testenv registry. Each builder
// fails the test on error.
//
// Images for every platform carry the machine's (amd64) busybox: they are for
// graph tests, not for running on other architectures.
package testimages

import (
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ferry-oci/ferry/internal/sampleimages"
)

// BusyboxPath is where Debian's busybox-static installs the static busybox.
const BusyboxPath = sampleimages.BusyboxPath

// Option configures Image, Index and BusyboxLayer.
type Option = sampleimages.Option

// WithRandomLayers adds n random layers of about size bytes each (uncompressed,
// random content) on top of the busybox layer. Each image gets its own.
func WithRandomLayers(n int, size int64) Option { return sampleimages.WithRandomLayers(n, size) }

// WithSharedBase adds the given layers right above the busybox layer (below
// any random layers). Images made with the same layers share those blobs, as
// images built FROM one base do. It may be given more than once.
func WithSharedBase(layers ...v1.Layer) Option { return sampleimages.WithSharedBase(layers...) }

// Docker makes Docker schema2 images (and a Docker manifest list for Index)
// instead of OCI ones.
func Docker() Option { return sampleimages.Docker() }

// BusyboxLayer returns a gzip layer with /bin/busybox (from busybox-static)
// and /bin/sh, /bin/echo, /bin/cat, /bin/ls symlinked to it. Its bytes are
// the same on every call, so images built on it share the blob. The media
// type is OCI, or Docker with Docker().
func BusyboxLayer(t testing.TB, opts ...Option) v1.Layer {
	t.Helper()
	l, err := sampleimages.BusyboxLayer(opts...)
	if err != nil {
		t.Fatalf("testimages: %v", err)
	}
	return l
}

// Image builds an image for platform ("linux/amd64", "linux/arm64/v8",
// "linux/arm/v7", ...): OCI media types (Docker schema2 with Docker()), a
// config with os, architecture and variant from platform and Cmd
// ["/bin/sh"], the busybox layer, any WithSharedBase layers, then any
// WithRandomLayers layers.
func Image(t testing.TB, platform string, opts ...Option) v1.Image {
	t.Helper()
	img, err := sampleimages.Image(platform, opts...)
	if err != nil {
		t.Fatalf("testimages: %v", err)
	}
	return img
}

// Index builds an OCI image index (a Docker manifest list with Docker()) with
// one Image per platform, each entry's Platform set. Options apply to every
// image.
func Index(t testing.TB, platforms []string, opts ...Option) v1.ImageIndex {
	t.Helper()
	idx, err := sampleimages.Index(platforms, opts...)
	if err != nil {
		t.Fatalf("testimages: %v", err)
	}
	return idx
}
