package bundle_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/testimages"
	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// TestOpenBadInput opens tars that are not bundles or are unsafe: each
// fails with the right sentinel.
func TestOpenBadInput(t *testing.T) {
	good, _ := writeFixture(t)
	entries := testbundle.ReadTar(t, good)
	raw, err := os.ReadFile(good)
	check(t, err)
	blob := entries[2] // the first blob
	reg := func(name string, body []byte) testbundle.TarEntry {
		return testbundle.TarEntry{Hdr: &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644}, Body: body}
	}
	with := func(extra ...testbundle.TarEntry) []testbundle.TarEntry {
		return append(append([]testbundle.TarEntry{}, entries...), extra...)
	}
	without := func(name string) []testbundle.TarEntry {
		var out []testbundle.TarEntry
		for _, e := range entries {
			if e.Hdr.Name != name {
				out = append(out, e)
			}
		}
		return out
	}
	replaced := func(name string, body []byte) []testbundle.TarEntry {
		out := append([]testbundle.TarEntry{}, entries...)
		for i, e := range out {
			if e.Hdr.Name == name {
				out[i] = reg(name, body)
			}
		}
		return out
	}
	bigIndex := append([]byte(`{"schemaVersion":2,"manifests":[]}`), bytes.Repeat([]byte(" "), manifests.MaxManifestSize)...)
	for _, tc := range []struct {
		name    string
		file    func(testing.TB, string) string
		wantErr error
	}{
		{"empty file", bytesFile(nil), bundle.ErrNotBundle},
		{"not a tar", bytesFile(bytes.Repeat([]byte("not a tar\n"), 200)), bundle.ErrNotBundle},
		{"truncated in the first header", bytesFile(raw[:100]), bundle.ErrNotBundle},
		{"truncated in a blob", bytesFile(raw[:len(raw)/2]), bundle.ErrInvalidBundle},
		{"no index.json", tarFile(without("index.json")), bundle.ErrNotBundle},
		{"no oci-layout", tarFile(without("oci-layout")), bundle.ErrNotBundle},
		{"oci-layout not JSON", tarFile(replaced("oci-layout", []byte("1.0.0"))), bundle.ErrNotBundle},
		{"index.json not JSON", tarFile(replaced("index.json", []byte("{"))), bundle.ErrInvalidBundle},
		{"index.json over 4 MiB", tarFile(replaced("index.json", bigIndex)), bundle.ErrInvalidBundle},
		{"index.json twice", tarFile(with(entries[1])), bundle.ErrInvalidBundle},
		{"blob twice", tarFile(with(blob)), bundle.ErrInvalidBundle},
		{"parent path", tarFile(with(reg("../x", []byte("x")))), bundle.ErrInvalidBundle},
		{"parent path inside", tarFile(with(reg("blobs/../../x", []byte("x")))), bundle.ErrInvalidBundle},
		{"absolute path", tarFile(with(reg("/etc/passwd", []byte("x")))), bundle.ErrInvalidBundle},
		{"symlink", tarFile(with(testbundle.TarEntry{Hdr: &tar.Header{Typeflag: tar.TypeSymlink, Name: "blobs/sha256/" + strings.Repeat("0", 64), Linkname: "/etc/passwd"}})), bundle.ErrInvalidBundle},
		{"hardlink", tarFile(with(testbundle.TarEntry{Hdr: &tar.Header{Typeflag: tar.TypeLink, Name: "blobs/sha256/" + strings.Repeat("1", 64), Linkname: blob.Hdr.Name}})), bundle.ErrInvalidBundle},
		{"blob path not a digest", tarFile(with(reg("blobs/sha256/xyz", []byte("x")))), bundle.ErrInvalidBundle},
		{"blob path too deep", tarFile(with(reg("blobs/sha256/a/b", []byte("x")))), bundle.ErrInvalidBundle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.file(t, filepath.Join(t.TempDir(), "bad.tar"))
			r, err := bundle.Open(t.Context(), path)
			if err == nil {
				r.Close()
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Open: err = %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

// bytesFile writes b at the path it is given.
func bytesFile(b []byte) func(testing.TB, string) string {
	return func(t testing.TB, path string) string {
		check(t, os.WriteFile(path, b, 0o644))
		return path
	}
}

// tarFile writes entries as a tar at the path it is given.
func tarFile(entries []testbundle.TarEntry) func(testing.TB, string) string {
	return func(t testing.TB, path string) string { return testbundle.WriteTar(t, path, entries) }
}

// countingReaderAt counts the bytes read through it.
type countingReaderAt struct {
	ra io.ReaderAt
	n  atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.ra.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// TestNewReaderReadsHeadersOnly opens a bundle of many MB through a reader
// that counts bytes: opening reads the headers (at most three 512-byte
// blocks an entry, PAX included), oci-layout and index.json, not the blobs.
func TestNewReaderReadsHeadersOnly(t *testing.T) {
	images := map[string]testbundle.Image{
		"ferry.test/big:1":   testimages.Index(t, []string{"linux/amd64", "linux/arm64"}, testimages.WithRandomLayers(3, 1<<20)),
		"ferry.test/small:1": testimages.Image(t, "linux/amd64", testimages.WithRandomLayers(2, 1024)),
	}
	path := testbundle.Write(t, filepath.Join(t.TempDir(), "b.tar"), images)
	entries := testbundle.ReadTar(t, path)
	f, err := os.Open(path)
	check(t, err)
	defer f.Close()
	fi, err := f.Stat()
	check(t, err)
	if fi.Size() < 6<<20 {
		t.Fatalf("bundle is only %d bytes; the test wants many MB", fi.Size())
	}
	c := &countingReaderAt{ra: f}
	r, err := bundle.NewReader(c, fi.Size())
	check(t, err)
	limit := int64(len(entries))*3*512 + int64(len(entries[0].Body)+len(entries[1].Body))
	t.Logf("open read %d bytes of %d (%d entries, limit %d)", c.n.Load(), fi.Size(), len(entries), limit)
	if c.n.Load() > limit {
		t.Fatalf("open read %d bytes, more than %d for %d entries", c.n.Load(), limit, len(entries))
	}
	if len(r.Digests()) != len(entries)-2 || len(r.Images()) != 2 {
		t.Fatalf("reader has %d blobs and %d images, want %d and 2", len(r.Digests()), len(r.Images()), len(entries)-2)
	}
}

// TestReader checks the Reader's lookups and their errors.
func TestReader(t *testing.T) {
	path, images := writeFixture(t)
	r := testbundle.Open(t, path)
	ctx := context.Background()
	img, err := r.Image(ociIndex)
	check(t, err)
	raw, err := images[ociIndex].RawManifest()
	check(t, err)
	missing := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("missing"), Size: 7}
	short := img.Descriptor
	short.Size--

	names := []string{}
	for _, i := range r.Images() {
		names = append(names, i.Name)
	}
	if want := []string{dockerList, dockerSingle, ociIndex, ociSingle}; fmt.Sprint(names) != fmt.Sprint(want) {
		t.Errorf("Images() = %v, want %v", names, want)
	}
	digests := r.Digests()
	for i := 1; i < len(digests); i++ {
		if digests[i-1] >= digests[i] {
			t.Errorf("Digests() not sorted at %d", i)
		}
	}
	if len(r.Index().Manifests) != len(images) {
		t.Errorf("Index() has %d entries, want %d", len(r.Index().Manifests), len(images))
	}

	for _, tc := range []struct {
		name    string
		run     func() error
		wantErr error
	}{
		{"Image by short name", func() error {
			got, err := r.Image("oci-index:1")
			if err == nil && got.Descriptor.Digest != img.Descriptor.Digest {
				return fmt.Errorf("got %s", got.Descriptor.Digest)
			}
			return err
		}, nil},
		{"Image unknown", func() error { _, err := r.Image("nginx:1"); return err }, bundle.ErrImageNotFound},
		{"ReadAll root", func() error {
			b, err := r.ReadAll(ctx, img.Descriptor)
			if err == nil && !bytes.Equal(b, raw) {
				return fmt.Errorf("bytes differ")
			}
			return err
		}, nil},
		{"ReadAll missing", func() error { _, err := r.ReadAll(ctx, missing); return err }, manifests.ErrNotFound},
		{"Blob missing", func() error { _, err := r.Blob(missing.Digest); return err }, bundle.ErrBlobNotFound},
		{"Fetch missing", func() error { _, err := r.Fetch(ctx, missing); return err }, bundle.ErrBlobNotFound},
		{"Fetch wrong size", func() error { _, err := r.Fetch(ctx, short); return err }, manifests.ErrSizeMismatch},
		{"Exists", func() error {
			if ok, _ := r.Exists(ctx, img.Descriptor); !ok {
				return errors.New("root does not exist")
			}
			if ok, _ := r.Exists(ctx, missing); ok {
				return errors.New("missing blob exists")
			}
			return nil
		}, nil},
		{"Size", func() error {
			if n, ok := r.Size(img.Descriptor.Digest); !ok || n != int64(len(raw)) {
				return fmt.Errorf("Size = %d, %v", n, ok)
			}
			return nil
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// strictReaderAt fails the test on any read outside its bytes.
type strictReaderAt struct {
	t    *testing.T
	data []byte
}

func (s strictReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(s.data)) || int64(len(p)) > int64(len(s.data))-off {
		s.t.Errorf("read of %d bytes at %d outside the %d input bytes", len(p), off, len(s.data))
		return 0, io.ErrUnexpectedEOF
	}
	return copy(p, s.data[off:]), nil
}

// FuzzNewReader feeds NewReader tars: it must never panic, fail only with
// the package's sentinels, and never read outside the input, however its
// blobs are then read, inspected and verified.
func FuzzNewReader(f *testing.F) {
	// Seeds stay a few KB, so the fuzzer's minimizer keeps up.
	rnd := random.WithSource(rand.NewSource(1))
	idx, err := random.Index(16, 1, 1, rnd)
	check(f, err)
	img, err := random.Image(16, 1, rnd)
	check(f, err)
	seed := func(name string, image testbundle.Image) string {
		return testbundle.Write(f, filepath.Join(f.TempDir(), "seed.tar"), map[string]testbundle.Image{name: image})
	}
	path := seed("ferry.test/image:1", img)
	for _, p := range []string{path, seed("ferry.test/index:1", idx), rawBundle(f, 1, 16)} {
		b, err := os.ReadFile(p)
		check(f, err)
		f.Add(b)
	}
	b, err := os.ReadFile(path)
	check(f, err)
	f.Add(b[:len(b)/2])
	f.Add(b[:512+100])
	f.Add([]byte{})
	entries := testbundle.ReadTar(f, path)
	f.Add(readBack(f, append(entries[:2:2], entries[3:]...)))                           // a blob missing
	f.Add(readBack(f, append(append([]testbundle.TarEntry{}, entries...), entries[2]))) // a blob twice
	index := entries[1]
	index.Body = bytes.Replace(index.Body, []byte(`"size":`), []byte(`"size":1`), 1)
	f.Add(readBack(f, append([]testbundle.TarEntry{entries[0], index}, entries[2:]...))) // a wrong size

	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		r, err := bundle.NewReader(strictReaderAt{t, data}, int64(len(data)))
		if err != nil {
			if !errors.Is(err, bundle.ErrNotBundle) && !errors.Is(err, bundle.ErrInvalidBundle) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		for _, d := range r.Digests() {
			sr, err := r.Blob(d)
			if err != nil {
				t.Fatalf("Blob(%s) of a listed digest: %v", d, err)
			}
			if _, off, n := sr.Outer(); off < 0 || n < 0 || n > int64(len(data))-off {
				t.Fatalf("blob %s at %d+%d is outside the %d input bytes", d, off, n, len(data))
			}
			size, _ := r.Size(d)
			desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: size}
			if rc, err := r.Fetch(ctx, desc); err == nil {
				io.Copy(io.Discard, transfer.NewVerifyReader(rc, desc))
				rc.Close()
			}
			r.ReadAll(ctx, desc)
		}
		bundle.Inspect(ctx, r)
		bundle.Verify(ctx, r, bundle.VerifyOptions{Full: true, Jobs: 2})
	})
}

// readBack returns entries as tar bytes.
func readBack(t testing.TB, entries []testbundle.TarEntry) []byte {
	t.Helper()
	path := testbundle.WriteTar(t, filepath.Join(t.TempDir(), "seed.tar"), entries)
	b, err := os.ReadFile(path)
	check(t, err)
	return b
}

// rawBundle writes a bundle of n random blobs of size bytes; index.json
// names the first as an image (a leaf: no graph to walk), so opening it is
// all tar scan.
func rawBundle(tb testing.TB, n, size int) string {
	tb.Helper()
	rnd := rand.New(rand.NewSource(int64(n)))
	var idx ocispec.Index
	var descs []ocispec.Descriptor
	content := map[digest.Digest][]byte{}
	for i := 0; i < n; i++ {
		b := make([]byte, size)
		rnd.Read(b)
		d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(b), Size: int64(size)}
		content[d.Digest] = b
		descs = append(descs, d)
	}
	root := descs[0]
	root.Annotations = map[string]string{bundle.AnnotationRefName: "ferry.test/blob:1"}
	idx.Manifests = []ocispec.Descriptor{root}
	path := filepath.Join(tb.TempDir(), "raw.tar")
	w, err := bundle.Create(path, idx, descs)
	check(tb, err)
	for _, d := range descs {
		check(tb, w.Push(context.Background(), d, bytes.NewReader(content[d.Digest])))
	}
	check(tb, w.Commit())
	return path
}

// BenchmarkOpen opens a bundle of 2000 small blobs: the tar scan. MB/s
// counts the bundle's bytes, entries/s the tar entries.
func BenchmarkOpen(b *testing.B) {
	const n = 2000
	path := rawBundle(b, n, 4096)
	fi, err := os.Stat(path)
	check(b, err)
	b.SetBytes(fi.Size())
	b.ResetTimer()
	for range b.N {
		r, err := bundle.Open(b.Context(), path)
		check(b, err)
		r.Close()
	}
	b.ReportMetric(float64(n+2)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
