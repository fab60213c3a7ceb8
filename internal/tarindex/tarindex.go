// Package tarindex scans a tar once, reading headers only, and records
// where each entry's body lies, so its files can be read in place through
// io.SectionReader. It refuses unsafe names (absolute, or climbing out
// with ..) and duplicate entries.
package tarindex

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
)

// Sentinel errors of Scan.
var (
	// ErrNotTar means the input does not start with a tar header.
	ErrNotTar = errors.New("not a tar archive")
	// ErrInvalid means the tar is malformed, truncated or unsafe.
	ErrInvalid = errors.New("invalid tar")
)

// Entry is one file of the tar.
type Entry struct {
	// Name is the cleaned path, without a leading "./".
	Name string
	// Type is the tar type flag: tar.TypeReg, tar.TypeSymlink or tar.TypeLink.
	Type byte
	// Linkname is the target of a link entry.
	Linkname string
	// Offset and Size locate a regular file's body.
	Offset, Size int64
	// ModTime is the entry's modification time.
	ModTime time.Time
}

// blockSize is the size of a tar header block.
const blockSize = 512

// Index maps cleaned names to entries.
type Index map[string]Entry

// Scan reads the headers of the tar of size bytes in ra. Directories are
// skipped; device files and the like are refused. Each entry's body is
// skipped by seeking, so the bytes read are O(entries), not O(size).
func Scan(ra io.ReaderAt, size int64) (Index, error) {
	idx := Index{}
	sr := &offsetReader{r: io.NewSectionReader(ra, 0, size)}
	tr := tar.NewReader(sr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return idx, nil
		}
		if err != nil {
			if sr.pos <= blockSize {
				return nil, fmt.Errorf("%w: %v", ErrNotTar, err)
			}
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		name, err := CleanName(hdr.Name)
		if err != nil {
			return nil, err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg, tar.TypeSymlink, tar.TypeLink:
		default:
			return nil, fmt.Errorf("%w: %q has unsupported type %q", ErrInvalid, hdr.Name, hdr.Typeflag)
		}
		e := Entry{Name: name, Type: hdr.Typeflag, Linkname: hdr.Linkname, Offset: sr.pos, Size: hdr.Size, ModTime: hdr.ModTime}
		if hdr.Typeflag != tar.TypeReg {
			e.Size = 0
		}
		if e.Size > size-e.Offset {
			return nil, fmt.Errorf("%w: %q is truncated", ErrInvalid, hdr.Name)
		}
		if _, dup := idx[name]; dup {
			return nil, fmt.Errorf("%w: %q appears twice", ErrInvalid, hdr.Name)
		}
		idx[name] = e
	}
}

// CleanName cleans an entry name and refuses one that is absolute or
// climbs out of the archive.
func CleanName(name string) (string, error) {
	clean := path.Clean(strings.TrimPrefix(name, "./"))
	if clean == "." || clean == ".." || strings.HasPrefix(clean, "../") || path.IsAbs(clean) {
		return "", fmt.Errorf("%w: unsafe path %q", ErrInvalid, name)
	}
	return clean, nil
}

// Resolve follows symbolic and hard links (relative to the link's
// directory, at most 16 hops) to a regular file inside the archive.
func (idx Index) Resolve(name string) (Entry, error) {
	for range 16 {
		e, ok := idx[name]
		if !ok {
			return Entry{}, fmt.Errorf("%w: %q is not in the archive", ErrInvalid, name)
		}
		switch e.Type {
		case tar.TypeReg:
			return e, nil
		case tar.TypeLink:
			name = e.Linkname
		case tar.TypeSymlink:
			name = path.Join(path.Dir(e.Name), e.Linkname)
			if path.IsAbs(e.Linkname) {
				return Entry{}, fmt.Errorf("%w: link %q points outside the archive", ErrInvalid, e.Name)
			}
		}
		clean, err := CleanName(name)
		if err != nil {
			return Entry{}, fmt.Errorf("%w: link %q points outside the archive", ErrInvalid, e.Name)
		}
		name = clean
	}
	return Entry{}, fmt.Errorf("%w: too many links at %q", ErrInvalid, name)
}

// offsetReader tracks the position of a SectionReader as archive/tar reads
// and seeks through it.
type offsetReader struct {
	r   *io.SectionReader
	pos int64
}

func (o *offsetReader) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	o.pos += int64(n)
	return n, err
}

func (o *offsetReader) Seek(offset int64, whence int) (int64, error) {
	pos, err := o.r.Seek(offset, whence)
	if err == nil {
		o.pos = pos
	}
	return pos, err
}
