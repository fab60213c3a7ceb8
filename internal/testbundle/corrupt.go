package testbundle

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

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

// RewriteManifest writes a copy of the bundle at path in which the image
// name (a single manifest) has the manifest that edit makes of its own:
// the new manifest is added next to the old one and index.json points the
// image at it. It returns the copy's path. Tests use it for manifests that
// ferry build would refuse to write (a layer with a wrong declared size).
func RewriteManifest(t testing.TB, path, name string, edit func(*ocispec.Manifest)) string {
	t.Helper()
	r := Open(t, path)
	img, err := r.Image(name)
	check(t, err)
	m := ReadManifest(t, r, img.Descriptor)
	edit(&m)
	content, err := json.Marshal(m)
	check(t, err)
	newDesc := img.Descriptor
	newDesc.Digest, newDesc.Size = digest.FromBytes(content), int64(len(content))
	oldBlob := "blobs/sha256/" + img.Descriptor.Digest.Encoded()
	var out []TarEntry
	for _, e := range ReadTar(t, path) {
		switch e.Hdr.Name {
		case "index.json":
			e.Body = repoint(t, e.Body, img.Descriptor.Digest, newDesc)
		case oldBlob:
			hdr := *e.Hdr
			hdr.Name = "blobs/sha256/" + newDesc.Digest.Encoded()
			out = append(out, TarEntry{Hdr: &hdr, Body: content})
		}
		out = append(out, e)
	}
	return WriteTar(t, filepath.Join(t.TempDir(), "rewritten.tar"), out)
}

// repoint returns index.json with the entry of old given desc's digest and size.
func repoint(t testing.TB, index []byte, old digest.Digest, desc ocispec.Descriptor) []byte {
	t.Helper()
	var idx ocispec.Index
	check(t, json.Unmarshal(index, &idx))
	for i, d := range idx.Manifests {
		if d.Digest == old {
			idx.Manifests[i].Digest, idx.Manifests[i].Size = desc.Digest, desc.Size
		}
	}
	b, err := json.Marshal(idx)
	check(t, err)
	return b
}
