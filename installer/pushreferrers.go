package installer

import (
	"context"
	"fmt"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/manifests"
)

// repoReferrers are the bundle's referrers bound for one repository, by
// subject, given to the repository's copy engine as the predecessors of
// their subjects (copied after them); reached records those it asked for.
type repoReferrers struct {
	bySubject map[digest.Digest][]ocispec.Descriptor

	mu      sync.Mutex
	reached map[digest.Digest]bool
}

// planReferrers groups the referrers of the plans' images by destination
// repository, each once.
func planReferrers(plans []*pushPlan) map[string]*repoReferrers {
	out := map[string]*repoReferrers{}
	seen := map[string]bool{}
	for _, plan := range plans {
		for _, ref := range plan.referrers {
			rr := out[plan.repo]
			if rr == nil {
				rr = &repoReferrers{bySubject: map[digest.Digest][]ocispec.Descriptor{}, reached: map[digest.Digest]bool{}}
				out[plan.repo] = rr
			}
			d := ref.Descriptor
			if key := plan.repo + "@" + d.Digest.String(); !seen[key] {
				seen[key] = true
				rr.bySubject[ref.Subject] = append(rr.bySubject[ref.Subject], ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size})
			}
		}
	}
	return out
}

// predecessors is the transfer.PredecessorsFunc of the repository's copies.
func (rr *repoReferrers) predecessors(_ context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	refs := rr.bySubject[desc.Digest]
	rr.mu.Lock()
	for _, d := range refs {
		rr.reached[d.Digest] = true
	}
	rr.mu.Unlock()
	return refs, nil
}

func (rr *repoReferrers) wasReached(d digest.Digest) bool {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return rr.reached[d]
}

// finishReferrers runs once the image's graph, its referrers' included,
// is in the repository: it tags the manifests of cosign's tag scheme and
// counts the referrers that went. A referrer whose subject was not pushed
// (an index that --platform rewrote) stays behind.
func (p *pusher) finishReferrers(ctx context.Context, plan *pushPlan, target tagger) error {
	rr := p.referrers[plan.repo]
	plan.result.Referrers = 0
	for _, ref := range plan.referrers {
		if rr == nil || !rr.wasReached(ref.Descriptor.Digest) {
			continue
		}
		plan.result.Referrers++
		if ref.Tag == "" {
			continue
		}
		content, err := p.bundle.ReadAll(ctx, ref.Descriptor)
		if err != nil {
			return fmt.Errorf("referrer %s: %w", ref.Descriptor.Digest, err)
		}
		if err := target.Tag(ctx, ref.Tag, ref.Descriptor, content); err != nil {
			return fmt.Errorf("referrer %s as %s: %w", ref.Descriptor.Digest, ref.Tag, err)
		}
	}
	return nil
}

// tagger points a tag at a manifest (remote.Repository).
type tagger interface {
	Tag(ctx context.Context, tag string, desc ocispec.Descriptor, content []byte) error
}

// imageReferrers are the referrers that travel with img, unless mode is none.
func imageReferrers(r *bundle.Reader, img bundle.Image, mode manifests.ReferrersMode) []bundle.Referrer {
	if mode == manifests.ReferrersNone {
		return nil
	}
	return r.ReferrersOf(img.Name)
}
