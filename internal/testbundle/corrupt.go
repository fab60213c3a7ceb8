package testbundle

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/ferry-oci/ferry/bundle"
)

// Open opens the bundle at path, failing the test on error; it is closed
// when the test ends.
func Open(t testing.TB, path string) *bundle.Reader {
	t.Helper()
	r, err := bundle.Open(t.Context(), path)
	check(t, err)
	t.Cleanup(func() { r.Close() })
	return r
}

// FlipBlob complements the middle byte of blob d in the bundle file at
// path, in place, keeping its size: the blob no longer matches its digest.
func FlipBlob(t testing.TB, path string, d digest.Digest) {
	t.Helper()
	r, err := bundle.Open(t.Context(), path)
	check(t, err)
	sr, err := r.Blob(d)
	check(t, err)
	_, off, n := sr.Outer()
	r.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	check(t, err)
	defer f.Close()
	b := make([]byte, 1)
	_, err = f.ReadAt(b, off+n/2)
	check(t, err)
	b[0] = ^b[0]
	_, err = f.WriteAt(b, off+n/2)
	check(t, err)
}

// CorruptCopy copies the bundle at path into a temporary directory, flips
// a byte of blob d in the copy (FlipBlob) and opens the copy.
func CorruptCopy(t testing.TB, path string, d digest.Digest) *bundle.Reader {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "corrupt.tar")
	in, err := os.Open(path)
	check(t, err)
	defer in.Close()
	out, err := os.Create(dst)
	check(t, err)
	_, err = io.Copy(out, in)
	check(t, err)
	check(t, out.Close())
	FlipBlob(t, dst, d)
	return Open(t, dst)
}

// LayerDigest is a go-containerregistry layer's digest.
func LayerDigest(t testing.TB, l v1.Layer) digest.Digest {
	t.Helper()
	h, err := l.Digest()
	check(t, err)
	return digest.Digest(h.String())
}
