package transfer

import (
	"context"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/manifests"
)

// VisitFunc is called once per node of a walk. content holds the bytes of
// indexes and manifests, and is nil for other blobs (and, in a keep-going
// walk, for an index or manifest that could not be read).
type VisitFunc func(desc ocispec.Descriptor, content []byte) error

// EdgesFunc returns the nodes reachable from an index or manifest besides
// its children (a subject's referrers, say). They are walked after the
// children, with the same rules.
type EdgesFunc func(ctx context.Context, desc ocispec.Descriptor, content []byte) ([]ocispec.Descriptor, error)

// Walker is ferry's one graph walker: it visits every node below a root
// once per walk, parents before children, reading and verifying indexes and
// manifests from Src. One Walker reads each index or manifest once across
// all its walks. The zero value of every field but Src works.
type Walker struct {
	Src Fetcher
	// Select, when set, filters the children of each index and manifest
	// as in a copy.
	Select SelectFunc
	// Edges, when set, adds edges besides the children.
	Edges EdgesFunc
	// KeepGoing makes a node that cannot be read or parsed a problem
	// passed to Failed rather than the end of the walk: the node is still
	// visited (with nil content) and the walk goes on with the others, as
	// verify needs to list every problem.
	KeepGoing bool
	// Failed receives each such problem in a keep-going walk.
	Failed func(desc ocispec.Descriptor, err error)

	mu   sync.Mutex
	read map[digest.Digest]readNode
}

// readNode is what reading one index or manifest gave.
type readNode struct {
	content []byte
	next    []ocispec.Descriptor
	err     error
}

// Walk visits every node of the graph below root from src once, parents
// before children; sel, when set, filters children as in a copy.
func Walk(ctx context.Context, src Fetcher, root ocispec.Descriptor, sel SelectFunc, visit VisitFunc) error {
	w := &Walker{Src: src, Select: sel}
	return w.Walk(ctx, root, visit)
}

// Walk visits every node below root once, parents before children.
func (w *Walker) Walk(ctx context.Context, root ocispec.Descriptor, visit VisitFunc) error {
	seen := map[digest.Digest]bool{}
	var walk func(desc ocispec.Descriptor, depth int) error
	walk = func(desc ocispec.Descriptor, depth int) error {
		if seen[desc.Digest] {
			return nil
		}
		seen[desc.Digest] = true
		if err := ctx.Err(); err != nil {
			return err
		}
		if !manifests.IsGraphNode(desc.MediaType) {
			return visit(desc, nil)
		}
		n := readNode{err: tooDeep(desc)}
		if depth <= manifests.MaxDepth {
			n = w.readNode(ctx, desc)
		}
		if n.err != nil && !w.KeepGoing {
			return n.err
		}
		if n.err != nil && w.Failed != nil {
			w.Failed(desc, n.err)
		}
		if err := visit(desc, n.content); err != nil {
			return err
		}
		for _, next := range n.next {
			if err := walk(next, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(root, 1)
}

// tooDeep is the error of an index or manifest below MaxDepth levels.
func tooDeep(desc ocispec.Descriptor) error {
	return &CopyError{Op: "read", Origin: Source, Desc: desc, Err: manifests.ErrTooDeep}
}

// readNode reads an index or manifest and the nodes after it, once per Walker.
func (w *Walker) readNode(ctx context.Context, desc ocispec.Descriptor) readNode {
	w.mu.Lock()
	n, ok := w.read[desc.Digest]
	w.mu.Unlock()
	if ok {
		return n
	}
	n = w.readFresh(ctx, desc)
	if ctx.Err() == nil {
		w.mu.Lock()
		if w.read == nil {
			w.read = map[digest.Digest]readNode{}
		}
		w.read[desc.Digest] = n
		w.mu.Unlock()
	}
	return n
}

func (w *Walker) readFresh(ctx context.Context, desc ocispec.Descriptor) readNode {
	content, err := FetchAll(ctx, w.Src, desc)
	if err != nil {
		return readNode{err: &CopyError{Op: "read", Origin: Source, Desc: desc, Err: err}}
	}
	next, err := manifests.Children(desc, content)
	if err != nil {
		return readNode{content: content, err: &CopyError{Op: "parse", Origin: Source, Desc: desc, Err: err}}
	}
	if w.Select != nil {
		if next, err = w.Select(ctx, desc, next); err != nil {
			return readNode{content: content, err: err}
		}
	}
	if w.Edges != nil {
		more, err := w.Edges(ctx, desc, content)
		if err != nil {
			return readNode{content: content, err: err}
		}
		next = append(next, more...)
	}
	return readNode{content: content, next: next}
}
