package transfer

import (
	"bytes"
	"context"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/manifests"
)

// ManifestPlatform reads the platform that the config of an image manifest
// (content, already read and verified) declares. It is nil for an
// artifact, whose config is not an image config, or a config that names no
// platform.
func ManifestPlatform(ctx context.Context, src Fetcher, content []byte) (*ocispec.Platform, error) {
	m, err := manifests.ParseManifest(content)
	if err != nil {
		return nil, err
	}
	if !manifests.IsConfig(m.Config.MediaType) {
		return nil, nil
	}
	config, err := FetchAll(ctx, src, m.Config)
	if err != nil {
		return nil, err
	}
	return manifests.ConfigPlatform(config)
}

// Filtered is an image graph after FilterPlatforms.
type Filtered struct {
	// Root is the image's root: its own, or a new filtered index.
	Root ocispec.Descriptor
	// Fetcher reads the graph below Root (the new index from memory).
	Fetcher Fetcher
	// Content is Root's bytes.
	Content []byte
	// Platforms lists the platforms the image has after filtering.
	Platforms []string
}

// FilterPlatforms applies a platform filter to the image at root, the one
// way build and push filter: an index keeps only the wanted entries
// (rewritten by manifests.FilterIndex, only when something goes), a single
// manifest must be of a wanted platform (an artifact, whose config names
// no platform, passes). Empty want keeps everything.
// A missing platform is an error wrapping manifests.ErrPlatformMissing,
// unless allowMissing and some wanted platform is there.
func FilterPlatforms(ctx context.Context, src Fetcher, root ocispec.Descriptor, want []ocispec.Platform, allowMissing bool) (Filtered, error) {
	out := Filtered{Root: root, Fetcher: src, Platforms: []string{}}
	content, err := FetchAll(ctx, src, root)
	if err != nil {
		return out, err
	}
	out.Content = content
	switch {
	case manifests.IsIndex(root.MediaType):
		filtered, idx, err := manifests.FilterIndex(content, want, allowMissing)
		if err != nil {
			return out, err
		}
		out.Platforms = append(out.Platforms, manifests.IndexPlatforms(idx)...)
		if !bytes.Equal(filtered, content) {
			mem := NewMemory()
			out.Root, out.Content = mem.Add(root.MediaType, filtered), filtered
			out.Fetcher = Overlay{mem, src}
		}
	case manifests.IsManifest(root.MediaType):
		p, err := ManifestPlatform(ctx, src, content)
		if err != nil {
			return out, err
		}
		if p == nil {
			return out, nil // an artifact (a Helm chart, a WASM module...): no platform to filter
		}
		out.Platforms = append(out.Platforms, manifests.FormatPlatform(*p))
		return out, manifests.CheckPlatform(*p, want)
	}
	return out, nil
}
