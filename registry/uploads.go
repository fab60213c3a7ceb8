package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/distribution/distribution/v3/registry/api/errcode"
	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
)

// Defaults of a writable registry's upload limits (see Options).
const (
	DefaultMaxUpload     = 8 << 30
	DefaultMinFreeSpace  = 1 << 30
	DefaultUploadExpiry  = time.Hour
	DefaultBodyTimeout   = 30 * time.Second
	bodyMinRate          = 16 << 10 // bytes per second a body must average after its grace
	freeSpaceCheckPeriod = 16 << 20 // bytes of a body between two free-space checks
)

// Errors a request body fails with; guardUploads answers them.
var (
	errUploadTooLarge = errors.New("the upload exceeds the server's --max-upload")
	errDiskFull       = errors.New("the server's data directory is short of free space")
	errBodyTimeout    = errors.New("the request body arrived too slowly")
)

// uploadRoute matches an upload's URL: repository and upload id.
var uploadRoute = regexp.MustCompile(`^/v2/(.+)/blobs/uploads/([^/]*)$`)

// uploadGuard bounds what writes may cost a writable registry: the size of
// one upload, the free space they leave, and how slowly a body may arrive.
type uploadGuard struct {
	upper    storagedriver.StorageDriver
	dataDir  string
	maxSize  int64
	minFree  int64
	deadline time.Duration
}

// guardBody replaces the body of a write with a guarded one, or answers
// the request itself when it cannot fit (false).
func (g *uploadGuard) guardBody(w http.ResponseWriter, r *http.Request) (*guardedBody, bool) {
	remaining := g.maxSize - g.uploaded(r)
	if r.ContentLength > remaining {
		serveStatus(w, http.StatusRequestEntityTooLarge, errcode.ErrorCodeBlobUploadInvalid, errUploadTooLarge)
		return nil, false
	}
	if err := g.checkFree(max(r.ContentLength, 0)); err != nil {
		serveStatus(w, http.StatusInsufficientStorage, errcode.ErrorCodeUnknown, err)
		return nil, false
	}
	body := &guardedBody{ReadCloser: r.Body, g: g, rc: http.NewResponseController(w), start: time.Now(), remaining: remaining}
	r.Body = body
	return body, true
}

// uploaded is how many bytes the upload a request continues holds.
func (g *uploadGuard) uploaded(r *http.Request) int64 {
	m := uploadRoute.FindStringSubmatch(r.URL.Path)
	if m == nil || m[2] == "" {
		return 0
	}
	fi, err := g.upper.Stat(r.Context(), repositoryPath(m[1], "_uploads", m[2], "data"))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// checkFree fails when writing more bytes would leave less than minFree.
func (g *uploadGuard) checkFree(more int64) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(g.dataDir, &st); err != nil {
		return nil // the write itself reports a real problem
	}
	if free := int64(st.Bavail) * int64(st.Bsize); free-more < g.minFree {
		return fmt.Errorf("%w: %d MB free, %d MB kept free", errDiskFull, free>>20, g.minFree>>20)
	}
	return nil
}

// guardedBody is a write's request body: at most remaining bytes, read
// before a deadline that moves on as bytes arrive (a pause longer than
// the guard's deadline, or an average under bodyMinRate after twice
// that, closes the connection), with the free space checked as it goes.
type guardedBody struct {
	io.ReadCloser
	g         *uploadGuard
	rc        *http.ResponseController
	start     time.Time
	read      int64
	remaining int64
	unchecked int64

	mu  sync.Mutex
	err error
}

func (b *guardedBody) Read(p []byte) (int, error) {
	if err := b.failure(); err != nil {
		return 0, err
	}
	now := time.Now()
	due := b.start.Add(2*b.g.deadline + time.Duration(b.read*int64(time.Second)/bodyMinRate))
	if idle := now.Add(b.g.deadline); idle.Before(due) {
		due = idle
	}
	_ = b.rc.SetReadDeadline(due)
	n, err := b.ReadCloser.Read(p)
	b.read += int64(n)
	b.unchecked += int64(n)
	switch {
	case isTimeout(err):
		err = b.fail(errBodyTimeout)
	case b.read > b.remaining:
		err = b.fail(errUploadTooLarge)
	case b.unchecked >= freeSpaceCheckPeriod:
		b.unchecked = 0
		if ferr := b.g.checkFree(0); ferr != nil {
			err = b.fail(ferr)
		}
	}
	return n, err
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

func (b *guardedBody) fail(err error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		b.err = err
	}
	return b.err
}

// failure is why the body failed, or nil.
func (b *guardedBody) failure() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// serveStatus answers a registry error with status and err's message.
func serveStatus(w http.ResponseWriter, status int, code errcode.ErrorCode, err error) {
	w.Header().Del("Content-Length")
	w.Header().Del("Docker-Upload-UUID")
	w.Header().Del("Location")
	w.Header().Del("Range")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = errcode.ServeJSON(writeOnce{w}, code.WithMessage(err.Error()))
}

// writeOnce lets errcode.ServeJSON write a body after the status is sent.
type writeOnce struct{ http.ResponseWriter }

func (writeOnce) WriteHeader(int) {}

// statusOf is the status a body failure is answered with.
func statusOf(err error) (int, errcode.ErrorCode) {
	switch {
	case errors.Is(err, errUploadTooLarge):
		return http.StatusRequestEntityTooLarge, errcode.ErrorCodeBlobUploadInvalid
	case errors.Is(err, errDiskFull):
		return http.StatusInsufficientStorage, errcode.ErrorCodeUnknown
	default:
		return http.StatusRequestTimeout, errcode.ErrorCodeUnknown
	}
}

// guardedResponse is distribution's response to a request: a failure of
// the request body (failed) replaces the error distribution would answer,
// and a server error (5xx) loses its body, which may name server paths:
// the log keeps it, the client gets a message without them.
type guardedResponse struct {
	http.ResponseWriter
	failed func() error
	log    Logger
	what   string
	// hidden drops what distribution writes; logged says whether to log it.
	hidden, logged bool
}

func (w *guardedResponse) WriteHeader(code int) {
	if w.hidden {
		return
	}
	if code >= 400 && w.failed != nil {
		if err := w.failed(); err != nil {
			w.hidden = true
			w.Header().Set("Connection", "close")
			status, ecode := statusOf(err)
			serveStatus(w.ResponseWriter, status, ecode, err)
			return
		}
	}
	if code >= 500 {
		w.hidden, w.logged = true, true
		serveStatus(w.ResponseWriter, code, errcode.ErrorCodeUnknown, errors.New("internal server error: the server's log says more"))
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *guardedResponse) Write(p []byte) (int, error) {
	if w.hidden {
		if w.logged {
			w.log.Errorf("%s: %s", w.what, strings.TrimSpace(string(p)))
		}
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap gives http.ResponseController the writer underneath.
func (w *guardedResponse) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush implements http.Flusher.
func (w *guardedResponse) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok && !w.hidden {
		f.Flush()
	}
}

// guard answers for distribution: it keeps server paths out of the
// bodies of 5xx responses, and, when uploads is set, guards the bodies of
// writes and answers their failures.
func guard(next http.Handler, uploads *uploadGuard, log Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gw := &guardedResponse{ResponseWriter: w, log: log, what: r.Method + " " + r.URL.Path}
		switch r.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
			if uploads != nil {
				body, ok := uploads.guardBody(w, r)
				if !ok {
					return
				}
				gw.failed = body.failure
			}
		}
		next.ServeHTTP(gw, r)
	})
}

// purgeUploads removes, every expiry/4, the uploads started more than
// expiry ago and never finished, until ctx ends.
func purgeUploads(ctx context.Context, upper storagedriver.StorageDriver, expiry time.Duration, log Logger) {
	tick := time.NewTicker(max(expiry/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		deleted, errs := storage.PurgeUploads(ctx, upper, time.Now().Add(-expiry), true)
		if len(deleted) > 0 {
			log.Infof("removed %d unfinished uploads older than %v", len(deleted), expiry)
		}
		for _, err := range errs {
			if !notFound(err) && ctx.Err() == nil {
				log.Warnf("purging unfinished uploads: %v", err)
			}
		}
	}
}
