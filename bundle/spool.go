package bundle

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/ferry-oci/ferry/manifests"
)

// zstdMaxWindow bounds the memory a zstd frame may ask the decoder for:
// 128 MiB is what `zstd --long` uses; ferry writes 8 MiB windows.
const zstdMaxWindow = 128 << 20

// spool copies a bundle that cannot be read in place (zstd-compressed, or
// read from a pipe) into an unnamed temporary file in dir, which
// disappears when it is closed or the process dies. It checks the tar as
// it goes and stops at the first entry that is not part of an OCI image
// layout, and before the copy would outgrow the free space of dir, so a
// hostile file is refused after a few blocks instead of filling the disk.
func spool(ctx context.Context, src io.Reader, compressed bool, dir string) (*os.File, int64, error) {
	if compressed {
		dec, err := zstd.NewReader(src, zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, 0, fmt.Errorf("%w: zstd: %v", ErrNotBundle, err)
		}
		defer dec.Close()
		src = dec
	}
	free, err := freeSpace(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("temporary directory: %w", err)
	}
	tmp, err := newTempFile(dir, "ferry-bundle")
	if err != nil {
		return nil, 0, fmt.Errorf("temporary directory: %w", err)
	}
	tmp.unlink()
	cw := &countingWriter{w: tmp}
	if err := copyLayoutTar(ctx, io.TeeReader(ctxReader{ctx, src}, cw), cw, free, dir); err != nil {
		tmp.discard()
		return nil, 0, err
	}
	return tmp.File, cw.n, nil
}

// copyLayoutTar reads a tar through to its end, entry by entry, refusing an
// entry that is not part of an OCI image layout and one that would take the
// bytes written (cw) beyond free.
func copyLayoutTar(ctx context.Context, src io.Reader, cw *countingWriter, free int64, dir string) error {
	tr := tar.NewReader(src)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return spoolError(ctx, err, cw.n <= blockSize)
		}
		if err := checkLayoutEntry(hdr); err != nil {
			return err
		}
		if need := cw.n + padded(hdr.Size) + 2*blockSize; need > free {
			return fmt.Errorf("%w: it needs at least %s in %s, which has %s free; pass --tmp-dir a directory with room",
				ErrTempSpace, mib(need), dir, mib(free))
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return spoolError(ctx, err, false)
		}
	}
}

// spoolError names what went wrong reading a spooled stream.
func spoolError(ctx context.Context, err error, atStart bool) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, unix.ENOSPC):
		return fmt.Errorf("%w: %v; pass --tmp-dir a directory with room", ErrTempSpace, err)
	case atStart:
		return fmt.Errorf("%w: not a tar: %v", ErrNotBundle, err)
	}
	return fmt.Errorf("%w: %v", ErrInvalidBundle, err)
}

// checkLayoutEntry accepts the entries of an OCI image layout (oci-layout,
// index.json, the blobs directories and blobs/ALG/HEX) and the small
// docker-compatibility files other tools add (manifest.json, repositories).
func checkLayoutEntry(hdr *tar.Header) error {
	name := strings.TrimSuffix(strings.TrimPrefix(hdr.Name, "./"), "/")
	switch {
	case hdr.Typeflag == tar.TypeDir && (name == blobsDir || strings.Count(name, "/") == 1 && strings.HasPrefix(name, blobsDir+"/")):
		return nil
	case hdr.Typeflag == tar.TypeXGlobalHeader:
		return nil
	case hdr.Typeflag != tar.TypeReg:
		return fmt.Errorf("%w: %q is not a regular file", ErrNotBundle, hdr.Name)
	case name == layoutFile || name == indexFile || name == "manifest.json" || name == "repositories":
		if hdr.Size > manifests.MaxManifestSize {
			return fmt.Errorf("%w: %s is %d bytes, over 4 MiB", ErrInvalidBundle, name, hdr.Size)
		}
		return nil
	case strings.HasPrefix(name, blobsDir+"/"):
		_, err := blobDigest(name)
		return err
	}
	if looksDocker(name) {
		return fmt.Errorf("%w: found %q", ErrDockerArchive, hdr.Name)
	}
	return fmt.Errorf("%w: %q is not part of an OCI image layout", ErrNotBundle, hdr.Name)
}

// looksDocker says whether a tar entry is one of a docker-archive's
// (`docker save`): ID/layer.tar, ID/json, ID/VERSION.
func looksDocker(name string) bool {
	for _, s := range []string{"/layer.tar", "/json", "/VERSION"} {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// freeSpace is what an unprivileged user may still write under dir.
func freeSpace(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// mib writes n bytes in MiB, rounded up.
func mib(n int64) string { return fmt.Sprintf("%d MiB", (n+1<<20-1)>>20) }

// countingWriter counts what it passes on.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
