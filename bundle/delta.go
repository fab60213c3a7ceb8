package bundle

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// AnnotationBases marks a delta bundle. Set on index.json itself, it lists
// the digests of the index.json files of the bundles the delta was built
// on (its bases), comma-separated. A delta lists every image in index.json
// and holds every index, manifest and config, but only the other blobs
// (layers) that no base holds; its bases hold the rest.
const AnnotationBases = "io.github.ferry-oci.bundle.bases"

// identity is what a Reader knows of the bundle files it reads.
type identity struct {
	// name is the file's path, for messages; empty from NewReader.
	name string
	// digest is the digest of index.json, which names the bundle.
	digest digest.Digest
	// modTime is index.json's entry time (ferry gives every entry one).
	modTime time.Time
	// bases are the bases a delta records; nil for a full bundle and a union.
	bases []digest.Digest
	// parts are a union's bundles, bases before their deltas; nil for one file.
	parts []*Reader
}

// readDelta learns the bundle's digest and, for a delta, its bases.
func (r *Reader) readDelta(indexJSON []byte) error {
	r.digest = digest.FromBytes(indexJSON)
	v, ok := r.index.Annotations[AnnotationBases]
	if !ok {
		return nil
	}
	for _, s := range strings.Split(v, ",") {
		d, err := digest.Parse(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%w: index.json annotation %s: %q: %v", ErrInvalidBundle, AnnotationBases, s, err)
		}
		r.bases = append(r.bases, d)
	}
	return nil
}

// Digest returns the digest of the bundle's index.json, which names the
// bundle: it is what a delta records of its bases. A union has none.
func (r *Reader) Digest() digest.Digest { return r.digest }

// Bases returns the digests of the bundles r is a delta of, or nil when r
// is a full bundle or a union (which holds its deltas' bases).
func (r *Reader) Bases() []digest.Digest { return append([]digest.Digest(nil), r.bases...) }

// ModTime returns the time of the bundle's index.json entry, which ferry
// gives every entry (a union: its last bundle's).
func (r *Reader) ModTime() time.Time { return r.modTime }

// Name returns the bundle's path ("a.tar + b.tar" for a union), or its
// digest when it was not opened from a file.
func (r *Reader) Name() string {
	if r.parts != nil {
		names := make([]string, len(r.parts))
		for i, p := range r.parts {
			names[i] = p.Name()
		}
		return strings.Join(names, " + ")
	}
	if r.name != "" {
		return r.name
	}
	return r.digest.String()
}

// CheckComplete returns nil unless r is a delta read without its bases,
// which cannot be served, merged or built from alone; then it returns an
// error wrapping ErrLoneDelta that names the bases to add.
func (r *Reader) CheckComplete() error {
	if len(r.bases) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %w: it holds only the blobs its base lacks; give its base (bundle %s) before it "+
		"on the command line, or make a full bundle with ferry merge BASE DELTA -b FULL.tar",
		r.Name(), ErrLoneDelta, joinDigests(r.bases))
}

// Union reads bundles as one: the images of all of them (a later bundle's
// image wins over an earlier one of the same name) and every blob once. It
// is how a delta is read with its bases, which must come before it: each
// delta among rs must find every base it records among the bundles before
// it, holding every blob it borrows (ErrBaseMismatch, ErrIncompleteBase,
// ErrLoneDelta otherwise). Closing the union closes rs.
func Union(ctx context.Context, rs ...*Reader) (*Reader, error) {
	u := &Reader{blobs: map[digest.Digest]entry{}}
	for _, r := range rs {
		if r.parts != nil {
			u.parts = append(u.parts, r.parts...)
		} else {
			u.parts = append(u.parts, r)
		}
	}
	if len(u.parts) == 0 {
		return nil, fmt.Errorf("%w: no bundles to read", ErrNotBundle)
	}
	byName := map[string]int{}
	owner := map[string]*Reader{} // the part whose image of a name wins
	for _, p := range u.parts {
		for d, e := range p.blobs {
			if _, dup := u.blobs[d]; !dup {
				u.blobs[d] = e
			}
		}
		for _, img := range p.images {
			owner[img.Name] = p
			if i, dup := byName[img.Name]; dup && img.Name != "" {
				u.images[i] = img
				continue
			}
			byName[img.Name] = len(u.images)
			u.images = append(u.images, img)
		}
	}
	sort.SliceStable(u.images, func(i, j int) bool { return u.images[i].Name < u.images[j].Name })
	u.index = ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	u.index.SchemaVersion = 2
	for _, img := range u.images {
		u.index.Manifests = append(u.index.Manifests, img.Descriptor)
	}
	u.referrers = unionReferrers(u.parts, owner)
	for _, ref := range u.referrers {
		u.index.Manifests = append(u.index.Manifests, ref.Descriptor)
	}
	sortIndex(u.index.Manifests)
	u.modTime = u.parts[len(u.parts)-1].modTime
	if err := u.checkBases(ctx); err != nil {
		return nil, err
	}
	for _, r := range rs {
		u.closers = append(u.closers, r.Close)
	}
	return u, nil
}

// OpenAll opens the bundles at paths and reads them as one (Union): a
// delta after its bases, or several releases served together. One path
// opens that bundle, which must not be a delta without its bases.
func OpenAll(ctx context.Context, paths []string, opts ...OpenOption) (*Reader, error) {
	var rs []*Reader
	closeAll := func() {
		for _, r := range rs {
			r.Close()
		}
	}
	for _, p := range paths {
		r, err := Open(ctx, p, opts...)
		if err != nil {
			closeAll()
			return nil, err
		}
		rs = append(rs, r)
	}
	if len(rs) == 1 {
		if err := rs[0].CheckComplete(); err != nil {
			closeAll()
			return nil, err
		}
		return rs[0], nil
	}
	u, err := Union(ctx, rs...)
	if err != nil {
		closeAll()
		return nil, err
	}
	return u, nil
}

// checkBases checks that every delta of the union comes after its bases
// and that they hold what it borrows.
func (u *Reader) checkBases(ctx context.Context) error {
	if len(u.parts) == 1 {
		return u.parts[0].CheckComplete()
	}
	before := map[digest.Digest]bool{}
	for i, p := range u.parts {
		for _, b := range p.bases {
			if !before[b] {
				return u.baseError(p, b, i)
			}
		}
		before[p.digest] = true
		if len(p.bases) > 0 {
			if err := checkBorrowed(ctx, p, u.parts[:i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// baseError says why delta p (the union's i-th bundle) lacks its base b.
func (u *Reader) baseError(p *Reader, b digest.Digest, i int) error {
	for _, later := range u.parts[i+1:] {
		if later.digest == b {
			return fmt.Errorf("%s: %w: its base %s comes after it; give bases first", p.Name(), ErrBaseMismatch, later.Name())
		}
	}
	var given []string
	for _, q := range u.parts[:i] {
		given = append(given, fmt.Sprintf("%s is %s", q.Name(), q.digest))
	}
	if len(given) == 0 {
		return p.CheckComplete()
	}
	return fmt.Errorf("%s: %w: it was built on base %s, which is none of the bundles given before it (%s)",
		p.Name(), ErrBaseMismatch, b, strings.Join(given, ", "))
}

// checkBorrowed checks that bases hold every blob delta p borrows.
func checkBorrowed(ctx context.Context, p *Reader, bases []*Reader) error {
	borrowed, err := p.Borrowed(ctx)
	if err != nil {
		return err
	}
	var missing []BorrowedBlob
	for _, b := range borrowed {
		if !anyHolds(bases, b.Descriptor) {
			missing = append(missing, b)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %w: %d of the %d blobs it borrows are not in its bases (%s used by %s, ...): "+
		"a base is incomplete (check it with ferry verify) or not the release the delta was built on",
		p.Name(), ErrIncompleteBase, len(missing), len(borrowed), missing[0].Digest, strings.Join(missing[0].Images, ", "))
}

// anyHolds reports whether one of rs holds desc's blob with its size.
func anyHolds(rs []*Reader, desc ocispec.Descriptor) bool {
	for _, r := range rs {
		if size, ok := r.Size(desc.Digest); ok && size == desc.Size {
			return true
		}
	}
	return false
}

// BorrowedBlob is a blob a delta's images use but the delta does not hold:
// its bases do.
type BorrowedBlob struct {
	ocispec.Descriptor
	// Images are the names of the images that use it.
	Images []string
}

// Borrowed lists the blobs r's images use that r does not hold, sorted by
// digest: none for a full bundle or a union, a delta's borrowed layers
// otherwise. It reads r's indexes and manifests and fails if one of them,
// or a config, is missing or bad (ferry verify names every such blob).
func (r *Reader) Borrowed(ctx context.Context) ([]BorrowedBlob, error) {
	g, err := r.walkGraph(ctx)
	if err != nil {
		return nil, err
	}
	if p := g.problems(); len(p) > 0 {
		return nil, fmt.Errorf("%s: %w", r.Name(), p[0])
	}
	return g.borrowed(), nil
}

// borrows reports whether desc is a blob the delta r leaves to its bases:
// r is a delta read alone, does not hold it, and it is no index, manifest
// or config (a delta holds all of those).
func (r *Reader) borrows(desc ocispec.Descriptor) bool {
	if len(r.bases) == 0 || manifests.IsSmall(desc.MediaType) {
		return false
	}
	_, held := r.blobs[desc.Digest]
	return !held
}

// WalkBorrowed walks the graph below root from src (r, or an overlay of
// rewritten indexes over it), choosing children with sel as a copy does,
// and calls visit for every blob of it that r borrows from its bases. A
// push or import of a delta calls it to check, before sending anything,
// that the target holds them.
func (r *Reader) WalkBorrowed(ctx context.Context, src transfer.Fetcher, root ocispec.Descriptor, sel transfer.SelectFunc, visit func(ocispec.Descriptor) error) error {
	return transfer.Walk(ctx, src, root, sel, func(desc ocispec.Descriptor, _ []byte) error {
		if !r.borrows(desc) {
			return nil
		}
		return visit(desc)
	})
}

// BaseAbsentError is the error of a push or import (verb) of the delta r
// into target, which lacks missing of the borrowed blobs it needs: it
// wraps ErrBaseAbsent and names the bases to push or import first.
func (r *Reader) BaseAbsentError(verb, target string, missing, borrowed int) error {
	return fmt.Errorf("%s: %w: %d of the %d blobs it borrows are not in %s; %s its base (bundle %s) first",
		r.Name(), ErrBaseAbsent, missing, borrowed, target, verb, joinDigests(r.bases))
}

// borrowed lists the graph's borrowed blobs, sorted by digest.
func (g *graph) borrowed() []BorrowedBlob {
	var out []BorrowedBlob
	for _, n := range g.nodes {
		if n.borrowed {
			out = append(out, BorrowedBlob{Descriptor: n.desc, Images: nonEmpty(n.images...)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Digest < out[j].Digest })
	return out
}

// DeltaReport says what a delta bundle borrows from its bases.
type DeltaReport struct {
	// Bases are the digests of the bundles the delta was built on.
	Bases []digest.Digest `json:"bases"`
	// BorrowedBlobs and BorrowedBytes count the blobs its images use that
	// its bases hold.
	BorrowedBlobs int   `json:"borrowedBlobs"`
	BorrowedBytes int64 `json:"borrowedBytes"`
}

// deltaReport describes a lone delta's borrowing, or returns nil.
func (g *graph) deltaReport(r *Reader) *DeltaReport {
	if len(r.bases) == 0 {
		return nil
	}
	rep := &DeltaReport{Bases: r.Bases()}
	for _, b := range g.borrowed() {
		rep.BorrowedBlobs++
		rep.BorrowedBytes += b.Size
	}
	return rep
}

// bundleDigests lists the digests of the bundles r reads, in order.
func (r *Reader) bundleDigests() []digest.Digest {
	if r.parts == nil {
		return []digest.Digest{r.digest}
	}
	out := make([]digest.Digest, len(r.parts))
	for i, p := range r.parts {
		out[i] = p.digest
	}
	return out
}

func joinDigests(ds []digest.Digest) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = d.String()
	}
	return strings.Join(s, ",")
}
