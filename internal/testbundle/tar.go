package testbundle

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TarEntry is one entry of a tar: its header and body.
type TarEntry struct {
	Hdr  *tar.Header
	Body []byte
}

// ReadTar reads every entry of the tar at path.
func ReadTar(t testing.TB, path string) []TarEntry {
	t.Helper()
	b, err := os.ReadFile(path)
	check(t, err)
	var out []TarEntry
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		check(t, err)
		body, err := io.ReadAll(tr)
		check(t, err)
		out = append(out, TarEntry{Hdr: hdr, Body: body})
	}
}

// WriteTar writes entries as a tar at path and returns path; a regular
// file's size is its body's.
func WriteTar(t testing.TB, path string, entries []TarEntry) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := *e.Hdr
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(e.Body))
		}
		check(t, tw.WriteHeader(&hdr))
		_, err := tw.Write(e.Body)
		check(t, err)
	}
	check(t, tw.Close())
	check(t, os.WriteFile(path, buf.Bytes(), 0o644))
	return path
}

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Untar extracts a bundle (regular files only, as ferry writes them) into
// a temp dir and returns it.
func Untar(t testing.TB, path string) string {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open(path)
	check(t, err)
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return dir
		}
		check(t, err)
		if hdr.Typeflag != tar.TypeReg || !filepath.IsLocal(hdr.Name) {
			t.Fatalf("unexpected entry %q (type %c)", hdr.Name, hdr.Typeflag)
		}
		dst := filepath.Join(dir, hdr.Name)
		check(t, os.MkdirAll(filepath.Dir(dst), 0o755))
		out, err := os.Create(dst)
		check(t, err)
		_, err = io.Copy(out, tr)
		check(t, err)
		check(t, out.Close())
	}
}
