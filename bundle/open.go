package bundle

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// zstdMagic starts every zstd frame.
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// OpenOption configures Open.
type OpenOption func(*openOptions)

type openOptions struct {
	tempDir string
}

// WithTempDir sets where a bundle that cannot be read in place (a .tar.zst,
// or a pipe) is copied; the default is os.TempDir ($TMPDIR).
func WithTempDir(dir string) OpenOption {
	return func(o *openOptions) {
		if dir != "" {
			o.tempDir = dir
		}
	}
}

// Open opens the bundle at path. A plain tar file is read in place. A
// .tar.zst, and a bundle read from a pipe or FIFO (`<(cat b.tar)`), are
// first copied into an unnamed temporary file (see WithTempDir), checked
// entry by entry as they stream in and refused, wrapping ErrTempSpace,
// when the copy would not fit; the copy disappears on Close or when the
// process dies. Cancelling ctx stops the copy, and a wait for a FIFO's
// writer.
//
// A docker-archive or an OCI layout directory is refused with
// ErrDockerArchive or ErrLayoutDir and the ferry build source that reads it.
func Open(ctx context.Context, path string, opts ...OpenOption) (*Reader, error) {
	o := openOptions{tempDir: os.TempDir()}
	for _, opt := range opts {
		opt(&o)
	}
	f, err := openInput(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("open bundle: %w", err)
	}
	r, err := read(ctx, f, path, o)
	switch {
	case errors.Is(err, ErrDockerArchive):
		err = fmt.Errorf("%w; make a bundle of it with: ferry build --image docker-archive:%s -o bundle.tar", err, path)
	case errors.Is(err, ErrLayoutDir):
		err = fmt.Errorf("%w; make a bundle of it with: ferry build --image oci:%s -o bundle.tar", err, path)
	}
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	r.name = path
	return r, nil
}

// read reads the bundle in f, opened from path, which it closes on error
// and the Reader's Close.
func read(ctx context.Context, f *os.File, path string, o openOptions) (*Reader, error) {
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if fi.IsDir() {
		f.Close()
		if _, err := os.Stat(filepath.Join(path, layoutFile)); err == nil {
			return nil, ErrLayoutDir
		}
		return nil, fmt.Errorf("%w: a directory", ErrNotBundle)
	}
	if fi.Mode().IsRegular() && !hasZstdMagic(f) {
		return readInPlace(f, fi.Size())
	}
	defer f.Close()
	stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Now()) })
	defer stop()
	br := bufio.NewReader(f)
	magic, _ := br.Peek(len(zstdMagic))
	tmp, size, err := spool(ctx, br, bytes.Equal(magic, zstdMagic), o.tempDir)
	if err != nil {
		return nil, err
	}
	return readInPlace(tmp, size)
}

// readInPlace reads the bundle of size bytes in f, which it closes on
// error and the Reader's Close.
func readInPlace(f *os.File, size int64) (*Reader, error) {
	r, err := NewReader(f, size)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closers = append(r.closers, f.Close)
	return r, nil
}

// hasZstdMagic says whether the file f starts with a zstd frame.
func hasZstdMagic(f *os.File) bool {
	magic := make([]byte, len(zstdMagic))
	_, err := f.ReadAt(magic, 0)
	return err == nil && bytes.Equal(magic, zstdMagic)
}

// openInput opens path for reading. Opening a FIFO waits for a writer;
// cancelling ctx ends that wait (by opening the FIFO's write end, which
// lets the blocked open return).
func openInput(ctx context.Context, path string) (*os.File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeNamedPipe == 0 {
		return os.Open(path)
	}
	type result struct {
		f   *os.File
		err error
	}
	done := make(chan result, 1)
	go func() {
		f, err := os.Open(path)
		done <- result{f, err}
	}()
	select {
	case res := <-done:
		return res.f, res.err
	case <-ctx.Done():
	}
	if fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err == nil {
		unix.Close(fd)
	}
	if res := <-done; res.f != nil {
		res.f.Close()
	}
	return nil, ctx.Err()
}
