package installer

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-oci/ferry/internal/transfer"
)

// checkBase refuses the push of a delta, before anything is sent, when
// the registry lacks blobs it borrows. A borrowed blob is looked for in
// the repositories of the images that use it, then in the push's other
// repositories (the registry mounts it from where it is found).
func (p *pusher) checkBase(ctx context.Context, plans []*pushPlan) error {
	if len(p.bundle.Bases()) == 0 {
		return nil
	}
	blobs, reposOf, allRepos, err := p.borrowed(ctx, plans)
	if err != nil {
		return err
	}
	var missing atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(p.opts.Jobs, transfer.DefaultJobs))
	for _, desc := range blobs {
		g.Go(func() error {
			found, err := p.foundIn(gctx, desc, append(reposOf[desc.Digest], allRepos...))
			if !found && err == nil {
				missing.Add(1)
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if n := int(missing.Load()); n > 0 {
		return p.bundle.BaseAbsentError("push", p.remote.Host(), n, len(blobs))
	}
	return nil
}

// borrowed walks the plans' graphs as the push will, and returns the blobs
// they borrow, the repositories of the images that use each, and every
// repository of the push.
func (p *pusher) borrowed(ctx context.Context, plans []*pushPlan) ([]ocispec.Descriptor, map[digest.Digest][]string, []string, error) {
	var blobs []ocispec.Descriptor
	reposOf := map[digest.Digest][]string{}
	var allRepos []string
	for _, plan := range plans {
		if plan.result.Err != nil {
			continue
		}
		if !slices.Contains(allRepos, plan.repo) {
			allRepos = append(allRepos, plan.repo)
		}
		err := p.bundle.WalkBorrowed(ctx, plan.src, plan.root, nil, func(desc ocispec.Descriptor) error {
			if _, seen := reposOf[desc.Digest]; !seen {
				blobs = append(blobs, desc)
			}
			if !slices.Contains(reposOf[desc.Digest], plan.repo) {
				reposOf[desc.Digest] = append(reposOf[desc.Digest], plan.repo)
			}
			return nil
		})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s: %w", plan.img.Name, err)
		}
	}
	return blobs, reposOf, allRepos, nil
}

// foundIn reports whether one of repos holds the blob; a HEAD that finds
// it lets the copy mount it from there.
func (p *pusher) foundIn(ctx context.Context, desc ocispec.Descriptor, repos []string) (bool, error) {
	tried := map[string]bool{}
	for _, repo := range repos {
		if tried[repo] {
			continue
		}
		tried[repo] = true
		rc, err := p.copier(repo)
		if err != nil {
			return false, err
		}
		if ok, err := rc.target.Exists(ctx, desc); ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}
