package tarindex_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/ferry-oci/ferry/internal/tarindex"
)

type entry struct {
	name, link string
	typ        byte
	body       string
}

func tarOf(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil && e.typ == tar.TypeReg {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestScanAndResolve(t *testing.T) {
	b := tarOf(t,
		entry{name: "./dir/", typ: tar.TypeDir},
		entry{name: "./dir/file", typ: tar.TypeReg, body: "hello"},
		entry{name: "dir/sym", typ: tar.TypeSymlink, link: "file"},
		entry{name: "hard", typ: tar.TypeLink, link: "dir/sym"},
	)
	idx, err := tarindex.Scan(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"dir/file", "dir/sym", "hard"} {
		e, err := idx.Resolve(name)
		if err != nil {
			t.Fatalf("resolve %s: %v", name, err)
		}
		body := make([]byte, e.Size)
		if _, err := bytes.NewReader(b).ReadAt(body, e.Offset); err != nil || string(body) != "hello" {
			t.Errorf("%s: body %q (%v) read in place, want hello", name, body, err)
		}
	}
	if _, ok := idx["dir"]; ok {
		t.Error("directories are indexed")
	}
}

func TestScanRefuses(t *testing.T) {
	tests := []struct {
		name string
		data func(t *testing.T) []byte
		want error
	}{
		{"not a tar", func(*testing.T) []byte { return []byte("plain text, no tar header at all") }, tarindex.ErrNotTar},
		{"climbs out", func(t *testing.T) []byte { return tarOf(t, entry{name: "../etc/passwd", typ: tar.TypeReg, body: "x"}) }, tarindex.ErrInvalid},
		{"absolute", func(t *testing.T) []byte { return tarOf(t, entry{name: "/etc/passwd", typ: tar.TypeReg, body: "x"}) }, tarindex.ErrInvalid},
		{"twice", func(t *testing.T) []byte {
			return tarOf(t, entry{name: "a", typ: tar.TypeReg, body: "1"}, entry{name: "./a", typ: tar.TypeReg, body: "2"})
		}, tarindex.ErrInvalid},
		{"device", func(t *testing.T) []byte { return tarOf(t, entry{name: "dev", typ: tar.TypeChar}) }, tarindex.ErrInvalid},
		{"truncated", func(t *testing.T) []byte {
			b := tarOf(t, entry{name: "big", typ: tar.TypeReg, body: string(make([]byte, 4096))})
			return b[:1024]
		}, tarindex.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.data(t)
			if _, err := tarindex.Scan(bytes.NewReader(b), int64(len(b))); !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
		})
	}
}

func TestResolveRefusesLinksOut(t *testing.T) {
	b := tarOf(t,
		entry{name: "out", typ: tar.TypeSymlink, link: "../../etc/passwd"},
		entry{name: "abs", typ: tar.TypeSymlink, link: "/etc/passwd"},
		entry{name: "loop", typ: tar.TypeSymlink, link: "loop"},
	)
	idx, err := tarindex.Scan(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"out", "abs", "loop", "missing"} {
		if _, err := idx.Resolve(name); !errors.Is(err, tarindex.ErrInvalid) {
			t.Errorf("resolve %s: %v, want ErrInvalid", name, err)
		}
	}
}
