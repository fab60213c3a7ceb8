// Package manifests holds ferry's data-only types: image references, image
// lists, platforms, media types and the walk over an index/manifest graph.
// It does no network or disk I/O beyond parsing what it is given.
package manifests

import (
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker schema 2 media types, kept byte-for-byte when images are copied.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

// MaxManifestSize is the largest index or manifest ferry reads, the same
// limit distribution enforces.
const MaxManifestSize = 4 << 20

// MaxDepth bounds the levels of indexes and manifests below an image's root,
// the root included; deeper graphs are refused with ErrTooDeep. Real images
// use two or three (index, manifest; an index of indexes; a referrer of a
// manifest, a signature of that referrer), so eight leaves room, and a
// hostile chain of thousands of nested indexes stops after eight reads.
const MaxDepth = 8

// IsIndex reports whether mediaType is an OCI index or a docker manifest list.
func IsIndex(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == MediaTypeDockerManifestList
}

// IsManifest reports whether mediaType is an OCI or docker image manifest.
func IsManifest(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageManifest || mediaType == MediaTypeDockerManifest
}

// IsGraphNode reports whether a blob of mediaType references other blobs
// (an index or a manifest), so it must be read to walk the graph.
func IsGraphNode(mediaType string) bool {
	return IsIndex(mediaType) || IsManifest(mediaType)
}

// IsConfig reports whether mediaType is an image config.
func IsConfig(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageConfig || mediaType == MediaTypeDockerConfig
}

// IsSmall reports whether a blob of mediaType belongs with the small blobs
// (indexes, manifests, configs) that a bundle stores before the layers.
func IsSmall(mediaType string) bool {
	return IsGraphNode(mediaType) || IsConfig(mediaType)
}
