package bundle_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// TestWriteRoundTrip writes the fixture and checks the tar against the
// format: entry order, every blob exactly once, deterministic headers, the
// index.json annotations, and that the Reader gives back every image.
func TestWriteRoundTrip(t *testing.T) {
	path, images := writeFixture(t)
	want := map[digest.Digest]string{}
	for _, img := range images {
		for d, desc := range blobs(t, img) {
			if _, ok := want[d]; !ok || manifests.IsSmall(desc.MediaType) {
				want[d] = desc.MediaType
			}
		}
	}
	entries := testbundle.ReadTar(t, path)
	if len(entries) < 2 || entries[0].Hdr.Name != "oci-layout" || entries[1].Hdr.Name != "index.json" {
		t.Fatalf("first entries are not oci-layout, index.json: %v", names(entries))
	}
	if got := string(entries[0].Body); got != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %s", got)
	}
	seen := map[digest.Digest]bool{}
	lastRank := 0
	for _, e := range entries {
		h := e.Hdr
		if h.Typeflag != tar.TypeReg || h.Mode != 0o644 || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" || !h.ModTime.Equal(time.Unix(0, 0)) {
			t.Errorf("%s: header %c mode %o uid %d gid %d uname %q gname %q mtime %v: want a plain 0644 root file at the epoch",
				h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.Uname, h.Gname, h.ModTime)
		}
		if !strings.HasPrefix(h.Name, "blobs/sha256/") {
			continue
		}
		d := digest.NewDigestFromEncoded(digest.SHA256, strings.TrimPrefix(h.Name, "blobs/sha256/"))
		if seen[d] {
			t.Errorf("%s appears twice", d)
		}
		seen[d] = true
		if got := digest.FromBytes(e.Body); got != d {
			t.Errorf("%s holds bytes of %s", h.Name, got)
		}
		mt, ok := want[d]
		if !ok {
			t.Errorf("%s is in no image", d)
		}
		if r := rank(mt); r < lastRank {
			t.Errorf("%s (%s) comes after a blob of a later kind", d, mt)
		} else {
			lastRank = r
		}
	}
	if len(seen) != len(want) {
		t.Errorf("bundle has %d blobs, images reach %d", len(seen), len(want))
	}

	var idx ocispec.Index
	check(t, json.Unmarshal(entries[1].Body, &idx))
	if len(idx.Manifests) != len(images) {
		t.Fatalf("index.json has %d entries, want %d", len(idx.Manifests), len(images))
	}
	for i, d := range idx.Manifests {
		name := d.Annotations[bundle.AnnotationRefName]
		if name != d.Annotations[bundle.AnnotationContainerdName] {
			t.Errorf("entry %d: ref.name %q and containerd name %q differ", i, name, d.Annotations[bundle.AnnotationContainerdName])
		}
		if i > 0 && name < idx.Manifests[i-1].Annotations[bundle.AnnotationRefName] {
			t.Errorf("index.json entries are not sorted by name")
		}
		raw, err := images[name].RawManifest()
		check(t, err)
		if d.Digest != digest.FromBytes(raw) {
			t.Errorf("%s: index.json digest %s, upstream %s", name, d.Digest, digest.FromBytes(raw))
		}
	}

	r := testbundle.Open(t, path)
	if got := len(r.Digests()); got != len(want) {
		t.Errorf("Reader has %d blobs, want %d", got, len(want))
	}
	for name, img := range images {
		got, err := r.Image(name)
		check(t, err)
		raw, err := img.RawManifest()
		check(t, err)
		b, err := r.ReadAll(context.Background(), got.Descriptor)
		check(t, err)
		if !bytes.Equal(b, raw) {
			t.Errorf("%s: root manifest bytes differ from upstream", name)
		}
	}
}

func names(entries []testbundle.TarEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Hdr.Name)
	}
	return out
}

// rank orders blob kinds as the format does: indexes, manifests, configs,
// then layers.
func rank(mediaType string) int {
	kinds := []func(string) bool{manifests.IsIndex, manifests.IsManifest, manifests.IsConfig}
	i := 0
	for i < len(kinds) && !kinds[i](mediaType) {
		i++
	}
	return i
}

// TestWriteDeterministic writes the same images twice, from their upstream
// layout and again from the bundle itself, and as .tar.zst: every plain tar
// is byte-identical, and the zstd file decompresses to it and opens.
func TestWriteDeterministic(t *testing.T) {
	dir := t.TempDir()
	images := fixture(t)
	first := testbundle.Write(t, filepath.Join(dir, "a.tar"), images)
	second := testbundle.Write(t, filepath.Join(dir, "b.tar"), images)
	zst := testbundle.Write(t, filepath.Join(dir, "c.tar.zst"), images)
	fromBundle := filepath.Join(dir, "d.tar")
	if _, err := bundle.Write(context.Background(), fromBundle, sources(testbundle.Open(t, first), nil), bundle.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(first)
	check(t, err)

	f, err := os.Open(zst)
	check(t, err)
	defer f.Close()
	dec, err := zstd.NewReader(f)
	check(t, err)
	defer dec.Close()
	unzst, err := io.ReadAll(dec)
	check(t, err)

	for _, tc := range []struct {
		name string
		got  func() ([]byte, error)
	}{
		{"second write", func() ([]byte, error) { return os.ReadFile(second) }},
		{"written from the bundle", func() ([]byte, error) { return os.ReadFile(fromBundle) }},
		{"zstd decompressed", func() ([]byte, error) { return unzst, nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.got()
			check(t, err)
			if !bytes.Equal(got, want) {
				t.Fatalf("%d bytes differ from the first write's %d", len(got), len(want))
			}
		})
	}

	r := testbundle.Open(t, zst)
	if len(r.Images()) != len(images) {
		t.Fatalf("zstd bundle has %d images, want %d", len(r.Images()), len(images))
	}
	if _, err := bundle.Verify(context.Background(), r, bundle.VerifyOptions{Full: true}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{first, zst} {
		fi, err := os.Stat(p)
		check(t, err)
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("%s has mode %v, want 0644", p, fi.Mode().Perm())
		}
	}
}

// sources makes a bundle.Write source of every image of r, reading
// through wrap when it is set.
func sources(r *bundle.Reader, wrap func(transfer.Fetcher) transfer.Fetcher) []bundle.Source {
	var f transfer.Fetcher = r
	if wrap != nil {
		f = wrap(r)
	}
	var out []bundle.Source
	for _, img := range r.Images() {
		out = append(out, bundle.Source{Name: img.Name, Root: img.Descriptor, Fetcher: f})
	}
	return out
}

// tinyBlobs are three small blobs for Create.
func tinyBlobs() (ocispec.Index, []ocispec.Descriptor, map[digest.Digest][]byte) {
	content := map[digest.Digest][]byte{}
	var descs []ocispec.Descriptor
	for _, c := range "abc" {
		b := bytes.Repeat([]byte{byte(c)}, 1024) // whole tar blocks: the next header follows
		d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(b), Size: int64(len(b))}
		content[d.Digest] = b
		descs = append(descs, d)
	}
	root := descs[0]
	root.Annotations = map[string]string{bundle.AnnotationRefName: "ferry.test/tiny:1"}
	return ocispec.Index{Manifests: []ocispec.Descriptor{root}}, descs, content
}

// TestCreateModTime checks every entry's time: the epoch by default,
// WithModTime's otherwise.
func TestCreateModTime(t *testing.T) {
	when := time.Date(2024, 2, 29, 12, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		opts []bundle.WriterOption
		want time.Time
	}{
		{"default", nil, time.Unix(0, 0)},
		{"WithModTime", []bundle.WriterOption{bundle.WithModTime(when)}, when},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tiny.tar")
			idx, descs, content := tinyBlobs()
			w, err := bundle.Create(path, idx, descs, tc.opts...)
			check(t, err)
			for _, d := range descs {
				check(t, w.Push(context.Background(), d, bytes.NewReader(content[d.Digest])))
			}
			check(t, w.Commit())
			for _, e := range testbundle.ReadTar(t, path) {
				if !e.Hdr.ModTime.Equal(tc.want) {
					t.Errorf("%s: mtime %v, want %v", e.Hdr.Name, e.Hdr.ModTime, tc.want)
				}
			}
		})
	}
}

// TestWriterLeavesNothing checks that a Writer that does not commit, or
// whose Write fails or is cancelled, leaves no file, not even a temp file.
func TestWriterLeavesNothing(t *testing.T) {
	src, _ := writeFixture(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		run     func(t *testing.T, path string) error
		wantErr error
	}{
		{"abort", func(t *testing.T, path string) error {
			idx, descs, content := tinyBlobs()
			w, err := bundle.Create(path, idx, descs)
			check(t, err)
			check(t, w.Push(ctx, descs[0], bytes.NewReader(content[descs[0].Digest])))
			w.Abort()
			w.Abort()
			return nil
		}, nil},
		{"commit before every blob", func(t *testing.T, path string) error {
			idx, descs, _ := tinyBlobs()
			w, err := bundle.Create(path, idx, descs)
			check(t, err)
			return w.Commit()
		}, bundle.ErrIncomplete},
		{"unplanned blob", func(t *testing.T, path string) error {
			idx, descs, _ := tinyBlobs()
			w, err := bundle.Create(path, idx, descs[1:])
			check(t, err)
			defer w.Abort()
			return w.Push(ctx, descs[0], strings.NewReader("x"))
		}, bundle.ErrUnplannedBlob},
		{"cancelled while copying layers", func(t *testing.T, path string) error {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			wrap := func(f transfer.Fetcher) transfer.Fetcher { return cancelOnLayer{f, cancel} }
			_, err := bundle.Write(ctx, path, sources(testbundle.Open(t, src), wrap), bundle.WriteOptions{Jobs: 2})
			return err
		}, context.Canceled},
		{"source blob with wrong bytes", func(t *testing.T, path string) error {
			bad := filepath.Join(t.TempDir(), "bad.tar")
			b, err := os.ReadFile(src)
			check(t, err)
			check(t, os.WriteFile(bad, b, 0o644))
			r := testbundle.Open(t, bad)
			img, err := r.Image(ociSingle)
			check(t, err)
			m, err := r.ReadAll(ctx, img.Descriptor)
			check(t, err)
			parsed, err := manifests.ParseManifest(m)
			check(t, err)
			testbundle.FlipBlob(t, bad, parsed.Layers[0].Digest)
			_, err = bundle.Write(ctx, path, sources(r, nil), bundle.WriteOptions{})
			return err
		}, manifests.ErrDigestMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			err := tc.run(t, filepath.Join(dir, "out.tar"))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if left := dirEntries(t, dir); len(left) != 0 {
				t.Fatalf("left behind: %v", left)
			}
		})
	}
}

// TestPushLongerThanPlanned pushes a blob with extra bytes: Push fails and
// writes nothing beyond the blob, so pushing the right bytes afterwards
// still makes a good bundle.
func TestPushLongerThanPlanned(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "out.tar")
	idx, descs, content := tinyBlobs()
	w, err := bundle.Create(path, idx, descs)
	check(t, err)
	defer w.Abort()
	for _, d := range descs {
		longer := io.MultiReader(bytes.NewReader(content[d.Digest]), strings.NewReader("extra"))
		if err := w.Push(ctx, d, longer); !errors.Is(err, manifests.ErrSizeMismatch) {
			t.Fatalf("push %s with extra bytes: err = %v, want ErrSizeMismatch", d.Digest, err)
		}
		check(t, w.Push(ctx, d, bytes.NewReader(content[d.Digest])))
	}
	check(t, w.Commit())
	if _, err := bundle.Verify(ctx, testbundle.Open(t, path), bundle.VerifyOptions{Full: true}); err != nil {
		t.Fatal(err)
	}
}

// cancelOnLayer cancels the copy when the first layer is fetched.
type cancelOnLayer struct {
	transfer.Fetcher
	cancel context.CancelFunc
}

func (c cancelOnLayer) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if !manifests.IsSmall(desc.MediaType) {
		c.cancel()
	}
	return c.Fetcher.Fetch(ctx, desc)
}

// TestWriteFullDisk writes into a 1 MiB tmpfs: Create and Write fail with
// ENOSPC, naming the bytes needed, and leave nothing.
func TestWriteFullDisk(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs (tests run as root): %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	src, _ := writeFixture(t)
	big := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("big"), Size: 4 << 20}
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, path string) error
	}{
		{"Create", func(t *testing.T, path string) error {
			_, err := bundle.Create(path, ocispec.Index{Manifests: []ocispec.Descriptor{big}}, []ocispec.Descriptor{big})
			return err
		}},
		{"Write", func(t *testing.T, path string) error {
			_, err := bundle.Write(context.Background(), path, sources(testbundle.Open(t, src), nil), bundle.WriteOptions{})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "out.tar")
			err := tc.run(t, path)
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("err = %v, want ENOSPC", err)
			}
			if !strings.Contains(err.Error(), "need") || !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q does not say how much space is needed where", err)
			}
			if left := dirEntries(t, dir); len(left) != 0 {
				t.Fatalf("left behind: %v", left)
			}
		})
	}
}
