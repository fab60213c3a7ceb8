package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/distribution/distribution/v3/registry/api/errcode"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"

	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// blobRoute matches a blob's URL: repository and digest.
var blobRoute = regexp.MustCompile(`^/v2/(.+)/blobs/([^/]+)$`)

// blobServer answers GET and HEAD of the bundle's blobs straight from the
// bundle file, in front of distribution, which answers everything else
// (and blobs that are not the bundle's). It serves a blob in a repository
// only when the repository links it as distribution would (a blob of
// another repository falls through to distribution's 404). Bytes go out
// through sendfile on plain HTTP and through net/http's pooled copy
// buffer on TLS: nothing is allocated per request in proportion to the
// blob. Each blob is verified against its digest before its first byte is
// sent, once for the life of the server (see verifier).
type blobServer struct {
	next   http.Handler
	blobs  blobLocator
	linked func(repo string, d digest.Digest) bool
	verify *verifier
	log    Logger
}

func (s *blobServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		if m := blobRoute.FindStringSubmatch(r.URL.Path); m != nil {
			if d, err := digest.Parse(m[2]); err == nil {
				if sec, ok := s.blobs.Locate(d); ok && s.linked(m[1], d) {
					s.serveBlob(w, r, d, sec)
					return
				}
			}
		}
	}
	s.next.ServeHTTP(w, r)
}

// serveBlob answers for one blob of the bundle, with Range and
// conditional requests (ETag is the digest) handled by http.ServeContent.
func (s *blobServer) serveBlob(w http.ResponseWriter, r *http.Request, d digest.Digest, sec blobSection) {
	if err := sec.file.check(); err != nil {
		sec.file.warn.Do(func() { s.log.Errorf("%v", err) })
		serveError(w, errcode.ErrorCodeUnavailable.WithMessage(ErrBundleChanged.Error()))
		return
	}
	var err error
	if r.Method == http.MethodHead {
		err = s.verify.failed(d)
	} else {
		err = s.verify.verify(d, sec)
	}
	if err != nil {
		msg := fmt.Sprintf("blob %s cannot be read from the served bundle: the server's log says why", d)
		if damaged(err) {
			msg = fmt.Sprintf("blob %s in the served bundle is damaged: its bytes do not match its digest", d)
		}
		serveError(w, errcode.ErrorCodeUnknown.WithMessage(msg))
		return
	}
	h := w.Header()
	h.Set("Docker-Distribution-API-Version", "registry/2.0")
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Etag", `"`+d.String()+`"`)
	h.Set("Cache-Control", "max-age=31536000")
	if r.Method == http.MethodHead {
		h.Set("Accept-Ranges", "bytes")
		h.Set("Content-Length", strconv.FormatInt(sec.size, 10))
		w.WriteHeader(http.StatusOK)
		return
	}
	content := sec.open()
	defer content.close()
	http.ServeContent(w, r, "", time.Time{}, content)
}

// open returns the blob's bytes for one response.
func (s blobSection) open() *sectionFile {
	return &sectionFile{sec: s, f: s.file.open()}
}

// sectionFile is a blob's bytes for one response: an io.ReadSeeker over
// its own descriptor of the bundle file, which net/http's sendfile path
// recognizes (it is a syscall.Conn) and sends from the descriptor's offset,
// or, without a descriptor, over ReadAt.
type sectionFile struct {
	sec blobSection
	f   *os.File
	pos int64
}

// Read implements io.Reader.
func (s *sectionFile) Read(p []byte) (int, error) {
	if s.pos >= s.sec.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), s.sec.size-s.pos)]
	var n int
	var err error
	if s.f != nil {
		n, err = s.f.Read(p)
	} else {
		n, err = s.sec.file.ra.ReadAt(p, s.sec.offset+s.pos)
	}
	s.pos += int64(n)
	if err == io.EOF && s.pos < s.sec.size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// Seek implements io.Seeker within the blob.
func (s *sectionFile) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += s.pos
	case io.SeekEnd:
		offset += s.sec.size
	}
	if offset < 0 || offset > s.sec.size {
		return s.pos, fmt.Errorf("seek to %d: outside the blob's %d bytes", offset, s.sec.size)
	}
	if s.f != nil {
		if _, err := s.f.Seek(s.sec.offset+offset, io.SeekStart); err != nil {
			return s.pos, err
		}
	}
	s.pos = offset
	return offset, nil
}

// SyscallConn lets net/http send the bytes with sendfile, from the
// descriptor's offset; without a descriptor, it refuses, so that the
// bytes are copied.
func (s *sectionFile) SyscallConn() (syscall.RawConn, error) {
	if s.f == nil {
		return nil, errors.ErrUnsupported
	}
	return s.f.SyscallConn()
}

func (s *sectionFile) close() {
	if s.f != nil {
		s.sec.file.release(s.f)
	}
}

// verifier checks each blob against its digest once and remembers the
// outcome for the life of the server: a blob is sent only once it is
// known right, and a damaged one is never sent (every request for it
// fails, and the first one logs it). Requests for a blob that is being
// checked wait for that check.
type verifier struct {
	results  sync.Map // digest.Digest -> error (nil: verified)
	inflight singleflight.Group
	log      Logger
}

// verifyBufferSize is the read size of a check.
const verifyBufferSize = 1 << 20

var verifyBuffers = sync.Pool{New: func() any { b := make([]byte, verifyBufferSize); return &b }}

// known reports whether a blob was checked, and the remembered outcome
// (nil: verified).
func (v *verifier) known(d digest.Digest) (bool, error) {
	res, ok := v.results.Load(d)
	if !ok || res == nil {
		return ok, nil
	}
	return true, res.(error)
}

// failed returns the error of a blob found damaged, or nil.
func (v *verifier) failed(d digest.Digest) error {
	_, err := v.known(d)
	return err
}

// verify returns nil once the blob's bytes are known right.
func (v *verifier) verify(d digest.Digest, sec blobSection) error {
	if ok, err := v.known(d); ok {
		return err
	}
	_, err, _ := v.inflight.Do(string(d), func() (any, error) {
		if ok, err := v.known(d); ok {
			return nil, err
		}
		err := check(d, sec)
		if err != nil && !damaged(err) {
			v.log.Errorf("bundle blob %s: cannot read it: %v", d, err)
			return nil, err // not remembered: a read error may pass
		}
		if err != nil {
			v.log.Errorf("bundle blob %v: requests for it fail", err)
			v.results.Store(d, err)
		} else {
			v.results.Store(d, nil)
		}
		return nil, err
	})
	return err
}

// damaged reports whether err says a blob's bytes are not its digest's.
func damaged(err error) bool {
	return errors.Is(err, manifests.ErrDigestMismatch) || errors.Is(err, manifests.ErrSizeMismatch)
}

// check reads a blob whole and checks it against its digest.
func check(d digest.Digest, sec blobSection) error {
	buf := verifyBuffers.Get().(*[]byte)
	defer verifyBuffers.Put(buf)
	vr := transfer.NewVerifyReader(io.NewSectionReader(sec.file.ra, sec.offset, sec.size), ocispec.Descriptor{Digest: d, Size: sec.size})
	for {
		if _, err := vr.Read(*buf); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

// verifyAll checks every blob of the bundle now, a few at a time, and
// fails naming the damaged ones.
func (v *verifier) verifyAll(ctx context.Context, blobs sectionMap) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	var mu sync.Mutex
	var bad []error
	for d, sec := range blobs {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := v.verify(d, sec); err != nil {
				mu.Lock()
				bad = append(bad, err)
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if len(bad) > 0 {
		return fmt.Errorf("%d blobs of the bundle are damaged (run ferry verify): %w", len(bad), errors.Join(bad...))
	}
	return nil
}
