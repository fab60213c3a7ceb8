package bundle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// VerifyOptions tune Verify. The zero value is the fast check.
type VerifyOptions struct {
	// Full hashes every blob of the bundle. Without it Verify checks the
	// graph only: every descriptor reachable from index.json is present with
	// its size, and every index and manifest (small) hashes to its digest.
	Full bool
	// Jobs bounds the blobs hashed at once; 0 means one per CPU.
	Jobs int
}

// VerifyReport says what Verify checked and what it found wrong.
type VerifyReport struct {
	// Full says whether every blob was hashed.
	Full   bool `json:"full"`
	Images int  `json:"images"`
	// Blobs and Bytes count the blob entries of the bundle.
	Blobs int   `json:"blobs"`
	Bytes int64 `json:"bytes"`
	// Problems lists what is wrong, by digest; empty when the bundle is good.
	Problems []Problem `json:"problems"`
	// Delta, for a delta read without its bases, counts the blobs it
	// borrows, which Verify cannot check.
	Delta *DeltaReport `json:"delta,omitempty"`
}

// Problem is one thing wrong with a bundle: a blob that is missing, has the
// wrong size or bytes, or cannot be parsed, or an index.json entry.
type Problem struct {
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType,omitempty"`
	// Images are the images that use the blob (none for a blob that no
	// image reaches).
	Images []string `json:"images"`
	// What says what is wrong.
	What string `json:"problem"`
	// Err is the cause: it wraps ErrBlobNotFound, ErrInvalidBundle,
	// manifests.ErrDigestMismatch, manifests.ErrSizeMismatch,
	// manifests.ErrInvalidManifest, manifests.ErrManifestTooLarge,
	// manifests.ErrTooDeep or manifests.ErrInvalidReference (an image name).
	Err error `json:"-"`
}

// Error describes the problem in one line, naming the blob and its images.
func (p Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.Digest.String())
	if p.MediaType != "" {
		fmt.Fprintf(&b, " (%s)", p.MediaType)
	}
	if len(p.Images) > 0 {
		fmt.Fprintf(&b, " used by %s", strings.Join(p.Images, ", "))
	}
	return b.String() + ": " + p.What
}

// Unwrap returns the cause.
func (p Problem) Unwrap() error { return p.Err }

// Verify checks the bundle r: every descriptor reachable from index.json is
// present with the right size, every index and manifest parses and hashes
// to its digest, every image has a unique name and, with opts.Full, every
// blob's bytes hash to its digest. It reads blobs in place, opts.Jobs at a
// time.
//
// When it finds problems it returns the report and an error that wraps
// ErrVerifyFailed and every problem's Err, and names the first few bad
// blobs and their images. Other errors (cancellation, say) return no report.
func Verify(ctx context.Context, r *Reader, opts VerifyOptions) (*VerifyReport, error) {
	if err := transfer.CheckJobs(opts.Jobs); err != nil {
		return nil, err
	}
	g, err := r.walkGraph(ctx)
	if err != nil {
		return nil, err
	}
	rep := &VerifyReport{Full: opts.Full, Images: len(g.images), Delta: g.deltaReport(r)}
	rep.Blobs, rep.Bytes = r.totals()
	if opts.Full {
		if err := g.hashAll(ctx, r, r.Digests(), opts.Jobs); err != nil {
			return nil, err
		}
	}
	g.checkNames()
	rep.Problems = g.problems()
	if len(rep.Problems) > 0 {
		return rep, &verifyError{rep.Problems}
	}
	return rep, nil
}

// verifyError is Verify's failure: ErrVerifyFailed and every problem.
type verifyError struct{ problems []Problem }

// maxNamedProblems bounds how many problems a verifyError message names.
const maxNamedProblems = 5

func (e *verifyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problem(s): ", ErrVerifyFailed, len(e.problems))
	for i, p := range e.problems {
		if i == maxNamedProblems {
			fmt.Fprintf(&b, "; and %d more", len(e.problems)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Error())
	}
	return b.String()
}

func (e *verifyError) Unwrap() []error {
	errs := []error{ErrVerifyFailed}
	for _, p := range e.problems {
		errs = append(errs, p)
	}
	return errs
}

// graph is what a walk of every image of a bundle learned: each reachable
// blob once, the images that use it, and what is wrong with it.
type graph struct {
	mu     sync.Mutex
	nodes  map[digest.Digest]*node
	images []imageNodes
	extra  []Problem // problems not tied to one reachable blob
}

type node struct {
	desc   ocispec.Descriptor
	images []string
	// checked is set once the blob's bytes were hashed.
	checked bool
	// borrowed is set for a blob a delta leaves to its bases.
	borrowed bool
	err      error
}

// imageNodes is an image and every blob it reaches, its root included.
type imageNodes struct {
	Image
	blobs []digest.Digest
	// root is the root index or manifest's content, nil if unread.
	root []byte
}

// walkGraph visits every blob reachable from index.json (the images, then
// their referrers) with a keep-going transfer.Walker, checking each
// descriptor against the tar and reading (and hashing) each index and
// manifest once. It does not stop at a bad blob: it records what is wrong
// and goes on, so Verify can list every problem.
func (r *Reader) walkGraph(ctx context.Context) (*graph, error) {
	g := &graph{nodes: map[digest.Digest]*node{}}
	w := &transfer.Walker{Src: r, KeepGoing: true, Failed: func(desc ocispec.Descriptor, err error) {
		n := g.node(r, desc)
		if n.borrowed || n.err != nil {
			return
		}
		var ce *transfer.CopyError
		if errors.As(err, &ce) {
			err = ce.Err
		}
		if n.err = r.checkDescriptor(desc); n.err == nil {
			n.err = err
		}
	}}
	for _, img := range r.images {
		in, err := g.walk(ctx, w, r, img)
		if err != nil {
			return nil, err
		}
		g.images = append(g.images, in)
	}
	for _, ref := range r.referrers {
		if _, err := g.walk(ctx, w, r, Image{Name: ref.Image, Descriptor: ref.Descriptor}); err != nil {
			return nil, err
		}
	}
	g.checkReferrers(r.referrers)
	return g, nil
}

// walk visits every blob reachable from root, recording root.Name (the
// image, or the image a referrer travels with) as a user of each.
func (g *graph) walk(ctx context.Context, w *transfer.Walker, r *Reader, root Image) (imageNodes, error) {
	in := imageNodes{Image: root}
	err := w.Walk(ctx, root.Descriptor, func(desc ocispec.Descriptor, content []byte) error {
		n := g.node(r, desc)
		if n.err == nil && !n.borrowed {
			n.err = r.checkDescriptor(desc)
		}
		n.checked = n.checked || content != nil
		if !slices.Contains(n.images, root.Name) {
			n.images = append(n.images, root.Name)
		}
		if desc.Digest == root.Descriptor.Digest {
			in.root = content
		}
		in.blobs = append(in.blobs, desc.Digest)
		return nil
	})
	return in, err
}

// node returns the graph's node of desc, made on first sight.
func (g *graph) node(r *Reader, desc ocispec.Descriptor) *node {
	n := g.nodes[desc.Digest]
	if n == nil {
		n = &node{desc: desc, borrowed: r.borrows(desc)}
		g.nodes[desc.Digest] = n
	}
	return n
}

// checkDescriptor checks that the bundle holds desc's blob with its size.
func (r *Reader) checkDescriptor(desc ocispec.Descriptor) error {
	size, ok := r.Size(desc.Digest)
	if !ok {
		return ErrBlobNotFound
	}
	if size != desc.Size {
		return fmt.Errorf("%w: bundle has %d bytes, descriptor says %d", manifests.ErrSizeMismatch, size, desc.Size)
	}
	return nil
}

// hashAll hashes every blob not checked yet, jobs at a time, and records
// the ones whose bytes do not match their digest.
func (g *graph) hashAll(ctx context.Context, r *Reader, digests []digest.Digest, jobs int) error {
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(transfer.Jobs(jobs))
	for _, d := range digests {
		if n := g.nodes[d]; n != nil && (n.checked || n.err != nil) {
			continue
		}
		eg.Go(func() error {
			buf := hashBuffers.Get().(*[]byte)
			defer hashBuffers.Put(buf)
			got, err := r.hash(ectx, d, *buf)
			if err := ectx.Err(); err != nil {
				return err
			}
			if err == nil && got != d {
				err = fmt.Errorf("%w: content hashes to %s", manifests.ErrDigestMismatch, got)
			}
			if err != nil {
				g.record(d, err)
			}
			return nil
		})
	}
	return eg.Wait()
}

// hashBuffers are the read buffers of hashAll, reused across calls.
var hashBuffers = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// hash streams a blob through its digest's hash.
func (r *Reader) hash(ctx context.Context, d digest.Digest, buf []byte) (digest.Digest, error) {
	sr, err := r.Blob(d)
	if err != nil {
		return "", err
	}
	dg := d.Algorithm().Digester()
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n, err := sr.Read(buf)
		dg.Hash().Write(buf[:n])
		if err == io.EOF {
			return dg.Digest(), nil
		}
		if err != nil {
			return "", err
		}
	}
}

// record notes a problem found by hashing blob d.
func (g *graph) record(d digest.Digest, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n := g.nodes[d]; n != nil {
		n.err = err
		return
	}
	g.extra = append(g.extra, Problem{Digest: d, Images: nonEmpty(), What: err.Error(), Err: err})
}

// checkNames records index.json entries without a name, with a name that
// is not an image reference, or with a name another entry has.
func (g *graph) checkNames() {
	seen := map[string]bool{}
	for _, img := range g.images {
		var err error
		switch {
		case img.Name == "":
			err = fmt.Errorf("%w: index.json entry has neither %s nor %s", ErrInvalidBundle, AnnotationContainerdName, AnnotationRefName)
		case seen[img.Name]:
			err = fmt.Errorf("%w: index.json names %s more than once", ErrInvalidBundle, img.Name)
		default:
			_, err = manifests.NormalizeReference(img.Name)
		}
		seen[img.Name] = true
		if err != nil {
			d := img.Descriptor
			g.extra = append(g.extra, Problem{Digest: d.Digest, MediaType: d.MediaType, Images: nonEmpty(img.Name), What: err.Error(), Err: err})
		}
	}
}

// problems lists every problem found, sorted by digest.
func (g *graph) problems() []Problem {
	out := append([]Problem{}, g.extra...)
	for d, n := range g.nodes {
		if n.err != nil {
			out = append(out, Problem{Digest: d, MediaType: n.desc.MediaType, Images: nonEmpty(n.images...), What: n.err.Error(), Err: n.err})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Digest < out[j].Digest })
	return out
}

// nonEmpty lists the names that are not empty, as a non-nil slice.
func nonEmpty(names ...string) []string {
	out := []string{}
	for _, n := range names {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}
