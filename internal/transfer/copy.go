package transfer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-oci/ferry/manifests"
)

// Copier copies image graphs into one target. Copies may run concurrently
// from different sources: a blob that several graphs share is copied once,
// even while they are in flight together, and Jobs bounds the blobs moving
// across all of them.
type Copier struct {
	dst  Target
	opts Options
	lim  Limit

	mu    sync.Mutex
	nodes map[nodeKey]*node

	copied, skipped, mounted  atomic.Int64
	bytesCopied, bytesSkipped atomic.Int64
}

// nodeKey names a node by digest and declared size: descriptors that
// declare one blob with different sizes are copied (and fail) apart, so a
// graph that declares a wrong size never passes on the back of another
// graph's right one, nor fails it.
type nodeKey struct {
	digest digest.Digest
	size   int64
}

// node is one blob's copy, shared by every graph that reaches it. A copy
// whose own context ended (its graph failed elsewhere, or was cancelled)
// is forgotten, never cached: cancelled tells waiters to copy it again
// under their own context.
type node struct {
	done      chan struct{}
	err       error
	cancelled bool
}

// NewCopier returns a Copier into dst.
func NewCopier(dst Target, opts Options) *Copier {
	return &Copier{dst: dst, opts: opts, lim: NewLimit(opts.Jobs), nodes: map[nodeKey]*node{}}
}

// Copy copies the graph below root from src to the target.
func Copy(ctx context.Context, src Fetcher, dst Target, root ocispec.Descriptor, opts Options) (Stats, error) {
	c := NewCopier(dst, opts)
	err := c.Copy(ctx, src, root)
	return c.Stats(), err
}

// Copy copies the graph below root from src to the Copier's target.
func (c *Copier) Copy(ctx context.Context, src Fetcher, root ocispec.Descriptor) error {
	return c.copyNode(ctx, src, root, 1)
}

// Stats returns what the Copier has done so far.
func (c *Copier) Stats() Stats {
	return Stats{
		Copied:       int(c.copied.Load()),
		Skipped:      int(c.skipped.Load()),
		Mounted:      int(c.mounted.Load()),
		BytesCopied:  c.bytesCopied.Load(),
		BytesSkipped: c.bytesSkipped.Load(),
	}
}

// copyNode copies desc and its subgraph once, however many parents reach
// it. The Copier's node cache is shared across graphs, but a failure is
// kept only when it is the blob's own (bad bytes, a refusing target): a
// copy cut short by its graph's context is dropped from the cache, and a
// graph waiting for it copies the blob itself.
// depth counts the levels from the root (1) down to desc.
func (c *Copier) copyNode(ctx context.Context, src Fetcher, desc ocispec.Descriptor, depth int) error {
	if err := desc.Digest.Validate(); err != nil {
		return &CopyError{Op: "read", Origin: Source, Desc: desc, Err: err}
	}
	key := nodeKey{desc.Digest, desc.Size}
	for {
		c.mu.Lock()
		n, seen := c.nodes[key]
		if !seen {
			n = &node{done: make(chan struct{})}
			c.nodes[key] = n
		}
		c.mu.Unlock()
		if !seen {
			return c.own(ctx, src, desc, depth, n)
		}
		select {
		case <-n.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !n.cancelled {
			return n.err
		}
	}
}

// own copies the node this graph created, then its predecessors, and
// publishes the outcome.
func (c *Copier) own(ctx context.Context, src Fetcher, desc ocispec.Descriptor, depth int, n *node) error {
	err := c.copyOnce(ctx, src, desc, depth)
	if err == nil {
		err = c.copyPredecessors(ctx, src, desc, depth)
	}
	n.err = err
	if err != nil && ctx.Err() != nil {
		n.cancelled = true
		c.mu.Lock()
		delete(c.nodes, nodeKey{desc.Digest, desc.Size})
		c.mu.Unlock()
	}
	close(n.done)
	return err
}

func (c *Copier) copyOnce(ctx context.Context, src Fetcher, desc ocispec.Descriptor, depth int) error {
	exists, err := c.dst.Exists(ctx, desc)
	if err != nil {
		return &CopyError{Op: "check", Origin: Destination, Desc: desc, Err: err}
	}
	graphNode := manifests.IsGraphNode(desc.MediaType)
	if graphNode && depth > manifests.MaxDepth {
		return tooDeep(desc)
	}
	if exists && (!graphNode || c.opts.TrustExistingManifests) {
		c.done(desc, Skipped)
		if graphNode && c.opts.Predecessors != nil {
			return c.predecessorsBelow(ctx, src, desc, depth)
		}
		return nil
	}
	if !graphNode {
		return c.copyBlob(ctx, src, desc)
	}
	content, err := c.fetchManifest(ctx, src, desc)
	if err != nil {
		return err
	}
	if err := c.copyChildren(ctx, src, desc, content, depth); err != nil {
		return err
	}
	if exists {
		c.done(desc, Skipped)
		return nil
	}
	return c.push(ctx, desc, bytes.NewReader(content))
}

func (c *Copier) copyChildren(ctx context.Context, src Fetcher, desc ocispec.Descriptor, content []byte, depth int) error {
	return c.copyChildrenIf(ctx, src, desc, content, depth, func(ocispec.Descriptor) bool { return true })
}

// copyChildrenIf copies the children of desc that keep says.
func (c *Copier) copyChildrenIf(ctx context.Context, src Fetcher, desc ocispec.Descriptor, content []byte, depth int, keep func(ocispec.Descriptor) bool) error {
	children, err := manifests.Children(desc, content)
	if err != nil {
		return &CopyError{Op: "parse", Origin: Source, Desc: desc, Err: err}
	}
	if c.opts.Select != nil {
		if children, err = c.opts.Select(ctx, desc, children); err != nil {
			return err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, child := range children {
		if keep(child) {
			g.Go(func() error { return c.copyNode(gctx, src, child, depth+1) })
		}
	}
	return g.Wait()
}

// predecessorsBelow visits the indexes and manifests below a trusted one
// the target has, so that their referrers are copied too (the target may
// have an image without its signatures).
func (c *Copier) predecessorsBelow(ctx context.Context, src Fetcher, desc ocispec.Descriptor, depth int) error {
	content, err := c.fetchManifest(ctx, src, desc)
	if err != nil {
		return err
	}
	return c.copyChildrenIf(ctx, src, desc, content, depth, func(d ocispec.Descriptor) bool { return manifests.IsGraphNode(d.MediaType) })
}

// copyPredecessors copies the referrers of an index or manifest that is
// in the target, one after the other: referrers of one subject may share
// the target's record of them (the referrers tag schema).
func (c *Copier) copyPredecessors(ctx context.Context, src Fetcher, desc ocispec.Descriptor, depth int) error {
	if c.opts.Predecessors == nil || !manifests.IsGraphNode(desc.MediaType) {
		return nil
	}
	preds, err := c.opts.Predecessors(ctx, desc)
	if err != nil {
		return &CopyError{Op: "referrers", Origin: Source, Desc: desc, Err: err}
	}
	for _, p := range preds {
		if err := c.copyNode(ctx, src, p, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// fetchManifest reads and verifies an index or manifest.
func (c *Copier) fetchManifest(ctx context.Context, src Fetcher, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Size > manifests.MaxManifestSize {
		return nil, &CopyError{Op: "read", Origin: Source, Desc: desc, Err: manifests.ErrManifestTooLarge}
	}
	release, err := c.lim.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	content, err := FetchAll(ctx, src, desc)
	if err != nil {
		return nil, &CopyError{Op: "read", Origin: Source, Desc: desc, Err: err}
	}
	return content, nil
}

func (c *Copier) copyBlob(ctx context.Context, src Fetcher, desc ocispec.Descriptor) error {
	if m, ok := c.dst.(Mounter); ok {
		mounted, err := m.Mount(ctx, desc)
		if err != nil {
			return &CopyError{Op: "mount", Origin: Destination, Desc: desc, Err: err}
		}
		if mounted {
			c.done(desc, Mounted)
			return nil
		}
	}
	release, err := c.lim.Acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	rc, err := src.Fetch(ctx, desc)
	if err != nil {
		return &CopyError{Op: "read", Origin: Source, Desc: desc, Err: err}
	}
	defer rc.Close()
	return c.pushLocked(ctx, desc, rc)
}

// push writes a blob whose bytes are at hand (an index or manifest).
func (c *Copier) push(ctx context.Context, desc ocispec.Descriptor, content io.Reader) error {
	release, err := c.lim.Acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	return c.pushLocked(ctx, desc, content)
}

// pushLocked sends content to the target through a VerifyReader; the caller
// holds a job slot.
func (c *Copier) pushLocked(ctx context.Context, desc ocispec.Descriptor, content io.Reader) error {
	if c.opts.Observer != nil {
		c.opts.Observer.Started(desc)
		content = &observedReader{r: content, desc: desc, obs: c.opts.Observer}
	}
	vr := NewVerifyReader(content, desc)
	err := c.dst.Push(ctx, desc, vr)
	if errors.Is(err, ErrMounted) {
		c.done(desc, Mounted)
		return nil
	}
	if err != nil {
		origin := Destination
		if vr.err != nil && vr.err != io.EOF {
			origin = Source
		}
		return &CopyError{Op: "write", Origin: origin, Desc: desc, Err: err}
	}
	if err := vr.Verify(); err != nil {
		return &CopyError{Op: "write", Origin: Source, Desc: desc, Err: err}
	}
	c.done(desc, Copied)
	return nil
}

func (c *Copier) done(desc ocispec.Descriptor, status Status) {
	switch status {
	case Copied:
		c.copied.Add(1)
		c.bytesCopied.Add(desc.Size)
	case Skipped:
		c.skipped.Add(1)
		c.bytesSkipped.Add(desc.Size)
	case Mounted:
		c.mounted.Add(1)
		c.bytesSkipped.Add(desc.Size)
	}
	if c.opts.Observer != nil {
		c.opts.Observer.Done(desc, status)
	}
}

// FetchAll reads a whole small blob (an index, manifest or config) and
// verifies it against desc. It refuses blobs over manifests.MaxManifestSize.
func FetchAll(ctx context.Context, src Fetcher, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Size > manifests.MaxManifestSize {
		return nil, fmt.Errorf("%s: %w", desc.Digest, manifests.ErrManifestTooLarge)
	}
	if err := desc.Digest.Validate(); err != nil {
		return nil, err
	}
	rc, err := src.Fetch(ctx, desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(NewVerifyReader(rc, desc))
}

type observedReader struct {
	r    io.Reader
	desc ocispec.Descriptor
	obs  Observer
}

func (o *observedReader) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	if n > 0 {
		o.obs.Transferred(o.desc, int64(n))
	}
	return n, err
}
