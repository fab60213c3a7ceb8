package manifests

import (
	"encoding/json"
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// FilterIndex keeps only the entries of an index or manifest list whose
// platform is in want. It returns the original bytes unchanged when nothing
// is removed, so upstream digests survive; otherwise it returns a rewritten
// index of the same media type. Missing platforms are an error naming what
// the index has, unless allowMissing.
func FilterIndex(content []byte, want []ocispec.Platform, allowMissing bool) ([]byte, error) {
	idx, err := ParseIndex(content)
	if err != nil {
		return nil, err
	}
	kept, missing := SelectPlatforms(idx, want)
	if len(missing) > 0 && (!allowMissing || len(kept) == 0) {
		return nil, fmt.Errorf("%w: want %s, image has %s", ErrPlatformMissing, formatPlatforms(missing), strings.Join(IndexPlatforms(idx), ", "))
	}
	if len(kept) == len(idx.Manifests) {
		return content, nil
	}
	// Rewrite through a generic map so fields ferry does not model survive.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(content, &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidManifest, err)
	}
	entries, err := json.Marshal(kept)
	if err != nil {
		return nil, err
	}
	raw["manifests"] = entries
	return json.MarshalIndent(raw, "", "  ")
}

// NewIndex returns the bytes of a new OCI image index over entries, each of
// which must carry its platform.
func NewIndex(entries []ocispec.Descriptor) ([]byte, error) {
	for _, e := range entries {
		if e.Platform == nil {
			return nil, fmt.Errorf("%w: index entry %s has no platform", ErrInvalidManifest, e.Digest)
		}
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: entries}
	idx.SchemaVersion = 2
	return json.MarshalIndent(idx, "", "  ")
}

// ConfigPlatform reads the platform an image config declares.
func ConfigPlatform(config []byte) (ocispec.Platform, error) {
	var c ocispec.Image
	if err := json.Unmarshal(config, &c); err != nil {
		return ocispec.Platform{}, fmt.Errorf("%w: config: %v", ErrInvalidManifest, err)
	}
	if c.OS == "" || c.Architecture == "" {
		return ocispec.Platform{}, fmt.Errorf("%w: config has no os/architecture", ErrInvalidManifest)
	}
	return c.Platform, nil
}

func formatPlatforms(ps []ocispec.Platform) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = FormatPlatform(p)
	}
	return strings.Join(s, ", ")
}
