package bundle_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
)

// bomb is a zstd file built from frames: tar bytes, and runs of a frame
// of one MiB of zeros, so a few hundred KB decompress to gigabytes.
type bomb struct {
	enc  *zstd.Encoder
	zero []byte
	buf  bytes.Buffer
}

func newBomb(t testing.TB) *bomb {
	enc, err := zstd.NewWriter(nil)
	check(t, err)
	return &bomb{enc: enc, zero: enc.EncodeAll(make([]byte, 1<<20), nil)}
}

// raw adds bytes as a frame.
func (b *bomb) raw(p []byte) *bomb { b.buf.Write(b.enc.EncodeAll(p, nil)); return b }

// zeros adds n MiB of zeros.
func (b *bomb) zeros(n int) *bomb {
	for range n {
		b.buf.Write(b.zero)
	}
	return b
}

// header adds a tar header of a regular file.
func (b *bomb) header(t testing.TB, name string, size int64) *bomb {
	var h bytes.Buffer
	check(t, tar.NewWriter(&h).WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, Format: tar.FormatPAX}))
	return b.raw(h.Bytes())
}

// file adds a small regular file with its padding.
func (b *bomb) file(t testing.TB, name string, body []byte) *bomb {
	b.header(t, name, int64(len(body)))
	return b.raw(append(body, make([]byte, (512-len(body)%512)%512)...))
}

func (b *bomb) write(t testing.TB, path string) string {
	check(t, os.WriteFile(path, b.buf.Bytes(), 0o644))
	return path
}

// TestOpenRefusesZstdBombs opens hostile .tar.zst files of 4 GiB
// decompressed with a 64 MiB temporary directory: each is refused as soon
// as its tar shows it is not a bundle or will not fit, and the directory
// is left as it was.
func TestOpenRefusesZstdBombs(t *testing.T) {
	tmp := testenv.Tmpfs(t, "64m")
	dir := t.TempDir()
	layoutJSON := []byte(`{"imageLayoutVersion":"1.0.0"}`)
	indexJSON := []byte(`{"schemaVersion":2,"manifests":[]}`)
	const gib4 = 4 << 10 // MiB
	cases := []struct {
		name string
		make func(b *bomb) *bomb
		want error
	}{
		{"one 4 GiB blob after a valid index", func(b *bomb) *bomb {
			return b.file(t, "oci-layout", layoutJSON).file(t, "index.json", indexJSON).
				header(t, "blobs/sha256/"+digest.FromString("big").Encoded(), gib4<<20).zeros(gib4)
		}, bundle.ErrTempSpace},
		{"256 blobs of 16 MiB", func(b *bomb) *bomb {
			b.file(t, "oci-layout", layoutJSON).file(t, "index.json", indexJSON)
			for i := range 256 {
				b.header(t, "blobs/sha256/"+digest.FromString(fmt.Sprint(i)).Encoded(), 16<<20).zeros(16)
			}
			return b
		}, bundle.ErrTempSpace},
		{"4 GiB of zeros", func(b *bomb) *bomb { return b.zeros(gib4) }, bundle.ErrNotBundle},
		{"a tar of other files", func(b *bomb) *bomb {
			return b.header(t, "etc/passwd", gib4<<20).zeros(gib4)
		}, bundle.ErrNotBundle},
		{"a 4 GiB index.json", func(b *bomb) *bomb {
			return b.file(t, "oci-layout", layoutJSON).header(t, "index.json", gib4<<20).zeros(gib4)
		}, bundle.ErrInvalidBundle},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := c.make(newBomb(t)).write(t, filepath.Join(dir, fmt.Sprintf("bomb%d.tar.zst", i)))
			free := freeBytes(t, tmp)
			start := time.Now()
			r, err := bundle.Open(t.Context(), path, bundle.WithTempDir(tmp))
			if err == nil {
				r.Close()
				t.Fatal("Open accepted the bomb")
			}
			t.Logf("refused in %s: %v", time.Since(start).Round(time.Millisecond), err)
			if !errors.Is(err, c.want) {
				t.Errorf("error does not wrap %v", c.want)
			}
			if errors.Is(err, bundle.ErrTempSpace) && !strings.Contains(err.Error(), "needs at least") {
				t.Errorf("error does not say how much room is needed: %v", err)
			}
			if names := dirEntries(t, tmp); len(names) > 0 {
				t.Errorf("temporary directory holds %v", names)
			}
			if got := freeBytes(t, tmp); got != free {
				t.Errorf("temporary directory had %d bytes free, has %d", free, got)
			}
		})
	}
}

func freeBytes(t testing.TB, dir string) int64 {
	var st unix.Statfs_t
	check(t, unix.Statfs(dir, &st))
	return int64(st.Bavail) * st.Bsize
}

// TestOpenCopiesHaveNoName opens a .tar.zst: while it is open its
// temporary copy has no name in the directory, so a killed process
// leaves nothing, and after Close the space is free again.
func TestOpenCopiesHaveNoName(t *testing.T) {
	tmp := testenv.Tmpfs(t, "64m")
	path := testbundle.Write(t, filepath.Join(t.TempDir(), "b.tar.zst"), fixture(t))
	free := freeBytes(t, tmp)
	r, err := bundle.Open(t.Context(), path, bundle.WithTempDir(tmp))
	check(t, err)
	if names := dirEntries(t, tmp); len(names) > 0 {
		t.Errorf("the open copy has a name: %v", names)
	}
	if freeBytes(t, tmp) >= free {
		t.Error("the copy is not in the temporary directory")
	}
	if len(r.Images()) != 4 {
		t.Errorf("%d images, want 4", len(r.Images()))
	}
	check(t, r.Close())
	if got := freeBytes(t, tmp); got != free {
		t.Errorf("after Close %d bytes free, want %d", got, free)
	}
}

// TestOpenStreams reads a bundle, plain and zstd, from a pipe (what a
// shell's <(cat b.tar) gives) and from a FIFO, with the same result as
// the file.
func TestOpenStreams(t *testing.T) {
	images := fixture(t)
	plain := testbundle.Write(t, filepath.Join(t.TempDir(), "b.tar"), images)
	zst := testbundle.Write(t, filepath.Join(t.TempDir(), "b.tar.zst"), images)
	want := inspect(t, testbundle.Open(t, plain))
	for _, src := range []string{plain, zst} {
		t.Run(filepath.Base(src)+" through a pipe", func(t *testing.T) {
			pr, pw, err := os.Pipe()
			check(t, err)
			defer pr.Close()
			go feed(pw, src)
			r := testbundle.Open(t, fmt.Sprintf("/dev/fd/%d", pr.Fd()))
			if got := inspect(t, r); !bytes.Equal(got, want) {
				t.Errorf("inspect through a pipe:\n%s\nwant\n%s", got, want)
			}
		})
		t.Run(filepath.Base(src)+" through a FIFO", func(t *testing.T) {
			fifo := mkfifo(t)
			go func() {
				w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
				if err == nil {
					feed(w, src)
				}
			}()
			if len(testbundle.Open(t, fifo).Images()) != 4 {
				t.Error("FIFO bundle does not have 4 images")
			}
		})
	}
}

// TestOpenFIFOCancelled opens a FIFO nobody writes to, and one whose
// writer stalls: cancelling the context ends both.
func TestOpenFIFOCancelled(t *testing.T) {
	plain, _ := writeFixture(t)
	head, err := os.ReadFile(plain)
	check(t, err)
	for _, c := range []struct {
		name   string
		writer func(fifo string)
	}{
		{"no writer", func(string) {}},
		{"stalled writer", func(fifo string) {
			w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
			if err != nil {
				return
			}
			w.Write(head[:2048])
			t.Cleanup(func() { w.Close() })
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fifo := mkfifo(t)
			go c.writer(fifo)
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			r, err := bundle.Open(ctx, fifo, bundle.WithTempDir(t.TempDir()))
			if err == nil {
				r.Close()
				t.Fatal("Open of a FIFO that never ends returned a bundle")
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v, want the context's", err)
			}
		})
	}
}

func mkfifo(t testing.TB) string {
	fifo := filepath.Join(t.TempDir(), "fifo")
	check(t, syscall.Mkfifo(fifo, 0o600))
	return fifo
}

// feed copies the file at src into w and closes w.
func feed(w *os.File, src string) {
	defer w.Close()
	f, err := os.Open(src)
	if err != nil {
		return
	}
	defer f.Close()
	io.Copy(w, f)
}

// inspect renders a bundle's Inspect report.
func inspect(t testing.TB, r *bundle.Reader) []byte {
	rep, err := bundle.Inspect(t.Context(), r)
	check(t, err)
	return []byte(fmt.Sprintf("%+v", *rep))
}

// TestOpenForeignFormats opens a docker-archive (as docker save writes it,
// layer.tar links included, and as go-containerregistry writes it) and an
// OCI layout directory: each is refused with the ferry build source that
// reads it.
func TestOpenForeignFormats(t *testing.T) {
	dir := t.TempDir()
	img := testimages.Image(t, "linux/amd64")
	ggcr := filepath.Join(dir, "ggcr.tar")
	check(t, tarball.WriteToFile(ggcr, name.MustParseReference("example.com/app:1"), img))
	legacy := testbundle.WriteTar(t, filepath.Join(dir, "saved.tar"), []testbundle.TarEntry{
		{Hdr: &tar.Header{Name: "0123/", Typeflag: tar.TypeDir}},
		{Hdr: &tar.Header{Name: "0123/VERSION", Typeflag: tar.TypeReg}, Body: []byte("1.0")},
		{Hdr: &tar.Header{Name: "0123/layer.tar", Typeflag: tar.TypeReg}, Body: []byte("layer")},
		{Hdr: &tar.Header{Name: "4567/", Typeflag: tar.TypeDir}},
		{Hdr: &tar.Header{Name: "4567/layer.tar", Typeflag: tar.TypeSymlink, Linkname: "../0123/layer.tar"}},
		{Hdr: &tar.Header{Name: "manifest.json", Typeflag: tar.TypeReg}, Body: []byte(`[{"Config":"c.json","Layers":["0123/layer.tar","4567/layer.tar"]}]`)},
	})
	ociDir := filepath.Join(dir, "layout")
	_, err := layout.Write(ociDir, empty.Index)
	check(t, err)
	for _, c := range []struct {
		path, hint string
		want       error
	}{
		{ggcr, "ferry build --image docker-archive:" + ggcr, bundle.ErrDockerArchive},
		{legacy, "ferry build --image docker-archive:" + legacy, bundle.ErrDockerArchive},
		{ociDir, "ferry build --image oci:" + ociDir, bundle.ErrLayoutDir},
	} {
		r, err := bundle.Open(t.Context(), c.path)
		if err == nil {
			r.Close()
			t.Errorf("%s: opened as a bundle", c.path)
			continue
		}
		if !errors.Is(err, c.want) || !errors.Is(err, bundle.ErrNotBundle) || !strings.Contains(err.Error(), c.hint) {
			t.Errorf("%s: error %q, want %v saying %q", c.path, err, c.want, c.hint)
		}
	}
}
