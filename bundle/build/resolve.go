package build

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/manifests/imagelist"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// resolve turns one image list entry into the sources it names.
func (r *resolver) resolve(ctx context.Context, spec imagelist.Spec) ([]bundle.Source, error) {
	if len(spec.Combine) > 0 {
		src, err := r.combine(ctx, spec)
		if err != nil {
			return nil, err
		}
		return []bundle.Source{src}, nil
	}
	srcs, finder, err := r.open(ctx, spec.Source)
	if err != nil {
		return nil, err
	}
	if spec.Name != "" {
		if len(srcs) != 1 {
			return nil, fmt.Errorf("name %s given, but the source holds %d images", spec.Name, len(srcs))
		}
		srcs[0].Name = spec.Name
	}
	for i := range srcs {
		if srcs[i].Name == "" {
			return nil, ErrNoName
		}
		if srcs[i], err = r.filterPlatforms(ctx, srcs[i], r.platformsFor(spec)); err != nil {
			return nil, err
		}
		if srcs[i], err = r.withReferrers(ctx, srcs[i], finder); err != nil {
			return nil, err
		}
	}
	return srcs, nil
}

// open resolves a source to its images, named as the source names them,
// and how to find their referrers (nil for a docker archive).
func (r *resolver) open(ctx context.Context, src manifests.Source) ([]bundle.Source, referrerFinder, error) {
	switch src.Kind {
	case manifests.SourceOCILayout:
		return r.openLayoutDir(src.Path, src.Name)
	case manifests.SourceOCIArchive:
		return r.openArchive(ctx, src.Path)
	case manifests.SourceDockerArchive:
		srcs, err := r.openDockerArchive(ctx, src.Path, src.Name)
		return srcs, nil, err
	}
	root, repo, err := r.openRegistry(ctx, src.Ref)
	if err != nil {
		return nil, nil, err
	}
	return []bundle.Source{{Name: src.Ref, Root: root, Fetcher: repo}}, repo, nil
}

func (r *resolver) openLayoutDir(dir, name string) ([]bundle.Source, referrerFinder, error) {
	l, err := OpenLayoutDir(dir)
	if err != nil {
		return nil, nil, err
	}
	r.track(l)
	idx, err := l.Index()
	if err != nil {
		return nil, nil, err
	}
	finder := &layoutFinder{index: idx, f: l}
	var srcs []bundle.Source
	for _, d := range idx.Manifests {
		refName := d.Annotations[bundle.AnnotationRefName]
		if refName == "" {
			refName = d.Annotations[bundle.AnnotationContainerdName]
		}
		if name != "" && refName != name && normalizedOrEmpty(refName) != normalizedOrEmpty(name) {
			continue
		}
		if isLayoutReferrer(d) {
			continue
		}
		srcs = append(srcs, bundle.Source{Name: layoutName(refName), Root: plainDescriptor(d), Fetcher: l})
	}
	if len(srcs) == 0 {
		return nil, nil, fmt.Errorf("oci layout %s: %w: %q", dir, ErrImageNotFound, name)
	}
	return srcs, finder, nil
}

func (r *resolver) openArchive(ctx context.Context, path string) ([]bundle.Source, referrerFinder, error) {
	br, err := bundle.Open(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	if err := br.CheckComplete(); err != nil {
		br.Close()
		return nil, nil, err
	}
	r.track(br)
	var srcs []bundle.Source
	for _, img := range br.Images() {
		srcs = append(srcs, bundle.Source{Name: normalizedOrEmpty(img.Name), Root: plainDescriptor(img.Descriptor), Fetcher: br})
	}
	if len(srcs) == 0 {
		return nil, nil, fmt.Errorf("oci archive %s: %w", path, ErrImageNotFound)
	}
	return srcs, &layoutFinder{index: br.Index(), f: br}, nil
}

func (r *resolver) openDockerArchive(ctx context.Context, path, name string) ([]bundle.Source, error) {
	da, err := OpenDockerArchive(ctx, path, r.opts.Jobs)
	if err != nil {
		return nil, err
	}
	r.track(da)
	want := normalizedOrEmpty(name)
	var srcs []bundle.Source
	for _, img := range da.Images {
		root := plainDescriptor(img.Descriptor)
		if len(img.RepoTags) == 0 && name == "" {
			srcs = append(srcs, bundle.Source{Root: root, Fetcher: da})
		}
		for _, tag := range img.RepoTags {
			if name == "" || tag == want {
				srcs = append(srcs, bundle.Source{Name: tag, Root: root, Fetcher: da})
			}
		}
	}
	if len(srcs) == 0 {
		return nil, fmt.Errorf("docker archive %s: %w: %q", path, ErrImageNotFound, name)
	}
	return srcs, nil
}

// combine builds a new OCI index from per-platform images, checking each
// against the platform its config declares.
func (r *resolver) combine(ctx context.Context, spec imagelist.Spec) (bundle.Source, error) {
	keys := make([]string, 0, len(spec.Combine))
	for k := range spec.Combine {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	router := router{}
	var entries []ocispec.Descriptor
	var referrers []bundle.Referrer
	for _, key := range keys {
		want, err := manifests.ParsePlatform(key)
		if err != nil {
			return bundle.Source{}, err
		}
		srcs, finder, err := r.open(ctx, spec.Combine[key])
		if err != nil {
			return bundle.Source{}, err
		}
		if len(srcs) != 1 {
			return bundle.Source{}, fmt.Errorf("%s: %s holds %d images, want one", key, spec.Combine[key], len(srcs))
		}
		entry, err := r.platformManifest(ctx, srcs[0], want)
		if err != nil {
			return bundle.Source{}, fmt.Errorf("%s: %s: %w", key, spec.Combine[key], err)
		}
		if err := router.learn(ctx, srcs[0].Fetcher, entry); err != nil {
			return bundle.Source{}, err
		}
		part, err := r.withReferrers(ctx, bundle.Source{Root: entry, Fetcher: srcs[0].Fetcher}, finder)
		if err != nil {
			return bundle.Source{}, fmt.Errorf("%s: %s: %w", key, spec.Combine[key], err)
		}
		for _, ref := range part.Referrers {
			if err := router.learn(ctx, srcs[0].Fetcher, ref.Descriptor); err != nil {
				return bundle.Source{}, err
			}
		}
		referrers = append(referrers, part.Referrers...)
		entries = append(entries, entry)
	}
	content, err := manifests.NewIndex(entries)
	if err != nil {
		return bundle.Source{}, err
	}
	mem := transfer.NewMemory()
	root := mem.Add(ocispec.MediaTypeImageIndex, content)
	return bundle.Source{Name: spec.Name, Root: root, Fetcher: transfer.Overlay{mem, router}, Referrers: referrers}, nil
}

// platformManifest picks the manifest of platform want from an image (the
// image itself, or its index's entry) and returns it with the platform its
// config declares, which must match want.
func (r *resolver) platformManifest(ctx context.Context, src bundle.Source, want ocispec.Platform) (ocispec.Descriptor, error) {
	desc := src.Root
	if manifests.IsIndex(desc.MediaType) {
		content, err := transfer.FetchAll(ctx, src.Fetcher, desc)
		if err != nil {
			return desc, err
		}
		idx, err := manifests.ParseIndex(content)
		if err != nil {
			return desc, err
		}
		kept, _ := manifests.SelectPlatforms(idx, []ocispec.Platform{want})
		if len(kept) == 0 {
			return desc, fmt.Errorf("%w: image has %s", manifests.ErrPlatformMissing, strings.Join(manifests.IndexPlatforms(idx), ", "))
		}
		desc = kept[0]
	}
	content, err := transfer.FetchAll(ctx, src.Fetcher, desc)
	if err != nil {
		return desc, err
	}
	have, err := transfer.ManifestPlatform(ctx, src.Fetcher, content)
	switch {
	case err != nil:
		return desc, err
	case have == nil:
		return desc, fmt.Errorf("%w: the image's config names no platform", manifests.ErrPlatformMismatch)
	case !manifests.PlatformMatches(want, *have):
		return desc, fmt.Errorf("%w: config says %s", manifests.ErrPlatformMismatch, manifests.FormatPlatform(*have))
	}
	desc = plainDescriptor(desc)
	desc.Platform = have
	return desc, nil
}

// router is a Fetcher that sends each digest to the source that has it,
// for indexes combined from several repositories.
type router map[digest.Digest]transfer.Fetcher

func (rt router) learn(ctx context.Context, f transfer.Fetcher, root ocispec.Descriptor) error {
	return transfer.Walk(ctx, f, root, nil, func(desc ocispec.Descriptor, _ []byte) error {
		rt[desc.Digest] = f
		return nil
	})
}

// Fetch implements transfer.Fetcher.
func (rt router) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	f, ok := rt[desc.Digest]
	if !ok {
		return nil, fmt.Errorf("%s: %w", desc.Digest, manifests.ErrNotFound)
	}
	return f.Fetch(ctx, desc)
}

// plainDescriptor keeps what identifies a blob, dropping annotations and
// platform that belong to where it was listed.
func plainDescriptor(d ocispec.Descriptor) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}
}

// layoutName is the bundle name of an OCI layout's image: its ref name
// when that is a reference ("app:2.0", "quay.io/x/y:1"); a bare tag
// ("1.36", the skopeo and go-containerregistry convention) names no
// repository, so the entry must give a name.
func layoutName(refName string) string {
	if !strings.ContainsAny(refName, ":/") {
		return ""
	}
	return normalizedOrEmpty(refName)
}

func normalizedOrEmpty(ref string) string {
	if ref == "" {
		return ""
	}
	n, err := manifests.NormalizeReference(ref)
	if err != nil {
		return ""
	}
	return n
}
