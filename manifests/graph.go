package manifests

import (
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Children returns the descriptors that the index or manifest content of
// desc references: an index's manifests, or a manifest's config and layers.
// Other media types have no children.
func Children(desc ocispec.Descriptor, content []byte) ([]ocispec.Descriptor, error) {
	switch {
	case IsIndex(desc.MediaType):
		idx, err := ParseIndex(content)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", desc.Digest, err)
		}
		return idx.Manifests, nil
	case IsManifest(desc.MediaType):
		m, err := ParseManifest(content)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", desc.Digest, err)
		}
		return append([]ocispec.Descriptor{m.Config}, m.Layers...), nil
	}
	return nil, nil
}

// ParseIndex decodes an OCI index or docker manifest list.
func ParseIndex(content []byte) (ocispec.Index, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(content, &idx); err != nil {
		return idx, fmt.Errorf("%w: %v", ErrInvalidManifest, err)
	}
	for _, m := range idx.Manifests {
		if err := m.Digest.Validate(); err != nil {
			return idx, fmt.Errorf("%w: index entry digest %q: %v", ErrInvalidManifest, m.Digest, err)
		}
	}
	return idx, nil
}

// ParseManifest decodes an OCI or docker schema 2 image manifest.
func ParseManifest(content []byte) (ocispec.Manifest, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(content, &m); err != nil {
		return m, fmt.Errorf("%w: %v", ErrInvalidManifest, err)
	}
	if err := m.Config.Digest.Validate(); err != nil {
		return m, fmt.Errorf("%w: config digest %q: %v", ErrInvalidManifest, m.Config.Digest, err)
	}
	for _, l := range m.Layers {
		if err := l.Digest.Validate(); err != nil {
			return m, fmt.Errorf("%w: layer digest %q: %v", ErrInvalidManifest, l.Digest, err)
		}
	}
	return m, nil
}

// DetectMediaType returns the mediaType field of an index or manifest, or
// guesses it from its shape when the field is absent (older OCI manifests).
func DetectMediaType(content []byte) (string, error) {
	var probe struct {
		MediaType string            `json:"mediaType"`
		Manifests []json.RawMessage `json:"manifests"`
		Config    json.RawMessage   `json:"config"`
	}
	if err := json.Unmarshal(content, &probe); err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidManifest, err)
	}
	switch {
	case probe.MediaType != "":
		return probe.MediaType, nil
	case probe.Manifests != nil:
		return ocispec.MediaTypeImageIndex, nil
	case probe.Config != nil:
		return ocispec.MediaTypeImageManifest, nil
	}
	return "", fmt.Errorf("%w: neither an index nor a manifest", ErrInvalidManifest)
}
