package benchcorpus

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/gzip"
)

// epoch is the modification time of every generated file and config.
var epoch = time.Unix(1700000000, 0).UTC()

// maxFileSize bounds one file inside a generated layer: big layers hold
// several files, as real ones do.
const maxFileSize = 64 << 20

// layerFile is a generated gzip layer blob on disk.
type layerFile struct {
	name   string
	path   string
	digest string // sha256 of the gzip bytes
	diffID string // sha256 of the tar
	size   int64  // gzip bytes
}

// writeLayer writes the gzip layer for l, named name, under dir.
func writeLayer(ctx context.Context, dir, name string, l Layer, seed uint64) (*layerFile, error) {
	path := filepath.Join(dir, name+".tar.gz")
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	out := &countHash{h: sha256.New()}
	bw := bufio.NewWriterSize(io.MultiWriter(f, out), 1<<20)
	gz, err := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	diff := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(gz, diff))

	content := &ctxReader{ctx: ctx, r: newContent(l.Kind, seedFor(seed, name), l.Size)}
	ext := map[Kind]string{Random: "bin", Text: "txt"}[l.Kind]
	for part, left := 0, l.Size; left > 0 || part == 0; part++ {
		n := min(left, maxFileSize)
		hdr := &tar.Header{
			Name:     fmt.Sprintf("opt/bench/%s/part-%03d.%s", name, part, ext),
			Mode:     0o644,
			Size:     n,
			ModTime:  epoch,
			Typeflag: tar.TypeReg,
			Format:   tar.FormatPAX,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := io.CopyN(tw, content, n); err != nil {
			return nil, fmt.Errorf("layer %s: %w", name, err)
		}
		left -= n
	}
	for _, c := range []io.Closer{tw, gz} {
		if err := c.Close(); err != nil {
			return nil, err
		}
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return &layerFile{
		name:   name,
		path:   path,
		digest: fmt.Sprintf("sha256:%x", out.h.Sum(nil)),
		diffID: fmt.Sprintf("sha256:%x", diff.Sum(nil)),
		size:   out.n,
	}, nil
}

// countHash hashes and counts what is written to it.
type countHash struct {
	h hash.Hash
	n int64
}

func (c *countHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

// ctxReader stops reading when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
