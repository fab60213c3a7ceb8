package registry

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"syscall"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-oci/ferry/bundle"
)

// ErrBundleChanged means a bundle file changed (size, inode or mtime) or
// was replaced after the server opened it: what it serves may no longer be
// what it read at start.
var ErrBundleChanged = errors.New("the bundle file changed since the server started: restart it")

// blobLocator finds where a blob's bytes lie. The blob fast path looks
// blobs up through it, so that one server can read several bundle files.
type blobLocator interface {
	Locate(d digest.Digest) (blobSection, bool)
}

// blobSection is a blob's bytes: size bytes at offset in a bundle file.
type blobSection struct {
	file         *bundleFile
	offset, size int64
}

// sectionMap is a blobLocator over the blobs of a bundle.Reader (one
// bundle, or several read as one).
type sectionMap map[digest.Digest]blobSection

// Locate implements blobLocator.
func (m sectionMap) Locate(d digest.Digest) (blobSection, bool) {
	s, ok := m[d]
	return s, ok
}

// newSectionMap finds where each blob of r lies, opening each bundle file
// once for sending (see bundleFile).
func newSectionMap(r *bundle.Reader) (sectionMap, []*bundleFile, error) {
	m := sectionMap{}
	files := map[io.ReaderAt]*bundleFile{}
	var list []*bundleFile
	for _, d := range r.Digests() {
		sr, err := r.Blob(d)
		if err != nil {
			return nil, list, err
		}
		ra, off, n := sr.Outer()
		f, ok := files[ra]
		if !ok {
			if f, err = newBundleFile(ra); err != nil {
				return nil, list, err
			}
			files[ra] = f
			list = append(list, f)
		}
		m[d] = blobSection{file: f, offset: off, size: n}
	}
	return m, list, nil
}

// bundleFile is one bundle file being served. Its identity (device,
// inode, size, mtime) is taken once; check compares the open file and the
// file at its path against it, so a file changed in place or replaced is
// detected. Bytes are sent from descriptors of the same open file
// (/proc/self/fd/N opened again: the same inode, never a file that
// replaced it, each with its own offset for sendfile), kept in a small
// pool; where that is not possible, they are copied through ReadAt.
type bundleFile struct {
	ra   io.ReaderAt
	file *os.File // nil when ra is not a file
	id   fileID
	idle chan *os.File
	warn sync.Once
}

// fileID is what identifies a file's content for check.
type fileID struct {
	dev, ino, size uint64
	mtime          syscall.Timespec
}

// maxIdleFiles bounds the descriptors kept open between requests.
const maxIdleFiles = 64

func newBundleFile(ra io.ReaderAt) (*bundleFile, error) {
	b := &bundleFile{ra: ra, idle: make(chan *os.File, maxIdleFiles)}
	f, ok := ra.(*os.File)
	if !ok {
		return b, nil
	}
	id, err := statFD(f)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", f.Name(), err)
	}
	b.file, b.id = f, id
	return b, nil
}

func statFD(f *os.File) (fileID, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return fileID{}, err
	}
	return idOf(&st), nil
}

func idOf(st *syscall.Stat_t) fileID {
	return fileID{dev: st.Dev, ino: st.Ino, size: uint64(st.Size), mtime: st.Mtim}
}

// check fails with ErrBundleChanged when the open file or the file at its
// path is no longer the one the server started with.
func (b *bundleFile) check() error {
	if b.file == nil {
		return nil
	}
	id, err := statFD(b.file)
	if err == nil && id == b.id {
		var st syscall.Stat_t
		if err = syscall.Stat(b.file.Name(), &st); err == nil && idOf(&st) == b.id {
			return nil
		}
	}
	return fmt.Errorf("%s: %w", b.file.Name(), ErrBundleChanged)
}

// open returns a descriptor of the bundle file with its own offset, or
// nil when there is none to have.
func (b *bundleFile) open() *os.File {
	if b.file == nil {
		return nil
	}
	select {
	case f := <-b.idle:
		return f
	default:
	}
	f, err := os.Open("/proc/self/fd/" + strconv.Itoa(int(b.file.Fd())))
	if err != nil {
		return nil
	}
	if id, err := statFD(f); err != nil || id.dev != b.id.dev || id.ino != b.id.ino {
		f.Close()
		return nil
	}
	return f
}

// release keeps f for the next request, or closes it.
func (b *bundleFile) release(f *os.File) {
	select {
	case b.idle <- f:
	default:
		f.Close()
	}
}

// close closes the idle descriptors; the bundle file is the reader's.
func (b *bundleFile) close() {
	for {
		select {
		case f := <-b.idle:
			f.Close()
		default:
			return
		}
	}
}
