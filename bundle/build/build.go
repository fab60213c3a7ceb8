package build

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/manifests/imagelist"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// Options say what to build. The zero value of every field but List
// and Output works.
type Options struct {
	// List is the parsed image list.
	List *imagelist.List
	// Output is the bundle's path; a .zst suffix compresses it.
	Output string
	// Platforms, when set, replaces the list's default platform filter.
	Platforms []ocispec.Platform
	// AllowMissingPlatforms keeps an image that lacks some requested
	// platforms (it must have at least one).
	AllowMissingPlatforms bool
	// Referrers says which referrers (signatures, SBOMs, attestations)
	// travel with the images; the zero value means ReferrersAll.
	Referrers ReferrersMode
	// ArtifactTypes, when set, keeps only the referrers of these artifact
	// types (at every level: a signature of an SBOM needs its own type).
	ArtifactTypes []string
	// Registry says how to reach source registries.
	Registry RegistryOptions
	// Jobs bounds the blobs in flight; 0 means transfer.DefaultJobs.
	Jobs int
	// ModTime is every tar entry's time (SOURCE_DATE_EPOCH); zero means the epoch.
	ModTime time.Time
	// Observer, when set, follows every blob.
	Observer transfer.Observer
}

// Result says what Build wrote.
type Result struct {
	bundle.WriteResult
	// Images lists the names and digests written, sorted by name.
	Names    []bundle.Image
	Duration time.Duration
}

// Build resolves every entry of the image list (registries, OCI layouts,
// OCI archives, docker archives, per-arch images to combine), filters
// platforms, and writes one bundle at opts.Output. Upstream indexes and
// manifests keep their bytes and digests unless filtering removed a
// platform, a combine made a new index, or a docker archive was converted.
func Build(ctx context.Context, opts Options) (*Result, error) {
	start := time.Now()
	if opts.List == nil || len(opts.List.Images) == 0 {
		return nil, fmt.Errorf("build: %w: no images", manifests.ErrInvalidImageList)
	}
	reg, err := NewRegistries(opts.Registry)
	if err != nil {
		return nil, err
	}
	res := &resolver{opts: opts, registries: reg}
	defer res.close()
	sources, err := res.resolveAll(ctx)
	if err != nil {
		return nil, err
	}
	written, err := bundle.Write(ctx, opts.Output, sources, bundle.WriteOptions{Jobs: opts.Jobs, ModTime: opts.ModTime, Observer: opts.Observer})
	if err != nil {
		return nil, err
	}
	result := &Result{WriteResult: *written, Duration: time.Since(start)}
	for _, s := range sources {
		result.Names = append(result.Names, bundle.Image{Name: s.Name, Descriptor: s.Root})
	}
	return result, nil
}

// resolver turns image list entries into bundle sources.
type resolver struct {
	opts       Options
	registries *Registries

	mu      sync.Mutex
	closers []io.Closer
}

func (r *resolver) resolveAll(ctx context.Context) ([]bundle.Source, error) {
	results := make([][]bundle.Source, len(r.opts.List.Images))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(r.opts.Jobs, transfer.DefaultJobs))
	for i, spec := range r.opts.List.Images {
		g.Go(func() error {
			srcs, err := r.resolve(gctx, spec)
			if err != nil {
				return specError(spec, err)
			}
			results[i] = srcs
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var all []bundle.Source
	for _, srcs := range results {
		all = append(all, srcs...)
	}
	return all, nil
}

// specError names the entry (and its line) an error came from.
func specError(spec imagelist.Spec, err error) error {
	what := spec.Source
	if what == "" {
		what = spec.Name
	}
	if spec.Line > 0 {
		return fmt.Errorf("image %s (line %d): %w", what, spec.Line, err)
	}
	return fmt.Errorf("image %s: %w", what, err)
}

func (r *resolver) platformsFor(spec imagelist.Spec) []ocispec.Platform {
	switch {
	case spec.Platforms != nil:
		return spec.Platforms
	case len(r.opts.Platforms) > 0:
		return r.opts.Platforms
	}
	return r.opts.List.Platforms
}

func (r *resolver) track(c io.Closer) {
	r.mu.Lock()
	r.closers = append(r.closers, c)
	r.mu.Unlock()
}

func (r *resolver) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.closers {
		c.Close()
	}
}

// filterPlatforms applies a platform filter to an image: an index keeps
// only the wanted entries (rewritten only if something goes), a single
// manifest must be of a wanted platform.
func (r *resolver) filterPlatforms(ctx context.Context, src bundle.Source, want []ocispec.Platform) (bundle.Source, error) {
	if len(want) == 0 {
		return src, nil
	}
	content, err := transfer.FetchAll(ctx, src.Fetcher, src.Root)
	if err != nil {
		return src, err
	}
	if manifests.IsManifest(src.Root.MediaType) {
		if isArtifact(content) {
			return src, nil // a Helm chart, WASM module...: no platform to filter
		}
		p, err := r.manifestPlatform(ctx, src.Fetcher, content)
		if err != nil {
			return src, err
		}
		for _, w := range want {
			if manifests.PlatformMatches(w, p) {
				return src, nil
			}
		}
		return src, fmt.Errorf("%w: image is %s only", manifests.ErrPlatformMissing, manifests.FormatPlatform(p))
	}
	filtered, err := manifests.FilterIndex(content, want, r.opts.AllowMissingPlatforms)
	if err != nil {
		return src, err
	}
	if len(filtered) == len(content) && string(filtered) == string(content) {
		return src, nil
	}
	mem := transfer.NewMemory()
	src.Root = mem.Add(src.Root.MediaType, filtered)
	src.Fetcher = transfer.Overlay{mem, src.Fetcher}
	return src, nil
}

// isArtifact reports whether a manifest is an OCI artifact rather than a
// runnable image: its config is not an image config (the empty config with
// an artifactType, a Helm chart's config, ...).
func isArtifact(manifest []byte) bool {
	m, err := manifests.ParseManifest(manifest)
	return err == nil && !manifests.IsConfig(m.Config.MediaType)
}

// manifestPlatform reads the platform a manifest's config declares.
func (r *resolver) manifestPlatform(ctx context.Context, f transfer.Fetcher, manifest []byte) (ocispec.Platform, error) {
	m, err := manifests.ParseManifest(manifest)
	if err != nil {
		return ocispec.Platform{}, err
	}
	config, err := transfer.FetchAll(ctx, f, m.Config)
	if err != nil {
		return ocispec.Platform{}, err
	}
	return manifests.ConfigPlatform(config)
}
