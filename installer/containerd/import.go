package containerd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/leases"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// Defaults of ImportOptions.
const (
	// DefaultContainerdAddress is containerd's gRPC socket on most nodes.
	DefaultContainerdAddress = "/run/containerd/containerd.sock"
	// DefaultNamespace is the containerd namespace the kubelet's CRI uses.
	DefaultNamespace = "k8s.io"
	// DefaultSnapshotter is the snapshotter images are unpacked into.
	DefaultSnapshotter = "overlayfs"
)

// ImportOptions tune Import. The zero value imports every image of the
// bundle into the containerd running on one of Sockets, namespace k8s.io,
// for the node's platform, and unpacks it into overlayfs.
type ImportOptions struct {
	// Address is containerd's gRPC socket; "" means the one of the
	// candidate Sockets that a containerd answers on (see FindSocket).
	Address string
	// Sockets are the candidates when Address is ""; nil means the
	// package's Sockets (the standard one, k3s's and RKE2's).
	Sockets []Socket
	// Namespace is the containerd namespace; "" means DefaultNamespace.
	Namespace string
	// Platform (os/arch[/variant]) is the platform written and unpacked;
	// "" means the node's own, as containerd matches it.
	Platform string
	// AllPlatforms writes every platform of every image (Platform, or the
	// node's, is still the one unpacked).
	AllPlatforms bool
	// RequirePlatform fails the import, before anything is written, when
	// an image lacks the platform. Without it such an image is left out
	// (ImportedImage.Skipped says why) and the others are imported; only
	// when no image has the platform does the import fail.
	RequirePlatform bool
	// NoUnpack skips unpacking into the snapshotter.
	NoUnpack bool
	// Snapshotter is the snapshotter to unpack into; "" means DefaultSnapshotter.
	Snapshotter string
	// Images, when set, imports only the images whose name matches one of
	// these patterns (manifests.SelectImages has the glob rule).
	Images []string
	// Jobs bounds the blobs written, and the images unpacked, at once; 0
	// means transfer.DefaultJobs.
	Jobs int
	// Observer, when set, is told about every blob.
	Observer transfer.Observer
}

// Image record outcomes of ImportedImage.Record.
const (
	RecordCreated   = "created"
	RecordUpdated   = "updated"
	RecordUnchanged = "unchanged"
)

// ImportResult is what an import did.
type ImportResult struct {
	Address string `json:"address"`
	// Detected is the kind of the socket found when no Address was given
	// ("containerd", "k3s/RKE2"); empty when Address was given.
	Detected  string `json:"detected,omitempty"`
	Namespace string `json:"namespace"`
	// Platform is the platform written ("all" with AllPlatforms) and Unpack
	// the one unpacked.
	Platform string `json:"platform"`
	Unpack   string `json:"unpack,omitempty"`
	// Snapshotter is the snapshotter unpacked into; empty with NoUnpack.
	Snapshotter string          `json:"snapshotter,omitempty"`
	Images      []ImportedImage `json:"images"`
	// ReferrersLeftOut counts the referrers (signatures, SBOMs,
	// attestations) of the imported images, which import leaves out:
	// containerd does not use them.
	ReferrersLeftOut int `json:"referrersLeftOut"`
	// BlobsWritten and BytesWritten count the blobs whose bytes were sent to
	// containerd; BlobsSkipped and BytesSkipped those it already had.
	BlobsWritten int   `json:"blobsWritten"`
	BlobsSkipped int   `json:"blobsSkipped"`
	BytesWritten int64 `json:"bytesWritten"`
	BytesSkipped int64 `json:"bytesSkipped"`
	// Duration is the wall time of the import; Seconds is the same in
	// seconds, ferry's one form of durations in JSON.
	Duration time.Duration `json:"-"`
	Seconds  float64       `json:"seconds"`
}

// Where names the socket imported into, and, when it was found rather
// than given, whose it is: "/run/k3s/containerd/containerd.sock (k3s/RKE2,
// found running)".
func (r *ImportResult) Where() string {
	if r.Detected == "" {
		return r.Address
	}
	return r.Address + " (" + r.Detected + ", found running)"
}

// ImportedImage is one image of an import.
type ImportedImage struct {
	// Name is the image record's name, the full reference from the bundle.
	Name      string        `json:"name"`
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType"`
	// Platforms are the image's platforms that were written.
	Platforms []string `json:"platforms"`
	// DigestName, for a tagged Name, is the second image record,
	// repository@digest: the CRI lists it as the image's repo digest, and
	// pods that name the image by digest find it (the CRI's own pulls
	// create both records too).
	DigestName string `json:"digestName,omitempty"`
	// Record says whether the image record Name was created, updated (it
	// pointed elsewhere) or unchanged; empty when the image failed.
	Record string `json:"record,omitempty"`
	// Unpacked says whether the image is unpacked in the snapshotter.
	Unpacked bool `json:"unpacked"`
	// Error says why the image failed; empty when it did not.
	Error string `json:"error,omitempty"`
	// Skipped says why the image was left out: it lacks the platform
	// (see ImportOptions.RequirePlatform); empty when it was imported.
	Skipped string `json:"skipped,omitempty"`

	err error
}

// importPlan is an import's validated options.
type importPlan struct {
	ImportOptions
	unpack     ocispec.Platform        // the platform unpacked
	match      platforms.MatchComparer // matches unpack as containerd does
	selectFunc transfer.SelectFunc     // nil with AllPlatforms
	detected   string                  // the socket's kind, when found
}

// Import writes the bundle's images into containerd's content store, with
// their GC reference labels, under one lease; creates or updates an image
// record per image once its whole graph is stored; and unpacks it into the
// snapshotter. Blobs containerd already has are skipped, so a re-run after a
// failure writes only what is missing.
//
// Images are imported independently: when some fail, the others are still
// recorded, and the error wraps manifests.ErrImagesFailed and each image's error. The
// result is non-nil once writing has begun.
func Import(ctx context.Context, r *bundle.Reader, opts ImportOptions) (*ImportResult, error) {
	start := time.Now()
	plan, err := newImportPlan(ctx, opts)
	if err != nil {
		return nil, err
	}
	if len(r.Images()) == 0 {
		return nil, fmt.Errorf("bundle: %w", manifests.ErrNoImages)
	}
	selected, err := manifests.SelectImages(r.Images(), bundle.ImageName, plan.Images)
	if err != nil {
		return nil, err
	}
	res, unpackable, err := plan.newResult(ctx, r, selected)
	if err != nil {
		return nil, err
	}

	client, err := connect(ctx, plan.Address, plan.Namespace)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	if err := plan.checkBase(ctx, r, client.ContentStore(), selected); err != nil {
		return nil, err
	}
	if !plan.NoUnpack {
		if err := checkSnapshotter(ctx, client, plan.Address, plan.Snapshotter); err != nil {
			return nil, err
		}
	}
	ctx, release, err := client.WithLease(ctx, importLeaseOpts(contentBytes(r))...)
	if err != nil {
		return nil, fmt.Errorf("containerd at %s: create lease: %w", plan.Address, err)
	}
	defer func() {
		// The lease ends even when ctx is cancelled; should that fail,
		// it expires by itself.
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		_ = release(cctx)
	}()

	lease, _ := leases.FromContext(ctx)
	target := &contentTarget{
		store:   client.ContentStore(),
		leases:  client.LeasesService(),
		lease:   leases.Lease{ID: lease},
		src:     r,
		covered: map[digest.Digest]bool{},
	}
	im := &importer{
		importPlan: plan,
		client:     client,
		copier:     transfer.NewCopier(target, transfer.Options{Jobs: plan.Jobs, Select: plan.selectFunc, Observer: plan.Observer}),
		src:        r,
	}
	var g errgroup.Group
	g.SetLimit(plan.Jobs)
	for i, img := range selected {
		if res.Images[i].Skipped != "" || res.Images[i].err != nil {
			continue
		}
		g.Go(func() error {
			res.Images[i].err = im.importImage(ctx, img, unpackable[i], &res.Images[i])
			return nil
		})
	}
	_ = g.Wait()
	// Best effort: a lease left now still expires on its own.
	_, _ = removeStaleLeases(ctx, client.LeasesService())

	stats := im.copier.Stats()
	res.BlobsWritten, res.BytesWritten = stats.Copied, stats.BytesCopied
	res.BlobsSkipped, res.BytesSkipped = stats.Skipped+stats.Mounted, stats.BytesSkipped
	res.Duration = time.Since(start)
	res.Seconds = res.Duration.Seconds()
	return res, importError(ctx, plan.Address, res)
}

// importError is the error of an import whose images have run: the
// context's when it ended, else one naming each failed image (each image's
// Error is filled in), or nil.
func importError(ctx context.Context, address string, res *ImportResult) error {
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("import into containerd at %s: %w", address, err)
	}
	var errs []error
	for i := range res.Images {
		if err := res.Images[i].err; err != nil {
			res.Images[i].Error = err.Error()
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %d of %d: %w", manifests.ErrImagesFailed, len(errs), len(res.Images), errors.Join(errs...))
	}
	return nil
}

// newImportPlan fills in the defaults (finding the socket when no Address
// is given) and parses the platform.
func newImportPlan(ctx context.Context, opts ImportOptions) (*importPlan, error) {
	p := &importPlan{ImportOptions: opts}
	if p.Address == "" {
		candidates := p.Sockets
		if candidates == nil {
			candidates = Sockets
		}
		s, err := FindSocket(ctx, candidates)
		if err != nil {
			return nil, err
		}
		p.Address, p.detected = s.Path, s.Kind
	}
	if p.Namespace == "" {
		p.Namespace = DefaultNamespace
	}
	if p.Snapshotter == "" {
		p.Snapshotter = DefaultSnapshotter
	}
	if err := transfer.CheckJobs(p.Jobs); err != nil {
		return nil, err
	}
	p.Jobs = transfer.Jobs(p.Jobs)
	p.unpack, p.match = platforms.DefaultSpec(), platforms.Default()
	if p.Platform != "" {
		spec, err := manifests.ParsePlatform(p.Platform)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", manifests.ErrInvalidArgument, err)
		}
		p.unpack, p.match = spec, platforms.Only(spec)
	}
	p.unpack = platforms.Normalize(p.unpack)
	if !p.AllPlatforms {
		p.selectFunc = selectPlatform(p.match)
	}
	return p, nil
}

// newResult describes the import of selected before it starts, and says
// which images have the platform to unpack. It reads only the bundle, so
// an image without the platform (with RequirePlatform), or no image with
// it, fails the import before anything is written; otherwise an image
// without it is marked Skipped. An image whose graph cannot be read
// (a corrupt manifest) gets its error and is not imported; the others are.
func (p *importPlan) newResult(ctx context.Context, r *bundle.Reader, selected []bundle.Image) (*ImportResult, []bool, error) {
	res := &ImportResult{
		Address:   p.Address,
		Detected:  p.detected,
		Namespace: p.Namespace,
		Platform:  manifests.FormatPlatform(p.unpack),
		Images:    make([]ImportedImage, len(selected)),
	}
	if p.AllPlatforms {
		res.Platform = "all"
	}
	if !p.NoUnpack {
		res.Unpack, res.Snapshotter = manifests.FormatPlatform(p.unpack), p.Snapshotter
	}
	unpackable := make([]bool, len(selected))
	var missing []error
	for i, img := range selected {
		res.Images[i] = ImportedImage{Name: img.Name, Digest: img.Descriptor.Digest, MediaType: img.Descriptor.MediaType}
		res.ReferrersLeftOut += len(r.ReferrersOf(img.Name))
		var err error
		res.Images[i].Platforms, unpackable[i], err = p.platforms(ctx, r, img)
		switch {
		case errors.Is(err, manifests.ErrPlatformMissing) && p.RequirePlatform:
			return nil, nil, err
		case errors.Is(err, manifests.ErrPlatformMissing):
			res.Images[i].Skipped = err.Error()
			missing = append(missing, err)
		case err != nil:
			res.Images[i].err = err // a broken image fails alone
		}
	}
	if len(missing) == len(selected) {
		return nil, nil, fmt.Errorf("no image to import has %s (choose another with --platform, or use --all-platforms):\n%w",
			manifests.FormatPlatform(p.unpack), errors.Join(missing...))
	}
	return res, unpackable, nil
}

// selectPlatform keeps, of an index's entries, the one that best matches m,
// with containerd's own handlers (as its pull does); a manifest's children
// are all kept.
func selectPlatform(m platforms.MatchComparer) transfer.SelectFunc {
	return func(ctx context.Context, parent ocispec.Descriptor, children []ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		all := func(context.Context, ocispec.Descriptor) ([]ocispec.Descriptor, error) { return children, nil }
		kept, err := images.LimitManifests(images.FilterPlatforms(all, m), m, 1)(ctx, parent)
		if err != nil {
			return nil, fmt.Errorf("index %s: %w", parent.Digest, manifests.ErrPlatformMissing)
		}
		return kept, nil
	}
}

// platforms returns the platforms of img that the import writes and
// whether img has the platform to unpack. Without AllPlatforms, an image
// lacking that platform is an error naming what it has. It reads only the
// bundle.
func (p *importPlan) platforms(ctx context.Context, r *bundle.Reader, img bundle.Image) ([]string, bool, error) {
	specs, err := images.Platforms(ctx, bundleProvider{r}, img.Descriptor)
	if err != nil {
		return nil, false, fmt.Errorf("image %s: %w", img.Name, err)
	}
	var has []string
	found := false
	for _, s := range specs {
		has = append(has, manifests.FormatPlatform(s))
		found = found || p.match.Match(platforms.Normalize(s))
	}
	switch {
	case p.AllPlatforms:
		return has, found, nil
	case !found:
		return nil, false, fmt.Errorf("image %s has no %s (%w); it has %s",
			img.Name, manifests.FormatPlatform(p.unpack), manifests.ErrPlatformMissing, strings.Join(has, ", "))
	}
	return []string{manifests.FormatPlatform(p.unpack)}, true, nil
}

// importer is one running import.
type importer struct {
	*importPlan
	client *containerd.Client
	copier *transfer.Copier
	src    *bundle.Reader
}

// importImage copies one image's graph, records it once the graph is
// complete, and unpacks it.
func (im *importer) importImage(ctx context.Context, img bundle.Image, unpackable bool, out *ImportedImage) error {
	if _, err := manifests.NormalizeReference(img.Name); err != nil {
		return fmt.Errorf("image %q: %w; containerd records only image references", img.Name, err)
	}
	if err := im.copier.Copy(ctx, im.src, img.Descriptor); err != nil {
		return fmt.Errorf("image %s: %w", img.Name, err)
	}
	rec := images.Image{
		Name:   img.Name,
		Target: ocispec.Descriptor{MediaType: img.Descriptor.MediaType, Digest: img.Descriptor.Digest, Size: img.Descriptor.Size},
	}
	var err error
	if out.Record, err = putImage(ctx, im.client.ImageService(), rec); err != nil {
		return fmt.Errorf("image %s: record: %w", img.Name, err)
	}
	if out.DigestName = digestName(img.Name, img.Descriptor.Digest); out.DigestName != "" {
		byDigest := rec
		byDigest.Name = out.DigestName
		if _, err := putImage(ctx, im.client.ImageService(), byDigest); err != nil {
			return fmt.Errorf("image %s: record %s: %w", img.Name, out.DigestName, err)
		}
	}
	if im.NoUnpack || !unpackable {
		return nil
	}
	done, err := im.isUnpacked(ctx, img)
	if err == nil && !done {
		err = containerd.NewImageWithPlatform(im.client, rec, im.match).Unpack(ctx, im.Snapshotter)
	}
	if err != nil {
		return fmt.Errorf("image %s: unpack into %s: %w", img.Name, im.Snapshotter, err)
	}
	out.Unpacked = true
	return nil
}

// isUnpacked reports whether img is unpacked as Unpack leaves it: the
// snapshot of its rootfs exists and its config's GC label references it.
// It reads the image from the bundle, so it costs two requests where
// Unpack makes some twenty to find out the same.
func (im *importer) isUnpacked(ctx context.Context, img bundle.Image) (bool, error) {
	provider := bundleProvider{im.src}
	config, err := images.Config(ctx, provider, img.Descriptor, im.match)
	if err != nil {
		return false, err
	}
	diffIDs, err := images.RootFS(ctx, provider, config)
	if err != nil {
		return false, err
	}
	chainID := identity.ChainID(diffIDs).String()
	info, err := im.client.ContentStore().Info(ctx, config.Digest)
	if err != nil {
		return false, err
	}
	if info.Labels["containerd.io/gc.ref.snapshot."+im.Snapshotter] != chainID {
		return false, nil
	}
	_, err = im.client.SnapshotService(im.Snapshotter).Stat(ctx, chainID)
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// putImage creates the image record, or points an existing record of that
// name at the new target, keeping its labels. A record that is already
// right costs one request.
func putImage(ctx context.Context, store images.Store, rec images.Image) (string, error) {
	old, err := store.Get(ctx, rec.Name)
	switch {
	case errdefs.IsNotFound(err):
		if _, err = store.Create(ctx, rec); err == nil {
			return RecordCreated, nil
		}
		if !errdefs.IsAlreadyExists(err) { // else created meanwhile: update it
			return "", err
		}
	case err != nil:
		return "", err
	case old.Target.Digest == rec.Target.Digest && old.Target.MediaType == rec.Target.MediaType:
		return RecordUnchanged, nil
	}
	if _, err := store.Update(ctx, rec, "target"); err != nil {
		return "", err
	}
	return RecordUpdated, nil
}

// digestName returns repository@d for a tagged reference, and "" for a
// reference by digest or a name that is no reference.
func digestName(name string, d digest.Digest) string {
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return ""
	}
	if _, ok := named.(reference.Digested); ok {
		return ""
	}
	canonical, err := reference.WithDigest(reference.TrimNamed(named), d)
	if err != nil {
		return ""
	}
	return canonical.String()
}
