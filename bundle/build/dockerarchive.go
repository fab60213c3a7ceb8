package build

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-oci/ferry/internal/tarindex"
	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// DockerArchive is a `docker save` tarball converted to OCI images: each
// layer is checked against the config's diff_ids and gzip-compressed, and a
// new OCI manifest is written over them. The converted blobs are spooled in
// a temporary OCI layout directory (one compressed copy of the layers),
// since a manifest needs every layer's digest before it can exist.
type DockerArchive struct {
	*LayoutDir
	// Images are the converted images, in the archive's order.
	Images []ArchiveImage
	spool  string
}

// ArchiveImage is one image of a docker archive.
type ArchiveImage struct {
	// RepoTags are the names `docker save` recorded, normalized.
	RepoTags   []string
	Descriptor ocispec.Descriptor
}

// dockerManifestEntry is one element of a docker archive's manifest.json.
type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// OpenDockerArchive converts the docker archive at path, compressing up to
// jobs layers at once.
func OpenDockerArchive(ctx context.Context, path string, jobs int) (*DockerArchive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("docker archive %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("docker archive %s: %w", path, err)
	}
	idx, err := tarindex.Scan(f, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("docker archive %s: %w: %w", path, ErrInvalidSource, err)
	}
	entries, err := readDockerManifest(f, idx)
	if err != nil {
		return nil, fmt.Errorf("docker archive %s: %w", path, err)
	}
	spool, err := os.MkdirTemp("", "ferry-docker-archive-*")
	if err != nil {
		return nil, err
	}
	c := &converter{archive: f, index: idx, spool: spool, jobs: jobs}
	if err := c.init(); err != nil {
		os.RemoveAll(spool)
		return nil, err
	}
	da := &DockerArchive{spool: spool}
	for _, e := range entries {
		img, err := c.convert(ctx, e)
		if err != nil {
			os.RemoveAll(spool)
			return nil, fmt.Errorf("docker archive %s: %w", path, err)
		}
		da.Images = append(da.Images, *img)
	}
	if da.LayoutDir, err = OpenLayoutDir(spool); err != nil {
		os.RemoveAll(spool)
		return nil, err
	}
	return da, nil
}

// Close removes the spooled layers.
func (d *DockerArchive) Close() error {
	d.LayoutDir.Close()
	return os.RemoveAll(d.spool)
}

func readDockerManifest(ra io.ReaderAt, idx tarindex.Index) ([]dockerManifestEntry, error) {
	b, err := readEntry(ra, idx, "manifest.json")
	if err != nil {
		return nil, fmt.Errorf("%w: %w (is this `docker save` output?)", ErrInvalidSource, err)
	}
	var entries []dockerManifestEntry
	if err := json.Unmarshal(b, &entries); err != nil || len(entries) == 0 {
		return nil, fmt.Errorf("%w: manifest.json lists no images", ErrInvalidSource)
	}
	for i, e := range entries {
		for j, t := range e.RepoTags {
			if entries[i].RepoTags[j], err = manifests.NormalizeReference(t); err != nil {
				return nil, err
			}
		}
	}
	return entries, nil
}

func readEntry(ra io.ReaderAt, idx tarindex.Index, name string) ([]byte, error) {
	e, err := idx.Resolve(name)
	if err != nil {
		return nil, err
	}
	if e.Size > manifests.MaxManifestSize {
		return nil, fmt.Errorf("%s: %w", name, manifests.ErrManifestTooLarge)
	}
	b := make([]byte, e.Size)
	if _, err := io.NewSectionReader(ra, e.Offset, e.Size).ReadAt(b, 0); err != nil && e.Size > 0 {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return b, nil
}

// converter writes converted blobs into a spool OCI layout.
type converter struct {
	archive io.ReaderAt
	index   tarindex.Index
	spool   string
	jobs    int
}

func (c *converter) init() error {
	if err := os.MkdirAll(filepath.Join(c.spool, ocispec.ImageBlobsDir, "sha256"), 0o755); err != nil {
		return err
	}
	layout, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	return os.WriteFile(filepath.Join(c.spool, ocispec.ImageLayoutFile), layout, 0o644)
}

func (c *converter) convert(ctx context.Context, e dockerManifestEntry) (*ArchiveImage, error) {
	config, err := readEntry(c.archive, c.index, e.Config)
	if err != nil {
		return nil, fmt.Errorf("%w: config: %w", ErrInvalidSource, err)
	}
	var img ocispec.Image
	if err := json.Unmarshal(config, &img); err != nil {
		return nil, fmt.Errorf("%w: config %s: %v", ErrInvalidSource, e.Config, err)
	}
	if len(img.RootFS.DiffIDs) != len(e.Layers) {
		return nil, fmt.Errorf("%w: config %s lists %d layers, manifest.json %d", ErrInvalidSource, e.Config, len(img.RootFS.DiffIDs), len(e.Layers))
	}
	layers := make([]ocispec.Descriptor, len(e.Layers))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(transfer.Jobs(c.jobs))
	for i, name := range e.Layers {
		g.Go(func() error {
			d, err := c.compressLayer(gctx, name, img.RootFS.DiffIDs[i])
			layers[i] = d
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	configDesc, err := c.writeBlob(ocispec.MediaTypeImageConfig, config)
	if err != nil {
		return nil, err
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: configDesc, Layers: layers}
	m.SchemaVersion = 2
	mb, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	md, err := c.writeBlob(ocispec.MediaTypeImageManifest, mb)
	if err != nil {
		return nil, err
	}
	md.Platform = &img.Platform
	return &ArchiveImage{RepoTags: e.RepoTags, Descriptor: md}, nil
}

func (c *converter) writeBlob(mediaType string, b []byte) (ocispec.Descriptor, error) {
	d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	return d, os.WriteFile(filepath.Join(c.spool, blobName(d.Digest)), b, 0o644)
}

// compressLayer gzips one layer into the spool (a layer that is already
// gzip-compressed is kept as it is), checking its uncompressed bytes
// against the config's diff_id.
func (c *converter) compressLayer(ctx context.Context, name string, diffID digest.Digest) (ocispec.Descriptor, error) {
	e, err := c.index.Resolve(name)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%w: layer: %w", ErrInvalidSource, err)
	}
	tmp, err := os.CreateTemp(c.spool, "layer-*")
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	layer := contextReader{ctx, io.NewSectionReader(c.archive, e.Offset, e.Size)}
	compressed := digest.SHA256.Digester()
	out := bufio.NewWriterSize(io.MultiWriter(tmp, compressed.Hash()), 1<<20)
	uncompressed := digest.SHA256.Digester()
	if isGzip(c.archive, e) {
		err = copyGzipped(out, uncompressed.Hash(), layer)
	} else {
		err = gzipTo(out, io.TeeReader(layer, uncompressed.Hash()))
	}
	if err == nil {
		err = out.Flush()
	}
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%w: layer %s: %w", ErrInvalidSource, name, err)
	}
	if uncompressed.Digest() != diffID {
		return ocispec.Descriptor{}, fmt.Errorf("%w: layer %s is %s, config says %s (corrupt or truncated archive)", ErrInvalidSource, name, uncompressed.Digest(), diffID)
	}
	fi, err := tmp.Stat()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: compressed.Digest(), Size: fi.Size()}
	if err := os.Rename(tmp.Name(), filepath.Join(c.spool, blobName(d.Digest))); err != nil {
		return ocispec.Descriptor{}, err
	}
	return d, nil
}

// gzipTo compresses r into w. klauspost's gzip with a zero header is
// deterministic: the same layer always gives the same digest.
func gzipTo(w io.Writer, r io.Reader) error {
	zw, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	if _, err := io.Copy(zw, r); err != nil {
		return err
	}
	return zw.Close()
}

// copyGzipped copies an already compressed layer to w and its
// decompressed bytes to diff.
func copyGzipped(w io.Writer, diff io.Writer, r io.Reader) error {
	zr, err := gzip.NewReader(io.TeeReader(r, w))
	if err != nil {
		return err
	}
	if _, err := io.Copy(diff, zr); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, r) // trailing bytes after the gzip stream
	return err
}

func isGzip(ra io.ReaderAt, e tarindex.Entry) bool {
	magic := make([]byte, 2)
	_, err := ra.ReadAt(magic, e.Offset)
	return err == nil && e.Size >= 2 && magic[0] == 0x1f && magic[1] == 0x8b
}

// contextReader stops a long copy when ctx ends.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
