package installer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/internal/remote"
	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// PushOptions tune Push. To is required; every other zero value is a
// default: all images, all platforms, transfer.DefaultJobs.
type PushOptions struct {
	// remote.Options say how to reach the registry; Jobs bounds the blobs
	// and requests in flight across all images.
	remote.Options
	// To is the destination registry host with an optional repository
	// prefix: "harbor.local/tke" sends docker.io/library/nginx:1.25 to
	// harbor.local/tke/library/nginx:1.25.
	To string
	// KeepHost keeps the source registry host in the destination path:
	// reg.local/docker.io/library/nginx:1.25.
	KeepHost bool
	// Images, when set, selects the images whose name matches one of
	// these patterns (manifests.SelectImages has the glob rule).
	Images []string
	// Platforms, when set, pushes each index filtered to these platforms:
	// a new index with a new digest. An image that lacks one fails.
	Platforms []ocispec.Platform
	// FailFast stops the push at the first failed image; otherwise the
	// other images go on.
	FailFast bool
	// Timeout, when set, bounds the whole push: requests in flight are cut
	// off and no retry waits past it (see remote.RetryPolicy).
	Timeout time.Duration
	// DryRun plans the push (which image goes where, with which digest)
	// without contacting the registry.
	DryRun bool
	// Referrers says which of the images' referrers (signatures, SBOMs,
	// attestations) go with them, each after its subject: all (the zero
	// value) or none. A registry with the referrers API lists them; on one
	// without (distribution 2.8), each subject's referrers tag schema
	// index is kept, merged with what is already there. cosign's
	// tag-scheme manifests get their tags.
	Referrers manifests.ReferrersMode
	// OnExistingTag says what to do when a tag at the destination already
	// points at other content: TagOverwrite (the zero value) moves it,
	// TagSkip leaves it and the image alone, TagFail fails the image
	// (manifests.ErrAlreadyExists). PushedImage.MovedFrom and Skipped say
	// what happened.
	OnExistingTag string
	// Observer, when set, is told about every blob.
	Observer transfer.Observer
}

// The OnExistingTag policies.
const (
	TagOverwrite = "overwrite"
	TagSkip      = "skip"
	TagFail      = "fail"
)

// PushResult is what a push did.
type PushResult struct {
	// Images are the selected images, in bundle order.
	Images []PushedImage
	// Stats count the blobs (manifests included) sent, skipped and mounted.
	Stats transfer.Stats
	// Retried counts the requests sent again after they failed on the way
	// (see remote.RetryPolicy).
	Retried int `json:"retried"`
	// Duration is the wall time of the push; Seconds is the same in
	// seconds, ferry's one form of durations in JSON.
	Duration time.Duration `json:"-"`
	Seconds  float64       `json:"seconds"`
}

// took records the time since start.
func (r *PushResult) took(start time.Time) {
	r.Duration = time.Since(start)
	r.Seconds = r.Duration.Seconds()
}

// Failed returns the images that failed.
func (r *PushResult) Failed() []PushedImage {
	var out []PushedImage
	for _, img := range r.Images {
		if img.Err != nil {
			out = append(out, img)
		}
	}
	return out
}

// PushedImage is one image of a push.
type PushedImage struct {
	// Name is the image's name in the bundle.
	Name string
	// Destination is its reference in the target registry.
	Destination string
	// Digest is its root digest in the target registry.
	Digest digest.Digest
	// SourceDigest is its root digest in the bundle: the same as Digest
	// unless Platforms filtered its index.
	SourceDigest digest.Digest
	// Platforms are the platforms pushed ("linux/arm64"), when known.
	Platforms []string
	// Referrers is how many of its referrers went with it (in a dry run,
	// how many it has).
	Referrers int
	// MovedFrom is the digest the destination tag pointed at before the
	// push moved it; empty when the tag was new or already there.
	MovedFrom digest.Digest
	// Skipped says why the image was not pushed (TagSkip); empty when it was.
	Skipped string
	// Err is why the image failed, or nil.
	Err error
}

// DigestChanged reports whether the image was rewritten (platform
// filtering), so its digest in the target is not the bundle's.
func (p PushedImage) DigestChanged() bool { return p.Digest != p.SourceDigest }

// pushPlan is one image to push: where, and what graph from which source.
type pushPlan struct {
	img     bundle.Image
	repo    string // repository path below the registry host
	tag     string // "" for an image named by digest
	root    ocispec.Descriptor
	content []byte // the root's bytes
	src     transfer.Fetcher
	result  *PushedImage
	// referrers travel with the image (bundle.Reader.ReferrersOf).
	referrers []bundle.Referrer
}

// Push copies the bundle's images into the registry opts.To names: blobs,
// then platform manifests, then indexes, then the tag, each only if the
// registry lacks it (a manifest present implies its blobs are). Without
// Platforms every digest is preserved. A failed image does not stop the
// others unless FailFast; Push then returns the result and an error
// matching manifests.ErrImagesFailed. Errors before any image starts (bad options,
// registry unreachable, credentials refused) return a nil result.
func Push(ctx context.Context, r *bundle.Reader, opts PushOptions) (*PushResult, error) {
	start := time.Now()
	if err := transfer.CheckJobs(opts.Jobs); err != nil {
		return nil, err
	}
	host, prefix, err := parseDestination(opts.To)
	if err != nil {
		return nil, err
	}
	switch opts.OnExistingTag {
	case "", TagOverwrite, TagSkip, TagFail:
	default:
		return nil, fmt.Errorf("%w: on existing tag %q: want %s, %s or %s", manifests.ErrInvalidArgument, opts.OnExistingTag, TagOverwrite, TagSkip, TagFail)
	}
	images, err := manifests.SelectImages(r.Images(), bundle.ImageName, opts.Images)
	if err != nil {
		return nil, err
	}
	res := &PushResult{Images: make([]PushedImage, len(images))}
	plans := make([]*pushPlan, len(images))
	for i, img := range images {
		plans[i] = &pushPlan{img: img, result: &res.Images[i]}
		plans[i].prepare(ctx, r, host, prefix, opts)
	}
	if err := checkClashes(plans); err != nil {
		return nil, err
	}
	if opts.DryRun {
		res.took(start)
		return res, failure(res)
	}
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, opts.Timeout,
			fmt.Errorf("%w: the push took longer than its timeout (%v)", context.DeadlineExceeded, opts.Timeout))
		defer cancel()
	}
	client, err := remote.New(host, opts.Options)
	if err != nil {
		return nil, err
	}
	if err := client.Ping(ctx); err != nil {
		return nil, err
	}
	p := &pusher{remote: client, bundle: r, opts: opts, copiers: map[string]*repoCopier{}, referrers: planReferrers(plans)}
	if err := p.checkBase(ctx, plans); err != nil {
		return nil, err
	}
	p.run(ctx, plans)
	res.Stats = p.stats()
	res.Retried = client.Retried()
	res.took(start)
	if ctx.Err() != nil {
		return res, fmt.Errorf("push interrupted: %w", context.Cause(ctx))
	}
	return res, failure(res)
}

// checkClashes refuses, before anything is sent, two images that would go
// to one destination: one would silently replace the other.
func checkClashes(plans []*pushPlan) error {
	first := map[string]string{}
	var clashes []error
	for _, p := range plans {
		dest := p.result.Destination
		if p.result.Err != nil || dest == "" {
			continue
		}
		if other, ok := first[dest]; ok {
			clashes = append(clashes, fmt.Errorf("%s and %s both go to %s", other, p.img.Name, dest))
			continue
		}
		first[dest] = p.img.Name
	}
	if len(clashes) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w\nkeep the images apart with --keep-host, or give one of each pair another name (name: in the image list)",
		manifests.ErrInvalidArgument, errors.Join(clashes...))
}

func failure(res *PushResult) error {
	if n := len(res.Failed()); n > 0 {
		return fmt.Errorf("%d of %d images: %w", n, len(res.Images), manifests.ErrImagesFailed)
	}
	return nil
}

// parseDestination splits "host[/prefix]".
func parseDestination(to string) (host, prefix string, err error) {
	host, prefix, _ = strings.Cut(strings.TrimSuffix(to, "/"), "/")
	if host == "" {
		return "", "", fmt.Errorf("%w: no destination registry (--to host[/prefix])", manifests.ErrInvalidArgument)
	}
	if strings.Contains(host, "://") || strings.HasPrefix(prefix, "/") {
		return "", "", fmt.Errorf("%w: destination %q: want host[:port][/prefix], without a scheme", manifests.ErrInvalidArgument, to)
	}
	if _, err := name.NewRegistry(host); err != nil {
		return "", "", fmt.Errorf("%w: destination %q: %v", manifests.ErrInvalidArgument, to, err)
	}
	if prefix != "" {
		if err := remote.CheckRepositoryPath(prefix); err != nil {
			return "", "", fmt.Errorf("%w: destination %q: %v", manifests.ErrInvalidArgument, to, err)
		}
	}
	return host, prefix, nil
}

// prepare maps the image to its destination and reads (and, with
// Platforms, filters) its root, without network. It records errors in the
// plan's result.
func (p *pushPlan) prepare(ctx context.Context, r *bundle.Reader, host, prefix string, opts PushOptions) {
	p.result.Name = p.img.Name
	p.result.SourceDigest = p.img.Descriptor.Digest
	p.result.Digest = p.img.Descriptor.Digest
	p.referrers = imageReferrers(r, p.img, opts.Referrers)
	p.result.Referrers = len(p.referrers)
	if p.result.Err = p.mapName(host, prefix, opts.KeepHost); p.result.Err != nil {
		return
	}
	root := ocispec.Descriptor{MediaType: p.img.Descriptor.MediaType, Digest: p.img.Descriptor.Digest, Size: p.img.Descriptor.Size}
	if p.result.Err = p.filter(ctx, r, root, opts.Platforms); p.result.Err != nil {
		p.result.Err = fmt.Errorf("%s: %w", p.img.Name, p.result.Err)
		return
	}
	p.result.Digest = p.root.Digest
}

// mapName sets the destination repository and tag: host/prefix/path:tag,
// or host/prefix/srchost/path:tag with keepHost.
func (p *pushPlan) mapName(host, prefix string, keepHost bool) error {
	srcHost, repo, tag, err := manifests.SplitReference(p.img.Name)
	if err != nil {
		return fmt.Errorf("image %q in the bundle has no registry reference as its name: %w", p.img.Name, err)
	}
	if keepHost {
		repo = srcHost + "/" + repo
	}
	if prefix != "" {
		repo = prefix + "/" + repo
	}
	p.repo = repo
	if strings.HasPrefix(tag, "@") {
		p.result.Destination = host + "/" + repo + tag
	} else {
		p.tag = tag
		p.result.Destination = host + "/" + repo + ":" + tag
	}
	return nil
}

// filter sets the plan's root: the image's own, or with platforms a new
// index holding only those platforms (kept in memory over the bundle),
// by transfer.FilterPlatforms, the filter build uses too.
func (p *pushPlan) filter(ctx context.Context, r *bundle.Reader, root ocispec.Descriptor, platforms []ocispec.Platform) error {
	f, err := transfer.FilterPlatforms(ctx, r, root, platforms, false)
	p.root, p.src, p.content, p.result.Platforms = f.Root, f.Fetcher, f.Content, f.Platforms
	return err
}

// pusher runs the plans: one Copier per destination repository (so blobs
// shared by images of one repository go once), all on one Remote (so
// blobs shared across repositories are mounted).
type pusher struct {
	remote *remote.Client
	bundle *bundle.Reader
	opts   PushOptions

	mu      sync.Mutex
	copiers map[string]*repoCopier
	// referrers are the referrers to push, by destination repository.
	referrers map[string]*repoReferrers
}

type repoCopier struct {
	target *remote.Repository
	copier *transfer.Copier
}

func (p *pusher) run(ctx context.Context, plans []*pushPlan) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	fail := func(plan *pushPlan) {
		if p.opts.FailFast {
			cancel(fmt.Errorf("%w: --fail-fast after %s failed", context.Canceled, plan.img.Name))
		}
	}
	var g errgroup.Group
	g.SetLimit(transfer.Jobs(p.opts.Jobs))
	for _, plan := range plans {
		if plan.result.Err != nil {
			fail(plan)
			continue
		}
		g.Go(func() error {
			if ctx.Err() != nil {
				plan.result.Err = fmt.Errorf("not pushed: %w", context.Cause(ctx))
				return nil
			}
			if err := p.push(ctx, plan); err != nil {
				plan.result.Err = fmt.Errorf("push %s: %w", plan.result.Destination, err)
				fail(plan)
			}
			return nil
		})
	}
	_ = g.Wait() // errors are in the results
}

// push copies one image's graph, its referrers after their subjects,
// then tags it.
func (p *pusher) push(ctx context.Context, plan *pushPlan) error {
	rc, err := p.copier(plan.repo)
	if err != nil {
		return err
	}
	push, writeTag, err := p.checkTag(ctx, rc.target, plan)
	if err != nil || !push {
		return err
	}
	if err := rc.copier.Copy(ctx, plan.src, plan.root); err != nil {
		return err
	}
	if err := p.finishReferrers(ctx, plan, rc.target); err != nil {
		return err
	}
	if !writeTag {
		return nil
	}
	return rc.target.PutTag(ctx, plan.tag, plan.root, plan.content)
}

// checkTag applies OnExistingTag to a tag that points elsewhere already,
// and says whether to push the image and whether its tag must then be
// written (it is new, or moves): the tag is read once per push.
func (p *pusher) checkTag(ctx context.Context, target *remote.Repository, plan *pushPlan) (push, writeTag bool, err error) {
	if plan.tag == "" {
		return true, false, nil
	}
	old, exists, err := target.TagDigest(ctx, plan.tag)
	switch {
	case err != nil:
		return false, false, err
	case !exists:
		return true, true, nil
	case old == plan.root.Digest:
		return true, false, nil
	}
	switch p.opts.OnExistingTag {
	case TagSkip:
		plan.result.Skipped = fmt.Sprintf("%s already points at %s", plan.result.Destination, old)
		return false, false, nil
	case TagFail:
		return false, false, fmt.Errorf("%s: %w: it points at %s, not %s (--on-existing-tag=overwrite moves it)",
			plan.result.Destination, manifests.ErrAlreadyExists, old, plan.root.Digest)
	}
	plan.result.MovedFrom = old
	return true, true, nil
}

func (p *pusher) copier(repo string) (*repoCopier, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if rc, ok := p.copiers[repo]; ok {
		return rc, nil
	}
	// Only roots are ever rewritten: every blob a retried upload
	// re-reads is in the bundle.
	target, err := p.remote.Repository(repo, p.bundle)
	if err != nil {
		return nil, err
	}
	opts := transfer.Options{
		Jobs:                   p.opts.Jobs,
		TrustExistingManifests: true, // a registry refuses a manifest whose blobs are missing
		Observer:               p.opts.Observer,
	}
	if rr := p.referrers[repo]; rr != nil {
		opts.Predecessors = rr.predecessors
	}
	rc := &repoCopier{target: target, copier: transfer.NewCopier(target, opts)}
	p.copiers[repo] = rc
	return rc, nil
}

func (p *pusher) stats() transfer.Stats {
	var s transfer.Stats
	for _, rc := range p.copiers {
		c := rc.copier.Stats()
		s.Copied += c.Copied
		s.Skipped += c.Skipped
		s.Mounted += c.Mounted
		s.BytesCopied += c.BytesCopied
		s.BytesSkipped += c.BytesSkipped
	}
	return s
}
