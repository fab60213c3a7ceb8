package manifests

import (
	"fmt"
	"strings"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ParsePlatform parses "os/arch[/variant]" into a normalized platform.
func ParsePlatform(s string) (ocispec.Platform, error) {
	if strings.Count(s, "/") < 1 {
		return ocispec.Platform{}, fmt.Errorf("%w %q: want os/arch[/variant], e.g. linux/arm64", ErrInvalidPlatform, s)
	}
	p, err := platforms.Parse(s)
	if err != nil {
		return ocispec.Platform{}, fmt.Errorf("%w %q: %v", ErrInvalidPlatform, s, err)
	}
	return platforms.Normalize(p), nil
}

// ParsePlatforms parses a list of platforms, each possibly a comma-separated list.
func ParsePlatforms(list []string) ([]ocispec.Platform, error) {
	var out []ocispec.Platform
	for _, item := range list {
		for _, s := range strings.Split(item, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			p, err := ParsePlatform(s)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// FormatPlatform prints a platform as os/arch[/variant].
func FormatPlatform(p ocispec.Platform) string {
	return platforms.Format(p)
}

// PlatformMatches reports whether have is the platform want names, up to
// normalization (linux/arm64 and linux/arm64/v8 are the same); a want without
// a variant accepts any variant.
func PlatformMatches(want, have ocispec.Platform) bool {
	want, have = platforms.Normalize(want), platforms.Normalize(have)
	return want.OS == have.OS && want.Architecture == have.Architecture &&
		(want.Variant == "" || want.Variant == have.Variant)
}

// SelectPlatforms returns the entries of idx whose platform is in want, in
// index order, and the wanted platforms that no entry has. Entries without a
// platform (attestations and the like) are kept only when want is empty.
func SelectPlatforms(idx ocispec.Index, want []ocispec.Platform) (kept []ocispec.Descriptor, missing []ocispec.Platform) {
	if len(want) == 0 {
		return idx.Manifests, nil
	}
	found := make([]bool, len(want))
	for _, m := range idx.Manifests {
		if m.Platform == nil {
			continue
		}
		for i, w := range want {
			if PlatformMatches(w, *m.Platform) {
				found[i] = true
				kept = append(kept, m)
				break
			}
		}
	}
	for i, ok := range found {
		if !ok {
			missing = append(missing, want[i])
		}
	}
	return kept, missing
}

// IndexPlatforms lists the platforms of an index's entries as strings, skipping
// entries without a platform and "unknown/unknown" attestation manifests.
func IndexPlatforms(idx ocispec.Index) []string {
	var out []string
	for _, m := range idx.Manifests {
		if m.Platform == nil || m.Platform.OS == "unknown" {
			continue
		}
		out = append(out, FormatPlatform(*m.Platform))
	}
	return out
}
