package bundle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/ferry-oci/ferry/manifests"
)

// Writer writes a bundle whose index and blob list are known before the
// first byte: every entry's place in the tar follows from names and sizes,
// so blobs are written straight to their offsets as they arrive, many at
// once, with no spool. The file appears at its path only on Commit (an
// unnamed temp file in the same directory, fsync, link, rename); Abort,
// and a kill -9 at any point, leave nothing behind.
//
// Writer is a transfer.Target. Push trusts its content reader to fail at
// EOF on a digest mismatch, as transfer's VerifyReader does.
type Writer struct {
	path   string
	tmp    *tempFile
	layout *layout
	zstd   bool

	mu      sync.Mutex
	written map[digest.Digest]bool
	done    bool
}

type writerOptions struct {
	modTime time.Time
}

// WriterOption configures Create.
type WriterOption func(*writerOptions)

// WithModTime sets the modification time of every tar entry; the default
// is the Unix epoch, so bundles are reproducible.
func WithModTime(t time.Time) WriterOption {
	return func(o *writerOptions) { o.modTime = t }
}

// CheckPath refuses a bundle path whose name says a form ferry does not
// write: a bundle is a .tar, or a .tar.zst compressed with zstd. The error
// matches manifests.ErrInvalidArgument.
func CheckPath(path string) error {
	if strings.HasSuffix(path, ".tar") || strings.HasSuffix(path, ".tar.zst") {
		return nil
	}
	return fmt.Errorf("bundle %s: %w: ferry writes a .tar, or a .tar.zst compressed with zstd; name the file so",
		path, manifests.ErrInvalidArgument)
}

// Create starts a bundle at path holding index (written as index.json) and
// blobs. path ends in .tar, or .tar.zst to be compressed with zstd on
// Commit (see CheckPath).
func Create(path string, index ocispec.Index, blobs []ocispec.Descriptor, opts ...WriterOption) (*Writer, error) {
	if err := CheckPath(path); err != nil {
		return nil, err
	}
	o := writerOptions{modTime: time.Unix(0, 0)}
	for _, opt := range opts {
		opt(&o)
	}
	index.SchemaVersion = 2
	index.MediaType = ocispec.MediaTypeImageIndex
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: index.json: %w", path, err)
	}
	l, err := planLayout(indexJSON, blobs, o.modTime.UTC())
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	tmp, err := newTempFile(filepath.Dir(path), filepath.Base(path))
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	w := &Writer{path: path, tmp: tmp, layout: l, zstd: strings.HasSuffix(path, ".zst"), written: map[digest.Digest]bool{}}
	if err := w.reserve(); err != nil {
		w.Abort()
		return nil, err
	}
	return w, nil
}

// reserve allocates the whole file, so a full disk fails now and clearly,
// and writes every header and the small fixed bodies.
func (w *Writer) reserve() error {
	if err := unix.Fallocate(int(w.tmp.Fd()), 0, 0, w.layout.size); err != nil {
		if errors.Is(err, unix.ENOSPC) {
			return fmt.Errorf("bundle %s: need %d bytes in %s: %w", w.path, w.layout.size, filepath.Dir(w.path), err)
		}
		if err := w.tmp.Truncate(w.layout.size); err != nil {
			return fmt.Errorf("bundle %s: %w", w.path, err)
		}
	}
	for _, h := range w.layout.headers {
		if _, err := w.tmp.WriteAt(append(h.header, h.body...), h.offset); err != nil {
			return fmt.Errorf("bundle %s: %w", w.path, err)
		}
	}
	return nil
}

// Exists implements transfer.Exister: whether the blob is already written.
func (w *Writer) Exists(_ context.Context, desc ocispec.Descriptor) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.written[desc.Digest], nil
}

// Push implements transfer.Pusher: it writes a planned blob at its offset.
func (w *Writer) Push(ctx context.Context, desc ocispec.Descriptor, content io.Reader) error {
	p, ok := w.layout.blobs[desc.Digest]
	if !ok {
		return fmt.Errorf("%s: %w", desc.Digest, ErrUnplannedBlob)
	}
	if p.desc.Size != desc.Size {
		return fmt.Errorf("%s: %w: planned %d bytes, got descriptor of %d", desc.Digest, manifests.ErrSizeMismatch, p.desc.Size, desc.Size)
	}
	dst := &boundedWriter{w: io.NewOffsetWriter(w.tmp, p.offset), desc: desc, left: desc.Size}
	buf := copyBuffers.Get().(*[]byte)
	n, err := io.CopyBuffer(dst, io.LimitReader(content, desc.Size+1), *buf)
	copyBuffers.Put(buf)
	if err != nil {
		return err
	}
	if n != desc.Size {
		return fmt.Errorf("%s: %w: wrote %d bytes, want %d", desc.Digest, manifests.ErrSizeMismatch, n, desc.Size)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	w.mu.Lock()
	w.written[desc.Digest] = true
	w.mu.Unlock()
	return nil
}

// copyBuffers hold Push's copy buffers: large reads and writes mean fewer
// system calls per byte than io.Copy's 32 KiB.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// Commit checks that every planned blob was written, syncs the file and
// renames it into place.
func (w *Writer) Commit() error {
	w.mu.Lock()
	missing := len(w.layout.blobs) - len(w.written)
	w.mu.Unlock()
	if missing > 0 {
		w.Abort()
		return fmt.Errorf("bundle %s: %w: %d blobs not written", w.path, ErrIncomplete, missing)
	}
	final := w.tmp
	if w.zstd {
		compressed, err := w.compress()
		if err != nil {
			w.Abort()
			return err
		}
		w.tmp.discard()
		w.tmp = compressed
		final = compressed
	}
	if err := final.Chmod(0o644); err != nil {
		w.Abort()
		return fmt.Errorf("bundle %s: %w", w.path, err)
	}
	if err := final.Sync(); err != nil {
		w.Abort()
		return fmt.Errorf("bundle %s: %w", w.path, err)
	}
	if err := final.publish(w.path); err != nil {
		w.Abort()
		return fmt.Errorf("bundle %s: %w", w.path, err)
	}
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
	if err := final.Close(); err != nil {
		return fmt.Errorf("bundle %s: %w", w.path, err)
	}
	return syncDir(filepath.Dir(w.path))
}

// compress writes the finished tar through zstd into a second temp file.
// Concurrency is fixed so the output does not depend on the machine.
func (w *Writer) compress() (*tempFile, error) {
	out, err := newTempFile(filepath.Dir(w.path), filepath.Base(w.path))
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", w.path, err)
	}
	enc, err := zstd.NewWriter(out, zstd.WithEncoderConcurrency(4))
	if err == nil {
		_, err = io.Copy(enc, io.NewSectionReader(w.tmp, 0, w.layout.size))
		if cerr := enc.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		out.discard()
		return nil, fmt.Errorf("bundle %s: zstd: %w", w.path, err)
	}
	return out, nil
}

// Abort removes the unfinished file. It is safe to call more than once and
// after Commit, when it does nothing.
func (w *Writer) Abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	w.done = true
	w.tmp.discard()
}

// boundedWriter takes at most left bytes and refuses, writing nothing, a
// write that would go beyond them, so a blob longer than planned never
// overwrites the next tar entry.
type boundedWriter struct {
	w    io.Writer
	desc ocispec.Descriptor
	left int64
}

func (b *boundedWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > b.left {
		return 0, fmt.Errorf("%s: %w: more than %d bytes", b.desc.Digest, manifests.ErrSizeMismatch, b.desc.Size)
	}
	n, err := b.w.Write(p)
	b.left -= int64(n)
	return n, err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
