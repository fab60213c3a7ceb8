package manifests

import (
	"encoding/json"
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// FilterIndex is ferry's one platform filter: it keeps only the entries of
// an index or manifest list whose platform is in want, and returns the
// index's bytes with the kept entries (the parsed index holds them). It
// returns the original bytes unchanged when nothing is removed, so upstream
// digests survive; otherwise the bytes are the canonical form of
// MarshalIndex, every field ferry does not model kept, so build, push and
// anything later write the same filtered index with the same digest.
// Missing platforms are an error naming what the index has, unless
// allowMissing (and at least one platform is kept).
func FilterIndex(content []byte, want []ocispec.Platform, allowMissing bool) ([]byte, ocispec.Index, error) {
	idx, err := ParseIndex(content)
	if err != nil {
		return nil, idx, err
	}
	kept, missing := SelectPlatforms(idx, want)
	if len(missing) > 0 && (!allowMissing || len(kept) == 0) {
		return nil, idx, fmt.Errorf("%w: want %s, image has %s", ErrPlatformMissing, formatPlatforms(missing), strings.Join(IndexPlatforms(idx), ", "))
	}
	if len(kept) == len(idx.Manifests) {
		return content, idx, nil
	}
	idx.Manifests = kept
	// Rewrite through a generic map so fields ferry does not model survive.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(content, &raw); err != nil {
		return nil, idx, fmt.Errorf("%w: %v", ErrInvalidManifest, err)
	}
	if raw["manifests"], err = json.Marshal(kept); err != nil {
		return nil, idx, err
	}
	out, err := MarshalIndex(raw)
	return out, idx, err
}

// MarshalIndex is the one byte form of every index ferry writes (filtered
// or combined): compact JSON, object keys sorted, as encoding/json writes a
// map. Compact because that is what registries, containerd and
// go-containerregistry write, and because it leaves no choice of
// indentation for two writers to disagree on.
func MarshalIndex(v any) ([]byte, error) {
	return json.Marshal(v)
}

// CheckPlatform returns nil when have is one of want (or want is empty),
// and otherwise an error wrapping ErrPlatformMissing: the filter for an
// image that is a single manifest.
func CheckPlatform(have ocispec.Platform, want []ocispec.Platform) error {
	if len(want) == 0 {
		return nil
	}
	for _, w := range want {
		if PlatformMatches(w, have) {
			return nil
		}
	}
	return fmt.Errorf("%w: want %s, image is %s only", ErrPlatformMissing, formatPlatforms(want), FormatPlatform(have))
}

// NewIndex returns the bytes of a new OCI image index over entries, each of
// which must carry its platform, in the canonical form of MarshalIndex.
func NewIndex(entries []ocispec.Descriptor) ([]byte, error) {
	for _, e := range entries {
		if e.Platform == nil {
			return nil, fmt.Errorf("%w: index entry %s has no platform", ErrInvalidManifest, e.Digest)
		}
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: entries}
	idx.SchemaVersion = 2
	return MarshalIndex(idx)
}

// ConfigPlatform reads the platform an image config declares; it is nil
// when the config names no os and architecture (an artifact's config).
// This is ferry's one config -> platform function.
func ConfigPlatform(config []byte) (*ocispec.Platform, error) {
	var c ocispec.Image
	if err := json.Unmarshal(config, &c); err != nil {
		return nil, fmt.Errorf("%w: config: %v", ErrInvalidManifest, err)
	}
	if c.OS == "" || c.Architecture == "" {
		return nil, nil
	}
	return &c.Platform, nil
}

func formatPlatforms(ps []ocispec.Platform) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = FormatPlatform(p)
	}
	return strings.Join(s, ", ")
}
