package registry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"sort"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// storageRoot is where distribution's storage layout starts in a driver
// (distribution's registry/storage/paths.go).
const storageRoot = "/docker/registry/v2"

// blobDataPath is where distribution reads a blob's bytes.
func blobDataPath(d digest.Digest) string {
	enc := d.Encoded()
	return path.Join(storageRoot, "blobs", d.Algorithm().String(), enc[:2], enc, "data")
}

// repositoryPath is a path inside a repository's directory.
func repositoryPath(name string, elem ...string) string {
	return path.Join(append([]string{storageRoot, "repositories", name}, elem...)...)
}

// linkPath is where a repository links a blob: manifests and indexes as
// revisions, other blobs as layers.
func linkPath(repo string, desc ocispec.Descriptor) string {
	if manifests.IsGraphNode(desc.MediaType) {
		return repositoryPath(repo, "_manifests/revisions", desc.Digest.Algorithm().String(), desc.Digest.Encoded(), "link")
	}
	return layerLinkPath(repo, desc.Digest)
}

// bundleTree is a bundle seen as distribution's storage layout: every blob's
// data, read in place from the bundle, and the link files of every
// repository, made once at open from index.json and the image graphs. It
// holds no blob bytes: its size follows the number of entries.
type bundleTree struct {
	bundle  *bundle.Reader
	nodes   map[string]*treeNode
	modTime time.Time
	log     Logger
	// images is how many of the bundle's images are served; repositories
	// lists the repositories, sorted.
	images       int
	repositories []string
}

// treeNode is a directory, a link file or a blob's data.
type treeNode struct {
	dir     bool
	entries []string // a directory's entries (full paths), sorted
	link    []byte   // a link file's content
	blob    digest.Digest
	size    int64
}

// newBundleTree lays the bundle out. Each image is served in two
// repositories, its path without and with its registry host
// (library/nginx and docker.io/library/nginx), under prefix when it is set;
// its referrers (signatures, SBOMs, ...) are served in the same
// repositories, cosign's tag-scheme ones under their tags. Blobs an image
// references but the bundle lacks are left out with a warning; an
// unreadable or corrupt index or manifest is an error.
func newBundleTree(ctx context.Context, r *bundle.Reader, prefix string, log Logger) (*bundleTree, error) {
	t := &bundleTree{bundle: r, modTime: time.Now(), log: log}
	l := treeLayout{
		b:      treeBuilder{nodes: map[string]*treeNode{}, dirs: map[string]map[string]bool{"/": {}}},
		r:      r,
		prefix: prefix,
		log:    log,
		graphs: map[digest.Digest][]ocispec.Descriptor{},
		tags:   map[string]digest.Digest{},
		repos:  map[string]bool{},
	}
	for _, d := range r.Digests() {
		size, _ := r.Size(d)
		l.b.file(blobDataPath(d), &treeNode{blob: d, size: size})
	}
	for _, img := range r.Images() {
		_, _, tag, err := manifests.SplitReference(img.Name)
		if err != nil {
			log.Warnf("image %q is not served: its name is not an image reference: %v", img.Name, err)
			continue
		}
		served, err := l.serve(ctx, img, "image "+img.Name, tag)
		if err != nil {
			return nil, err
		}
		if served {
			t.images++
		}
	}
	for _, ref := range r.Referrers() {
		img := bundle.Image{Name: ref.Image, Descriptor: ref.Descriptor}
		if _, err := l.serve(ctx, img, fmt.Sprintf("referrer %s of %s", ref.Descriptor.Digest, ref.Image), ref.Tag); err != nil {
			return nil, err
		}
	}
	t.nodes = l.b.finish()
	for repo := range l.repos {
		t.repositories = append(t.repositories, repo)
	}
	sort.Strings(t.repositories)
	return t, nil
}

// treeLayout is the state of one newBundleTree: the tree so far, each
// root's graph (walked once), the tags given and the repositories served.
type treeLayout struct {
	b      treeBuilder
	r      *bundle.Reader
	prefix string
	log    Logger
	graphs map[digest.Digest][]ocispec.Descriptor
	tags   map[string]digest.Digest
	repos  map[string]bool
}

// serve links the graph of img.Descriptor into the repositories of the
// image img.Name, tagged tag there unless tag is empty or a digest; what
// names it in errors and warnings. It reports whether any repository
// serves it.
func (l *treeLayout) serve(ctx context.Context, img bundle.Image, what, tag string) (bool, error) {
	host, repoPath, _, err := manifests.SplitReference(img.Name)
	if err != nil {
		return false, nil // the image itself was warned about
	}
	root := img.Descriptor.Digest
	graph, ok := l.graphs[root]
	if !ok {
		if graph, err = imageGraph(ctx, l.r, img.Descriptor, what, l.log); err != nil {
			return false, err
		}
		l.graphs[root] = graph
	}
	served := false
	for _, repo := range []string{repoPath, host + "/" + repoPath} {
		if l.prefix != "" {
			repo = l.prefix + "/" + repo
		}
		if _, err := reference.WithName(repo); err != nil {
			l.log.Warnf("%s is not served as repository %q: %v", what, repo, err)
			continue
		}
		served, l.repos[repo] = true, true
		for _, desc := range graph {
			l.b.file(linkPath(repo, desc), linkNode(desc.Digest))
		}
		if tag != "" && tag[0] != '@' {
			l.tag(repo, tag, root, what)
		}
	}
	return served, nil
}

// tag tags root in repo, unless another root took that tag first.
func (l *treeLayout) tag(repo, tag string, root digest.Digest, what string) {
	key := repo + ":" + tag
	if prev, taken := l.tags[key]; taken {
		if prev != root {
			l.log.Warnf("%s is %s, not %s (%s): pull that one by its host-qualified name", key, prev, root, what)
		}
		return
	}
	l.tags[key] = root
	tagDir := repositoryPath(repo, "_manifests/tags", tag)
	l.b.file(path.Join(tagDir, "current/link"), linkNode(root))
	l.b.file(path.Join(tagDir, "index", root.Algorithm().String(), root.Encoded(), "link"), linkNode(root))
}

// imageGraph walks the graph of root in the bundle, leaving out the
// children the bundle does not hold; what names root in errors and
// warnings.
func imageGraph(ctx context.Context, r *bundle.Reader, root ocispec.Descriptor, what string, log Logger) ([]ocispec.Descriptor, error) {
	var graph []ocispec.Descriptor
	missing := 0
	present := func(_ context.Context, _ ocispec.Descriptor, children []ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		var kept []ocispec.Descriptor
		for _, c := range children {
			if _, ok := r.Size(c.Digest); ok {
				kept = append(kept, c)
			} else {
				missing++
			}
		}
		return kept, nil
	}
	err := transfer.Walk(ctx, r, root, present, func(desc ocispec.Descriptor, _ []byte) error {
		graph = append(graph, desc)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if missing > 0 {
		log.Warnf("%s references %d blobs that are not in the bundle: clients that need them will fail", what, missing)
	}
	return graph, nil
}

// linkNode is a link file to d, as distribution writes them.
func linkNode(d digest.Digest) *treeNode {
	return &treeNode{link: []byte(d), size: int64(len(d))}
}

// treeBuilder collects files and the directories above them.
type treeBuilder struct {
	nodes map[string]*treeNode
	dirs  map[string]map[string]bool
}

// file adds a file at p and every directory above it.
func (b *treeBuilder) file(p string, n *treeNode) {
	b.nodes[p] = n
	for child, dir := p, path.Dir(p); ; child, dir = dir, path.Dir(dir) {
		entries, seen := b.dirs[dir]
		if !seen {
			entries = map[string]bool{}
			b.dirs[dir] = entries
		}
		entries[child] = true
		if seen || dir == "/" {
			return
		}
	}
}

// finish returns every node, directories with their sorted entries.
func (b *treeBuilder) finish() map[string]*treeNode {
	for dir, set := range b.dirs {
		entries := make([]string, 0, len(set))
		for e := range set {
			entries = append(entries, e)
		}
		sort.Strings(entries)
		b.nodes[dir] = &treeNode{dir: true, entries: entries}
	}
	return b.nodes
}

// linksLayer reports whether repository repo links blob d as a layer
// (distribution serves a repository's blobs from those links).
func (t *bundleTree) linksLayer(repo string, d digest.Digest) bool {
	return t.has(layerLinkPath(repo, d))
}

// layerLinkPath is where repository repo links blob d as a layer.
func layerLinkPath(repo string, d digest.Digest) string {
	return repositoryPath(repo, "_layers", d.Algorithm().String(), d.Encoded(), "link")
}

// has reports whether p is a file or directory of the tree.
func (t *bundleTree) has(p string) bool {
	_, ok := t.nodes[p]
	return ok
}

func (t *bundleTree) node(p string) (*treeNode, error) {
	n, ok := t.nodes[p]
	if !ok {
		return nil, storagedriver.PathNotFoundError{Path: p, DriverName: driverName}
	}
	return n, nil
}

func (t *bundleTree) file(p string) (*treeNode, error) {
	n, err := t.node(p)
	if err == nil && n.dir {
		err = storagedriver.Error{DriverName: driverName, Detail: fmt.Errorf("%s is a directory", p)}
	}
	return n, err
}

// GetContent returns a link, or a small blob read and verified.
func (t *bundleTree) GetContent(ctx context.Context, p string) ([]byte, error) {
	n, err := t.file(p)
	if err != nil {
		return nil, err
	}
	if n.link != nil {
		return bytes.Clone(n.link), nil
	}
	b, err := t.bundle.ReadAll(ctx, ocispec.Descriptor{Digest: n.blob, Size: n.size})
	if err != nil {
		t.failed(err)
		return nil, err
	}
	return b, nil
}

// Reader reads a file from offset. A blob read whole is verified against its
// digest as it is read.
func (t *bundleTree) Reader(_ context.Context, p string, offset int64) (io.ReadCloser, error) {
	n, err := t.file(p)
	if err != nil {
		return nil, err
	}
	if offset < 0 || offset > n.size {
		return nil, storagedriver.InvalidOffsetError{Path: p, Offset: offset, DriverName: driverName}
	}
	if n.link != nil {
		return io.NopCloser(bytes.NewReader(n.link[offset:])), nil
	}
	sr, err := t.bundle.Blob(n.blob)
	if err != nil {
		return nil, err
	}
	if offset > 0 {
		return io.NopCloser(io.NewSectionReader(sr, offset, n.size-offset)), nil
	}
	vr := transfer.NewVerifyReader(sr, ocispec.Descriptor{Digest: n.blob, Size: n.size})
	return io.NopCloser(&failing{Reader: vr, fail: t.failed}), nil
}

// Stat describes a file or directory.
func (t *bundleTree) Stat(_ context.Context, p string) (storagedriver.FileInfo, error) {
	n, err := t.node(p)
	if err != nil {
		return nil, err
	}
	return storagedriver.FileInfoInternal{FileInfoFields: storagedriver.FileInfoFields{
		Path: p, Size: n.size, ModTime: t.modTime, IsDir: n.dir,
	}}, nil
}

// List returns a directory's entries.
func (t *bundleTree) List(_ context.Context, p string) ([]string, error) {
	n, err := t.node(p)
	if err != nil {
		return nil, err
	}
	if !n.dir {
		return nil, storagedriver.Error{DriverName: driverName, Detail: fmt.Errorf("%s is not a directory", p)}
	}
	return append([]string(nil), n.entries...), nil
}

// failed logs a blob the bundle cannot serve as it should.
func (t *bundleTree) failed(err error) {
	t.log.Errorf("bundle blob %v: the request fails", err)
}

// failing reports the first error of a blob read whole through
// transfer.VerifyReader, which withholds the last bytes of a blob that
// does not match its digest, so a client never receives a complete
// response with wrong bytes.
type failing struct {
	io.Reader
	fail     func(error)
	reported bool
}

func (f *failing) Read(p []byte) (int, error) {
	n, err := f.Reader.Read(p)
	if err != nil && err != io.EOF && !f.reported {
		f.reported = true
		f.fail(err)
	}
	return n, err
}
