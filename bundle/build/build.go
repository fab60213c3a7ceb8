package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/manifests/imagelist"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-oci/ferry/internal/remote"
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
	// travel with the images; the zero value means all of them.
	Referrers manifests.ReferrersMode
	// ArtifactTypes, when set, keeps only the referrers of these artifact
	// types (at every level: a signature of an SBOM needs its own type).
	ArtifactTypes []string
	// Registry says how to reach source registries: the same options,
	// TLS and plain-HTTP rule (plain HTTP only with PlainHTTP, to every
	// host) as push.
	Registry remote.Options
	// KeepGoing writes the bundle without the entries that failed to
	// resolve (Result.Failed names them) instead of writing nothing.
	// Either way Build returns an error wrapping
	// manifests.ErrImagesFailed when an entry failed.
	KeepGoing bool
	// Jobs bounds the blobs in flight; 0 means transfer.DefaultJobs.
	Jobs int
	// ModTime is every tar entry's time (SOURCE_DATE_EPOCH); zero means the epoch.
	ModTime time.Time
	// Observer, when set, follows every blob.
	Observer transfer.Observer
	// Bases, when set, makes a delta of these bundles (a delta among them
	// after its own bases): the new bundle holds every index, manifest and
	// config, but only the other blobs the bases lack, which are never
	// downloaded (bundle.WriteOptions.Base).
	Bases []string
}

// Result says what Build wrote.
type Result struct {
	bundle.WriteResult
	// Images lists the names and digests written, sorted by name.
	Names []bundle.Image
	// Failed are the entries left out (Options.KeepGoing).
	Failed   []*EntryError
	Duration time.Duration
}

// EntryError is the failure of one image list entry; its message starts
// with FILE:LINE for an entry of a list file.
type EntryError struct {
	// Image is the entry's source, or its name for a combine entry.
	Image string
	// File and Line say where the entry is written; "" and 0 for an
	// image given on the command line.
	File string
	Line int
	Err  error
}

func (e *EntryError) Error() string {
	if e.Line > 0 && e.File != "" {
		return fmt.Sprintf("%s:%d: image %s: %v", e.File, e.Line, e.Image, e.Err)
	}
	return fmt.Sprintf("image %s: %v", e.Image, e.Err)
}

func (e *EntryError) Unwrap() error { return e.Err }

// Build resolves every entry of the image list (registries, OCI layouts,
// OCI archives, docker archives, per-arch images to combine), filters
// platforms, and writes one bundle at opts.Output. Upstream indexes and
// manifests keep their bytes and digests unless filtering removed a
// platform, a combine made a new index, or a docker archive was converted.
func Build(ctx context.Context, opts Options) (*Result, error) {
	start := time.Now()
	if err := transfer.CheckJobs(opts.Jobs); err != nil {
		return nil, err
	}
	if opts.List == nil || len(opts.List.Images) == 0 {
		return nil, fmt.Errorf("build: %w: no images", manifests.ErrInvalidImageList)
	}
	reg, err := remote.NewClients(opts.Registry)
	if err != nil {
		return nil, err
	}
	var base *bundle.Reader
	if len(opts.Bases) > 0 {
		if base, err = bundle.OpenAll(ctx, opts.Bases); err != nil {
			return nil, fmt.Errorf("build: base: %w", err)
		}
		defer base.Close()
	}
	res := &resolver{opts: opts, registries: reg}
	defer res.close()
	sources, failed, err := res.resolveAll(ctx)
	if err != nil {
		return nil, err
	}
	failedErr := entriesFailed(failed, len(opts.List.Images))
	if failedErr != nil && (!opts.KeepGoing || len(sources) == 0) {
		return nil, failedErr
	}
	written, err := bundle.Write(ctx, opts.Output, sources, bundle.WriteOptions{Jobs: opts.Jobs, ModTime: opts.ModTime, Observer: opts.Observer, Base: base})
	if err != nil {
		return nil, err
	}
	result := &Result{WriteResult: *written, Failed: failed, Duration: time.Since(start)}
	for _, s := range sources {
		result.Names = append(result.Names, bundle.Image{Name: s.Name, Descriptor: s.Root})
	}
	return result, failedErr
}

// entriesFailed is the error of a build whose entries failed, listing
// every one, or nil.
func entriesFailed(failed []*EntryError, total int) error {
	if len(failed) == 0 {
		return nil
	}
	errs := make([]error, len(failed))
	for i, f := range failed {
		errs[i] = f
	}
	return fmt.Errorf("build: %d of %d %w:\n%w", len(failed), total, manifests.ErrImagesFailed, errors.Join(errs...))
}

// resolver turns image list entries into bundle sources.
type resolver struct {
	opts       Options
	registries *remote.Clients

	mu      sync.Mutex
	closers []io.Closer
}

// resolveAll resolves every entry, before any layer is read, and returns
// the sources of those that resolved and the failures of the others, in
// list order. Only a cancelled ctx stops it early.
func (r *resolver) resolveAll(ctx context.Context) ([]bundle.Source, []*EntryError, error) {
	results := make([][]bundle.Source, len(r.opts.List.Images))
	failures := make([]*EntryError, len(r.opts.List.Images))
	var g errgroup.Group
	g.SetLimit(transfer.Jobs(r.opts.Jobs))
	for i, spec := range r.opts.List.Images {
		g.Go(func() error {
			srcs, err := r.resolve(ctx, spec)
			if err != nil {
				failures[i] = r.entryError(spec, err)
			}
			results[i] = srcs
			return nil
		})
	}
	g.Wait() //nolint:errcheck // the goroutines record their errors
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	var all []bundle.Source
	var failed []*EntryError
	for i, srcs := range results {
		if failures[i] != nil {
			failed = append(failed, failures[i])
			continue
		}
		all = append(all, srcs...)
	}
	return all, failed, nil
}

// entryError names the entry, and where it is written, an error came from.
func (r *resolver) entryError(spec imagelist.Spec, err error) *EntryError {
	e := &EntryError{Image: spec.Source.String(), File: r.opts.List.File, Line: spec.Line, Err: err}
	if e.Image == "" {
		e.Image = spec.Name
	}
	return e
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

// filterPlatforms applies a platform filter to an image with
// transfer.FilterPlatforms, the filter push uses too.
func (r *resolver) filterPlatforms(ctx context.Context, src bundle.Source, want []ocispec.Platform) (bundle.Source, error) {
	if len(want) == 0 {
		return src, nil
	}
	f, err := transfer.FilterPlatforms(ctx, src.Fetcher, src.Root, want, r.opts.AllowMissingPlatforms)
	if err != nil {
		return src, err
	}
	src.Root, src.Fetcher = f.Root, f.Fetcher
	return src, nil
}
