package registry

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/api/errcode"
	"github.com/distribution/distribution/v3/registry/handlers"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/distribution/reference"
	"github.com/felixge/httpsnoop"
	"github.com/opencontainers/go-digest"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/manifests"
)

// DefaultShutdownTimeout is how long Serve waits for requests in flight
// when its context ends, unless Options.ShutdownTimeout says otherwise.
const DefaultShutdownTimeout = 30 * time.Second

// maxListEntries bounds a page of the catalog or of a tags list, as
// distribution's configuration defaults do.
const maxListEntries = 1000

// Options configure a Server. The zero value serves the bundle read-only
// over plain HTTP, without authentication.
type Options struct {
	// Writable accepts pushes and deletes of pushed content, kept in
	// DataDir; otherwise they are refused with the registry error
	// UNSUPPORTED (405). A writable registry on an address other than
	// loopback needs Htpasswd (see CheckAddress).
	Writable bool
	// DataDir keeps pushed content of a writable registry; reads look
	// there before the bundle. Empty means a temporary directory that
	// Close removes.
	DataDir string
	// MaxUpload bounds one upload of a writable registry, in bytes;
	// 0 means DefaultMaxUpload.
	MaxUpload int64
	// MinFreeSpace is the free space, in bytes, that uploads leave on
	// DataDir's file system; 0 means DefaultMinFreeSpace.
	MinFreeSpace int64
	// UploadExpiry is how long an unfinished upload is kept; 0 means
	// DefaultUploadExpiry.
	UploadExpiry time.Duration
	// BodyTimeout is the longest pause in a request body, and half the
	// grace before the body must average 16 KiB/s; 0 means
	// DefaultBodyTimeout.
	BodyTimeout time.Duration
	// VerifyAll checks every blob of the bundle against its digest in New,
	// which fails naming the damaged ones. Otherwise each blob is checked
	// before its first byte is sent; either way, once per server.
	VerifyAll bool
	// Prefix, when set, serves every repository under Prefix/.
	Prefix string
	// Htpasswd is an htpasswd file of bcrypt entries; when set, every
	// request needs HTTP basic authentication.
	Htpasswd string
	// TLS, when set, serves HTTPS (see LoadTLS and SelfSignedTLS).
	TLS *tls.Config
	// Hostname is the name clients reach the server by, used by URL.
	// Empty means the listener's address (127.0.0.1 for an unspecified one).
	Hostname string
	// ShutdownTimeout bounds how long Serve waits for requests in flight
	// once its context ends; 0 means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Log receives one access line per request (method, path, status,
	// bytes, duration) at info, and problems at warn and error; nil
	// discards them. Credentials are never logged.
	Log Logger
}

// CheckAddress refuses to serve a writable registry without
// authentication on addr unless addr is a loopback address: anyone who
// reaches it could replace the images that nodes pull.
func (o Options) CheckAddress(addr net.Addr) error {
	if !o.Writable || o.Htpasswd != "" {
		return nil
	}
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%w: a writable registry on %s needs an htpasswd file: anyone who reaches it could replace the served images", ErrInvalidOptions, addr)
}

// Server is a registry serving one bundle. Make it with New, serve it with
// Serve, and Close it when done.
type Server struct {
	opts    Options
	log     Logger
	app     *handlers.App
	driver  storagedriver.StorageDriver
	handler http.Handler
	tree    *bundleTree
	files   []*bundleFile
	tempDir string
	verify  *verifier
	// stopPurge ends the purge of unfinished uploads; purged is closed
	// when it has ended.
	stopPurge context.CancelFunc
	purged    chan struct{}
}

// New prepares a registry serving the bundle r. It reads the bundle's
// indexes and manifests, never a layer byte, and keeps no blob in memory.
// r must stay open until the server is closed. r is one bundle, or a
// bundle.Union of several (a delta after its bases); a delta alone is
// refused with bundle.ErrLoneDelta.
func New(ctx context.Context, r *bundle.Reader, opts Options) (*Server, error) {
	if err := r.CheckComplete(); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	s := &Server{opts: withDefaults(opts), log: opts.Log}
	if s.log == nil {
		s.log = discard{}
	}
	if opts.Prefix != "" {
		if _, err := reference.WithName(opts.Prefix); err != nil {
			return nil, fmt.Errorf("%w: prefix %q: %w: %v", ErrInvalidOptions, opts.Prefix, manifests.ErrInvalidArgument, err)
		}
	}
	var auth *htpasswdAuth
	if opts.Htpasswd != "" {
		var err error
		if auth, err = newHtpasswdAuth(opts.Htpasswd); err != nil {
			return nil, err
		}
	}
	tree, err := newBundleTree(ctx, r, opts.Prefix, s.log)
	if err != nil {
		return nil, fmt.Errorf("serve bundle: %w", err)
	}
	s.tree = tree
	blobs, err := s.bundleBlobs(ctx, r)
	if err != nil {
		s.Close()
		return nil, err
	}
	var uploads *uploadGuard
	if opts.Writable {
		if uploads, err = s.writableLayer(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	s.driver = newLayeredDriver(tree, uploadsDriver(uploads))
	if s.app, err = s.newApp(ctx); err != nil {
		s.Close()
		return nil, err
	}
	h, err := s.withReferrers(ctx, guard(s.app, uploads, s.log))
	if err != nil {
		s.Close()
		return nil, err
	}
	h = &blobServer{next: h, blobs: blobs, linked: s.linksLayer(tree, uploads), verify: s.verify, log: s.log}
	if !opts.Writable {
		h = refuseWrites(h)
	}
	h = s.withNamespace(h)
	if auth != nil {
		h = auth.wrap(h)
	}
	s.handler = s.withAccessLog(h)
	return s, nil
}

// bundleBlobs finds where the bundle's blobs lie, and checks them all
// when Options.VerifyAll says so.
func (s *Server) bundleBlobs(ctx context.Context, r *bundle.Reader) (sectionMap, error) {
	blobs, files, err := newSectionMap(r)
	s.files = files
	if err != nil {
		return nil, fmt.Errorf("serve bundle: %w", err)
	}
	s.verify = &verifier{log: s.log}
	if s.opts.VerifyAll {
		if err := s.verify.verifyAll(ctx, blobs); err != nil {
			return nil, fmt.Errorf("serve bundle: %w", err)
		}
	}
	return blobs, nil
}

// linksLayer says whether a repository links a blob as a layer: in the
// bundle, or, for a writable registry, in the pushed content (a blob of the
// bundle mounted into another repository).
func (s *Server) linksLayer(tree *bundleTree, uploads *uploadGuard) func(repo string, d digest.Digest) bool {
	if uploads == nil {
		return tree.linksLayer
	}
	return func(repo string, d digest.Digest) bool {
		if tree.linksLayer(repo, d) {
			return true
		}
		_, err := uploads.upper.Stat(context.Background(), layerLinkPath(repo, d))
		return err == nil
	}
}

// withDefaults fills in the defaults of unset options.
func withDefaults(o Options) Options {
	if o.MaxUpload <= 0 {
		o.MaxUpload = DefaultMaxUpload
	}
	if o.MinFreeSpace <= 0 {
		o.MinFreeSpace = DefaultMinFreeSpace
	}
	if o.UploadExpiry <= 0 {
		o.UploadExpiry = DefaultUploadExpiry
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = DefaultBodyTimeout
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	return o
}

// writableLayer makes the filesystem driver that keeps pushes, its
// upload guard, and starts purging its unfinished uploads.
func (s *Server) writableLayer(ctx context.Context) (*uploadGuard, error) {
	dir, err := s.dataDir()
	if err != nil {
		return nil, err
	}
	upper := filesystem.New(filesystem.DriverParameters{RootDirectory: dir, MaxThreads: 100})
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stopPurge, s.purged = cancel, make(chan struct{})
	go func() {
		defer close(s.purged)
		purgeUploads(pctx, upper, s.opts.UploadExpiry, s.log)
	}()
	return &uploadGuard{upper: upper, dataDir: dir, maxSize: s.opts.MaxUpload, minFree: s.opts.MinFreeSpace, deadline: s.opts.BodyTimeout}, nil
}

// uploadsDriver is the writable layer of g, or nil.
func uploadsDriver(g *uploadGuard) storagedriver.StorageDriver {
	if g == nil {
		return nil
	}
	return g.upper
}

// dataDir returns the directory for pushed content, made if needed.
func (s *Server) dataDir() (string, error) {
	if s.opts.DataDir != "" {
		if err := os.MkdirAll(s.opts.DataDir, 0o755); err != nil {
			return "", fmt.Errorf("%w: data dir: %w", ErrInvalidOptions, err)
		}
		return s.opts.DataDir, nil
	}
	dir, err := os.MkdirTemp("", "ferry-serve-*")
	if err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	s.tempDir = dir
	return dir, nil
}

// newApp builds distribution's application over the layered driver. NewApp
// panics on a bad configuration; that becomes an error.
func (s *Server) newApp(ctx context.Context) (app *handlers.App, err error) {
	key, err := randomHex()
	if err != nil {
		return nil, err
	}
	secret, err := randomHex()
	if err != nil {
		return nil, err
	}
	prepared.Store(key, s.driver)
	defer prepared.Delete(key)
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: distribution: %v", ErrInvalidOptions, p)
		}
	}()
	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			driverName: configuration.Parameters{driverParam: key},
			"delete":   configuration.Parameters{"enabled": s.opts.Writable},
			"redirect": configuration.Parameters{"disable": true},
			"cache":    configuration.Parameters{"blobdescriptor": "inmemory"},
			"maintenance": configuration.Parameters{
				"uploadpurging": map[any]any{"enabled": false},
				"readonly":      map[any]any{"enabled": !s.opts.Writable},
			},
		},
	}
	cfg.HTTP.Secret = secret
	cfg.Catalog.MaxEntries = maxListEntries
	cfg.Tags.MaxTags = maxListEntries
	cfg.Log.AccessLog.Disabled = true
	// The application lives until Close, not until ctx ends: requests in
	// flight finish after a shutdown begins.
	return handlers.NewApp(context.WithoutCancel(ctx), cfg), nil
}

func randomHex() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Images is how many of the bundle's images are served.
func (s *Server) Images() int { return s.tree.images }

// Repositories lists the repositories the bundle is served in, sorted.
func (s *Server) Repositories() []string { return append([]string(nil), s.tree.repositories...) }

// Handler is the registry's HTTP handler, for serving it in a test server.
func (s *Server) Handler() http.Handler { return s.handler }

// URL is the registry's URL when served on a listener at addr.
func (s *Server) URL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		host, port = addr.String(), ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	if s.opts.Hostname != "" {
		host = s.opts.Hostname
	}
	scheme := "http"
	if s.opts.TLS != nil {
		scheme = "https"
	}
	if port == "" {
		return scheme + "://" + host
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// Serve serves the registry on ln (over TLS when Options.TLS is set) until
// ctx ends, then shuts down gracefully: it stops accepting connections and
// waits up to Options.ShutdownTimeout for requests in flight to finish. It
// returns nil after a graceful shutdown. Serve closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if err := s.opts.CheckAddress(ln.Addr()); err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           s.handler,
		TLSConfig:         s.opts.TLS,
		ReadHeaderTimeout: 20 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		// Requests outlive ctx: shutting down lets them finish.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ErrorLog:    log.New(logWriter{s.log}, "", 0),
	}
	done := make(chan error, 1)
	go func() {
		if s.opts.TLS != nil {
			done <- srv.ServeTLS(bigSendBuffers{ln}, "", "")
		} else {
			done <- srv.Serve(bigSendBuffers{ln})
		}
	}()
	select {
	case err := <-done:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	timeout := s.opts.ShutdownTimeout
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-done
	if err != nil {
		srv.Close()
		return fmt.Errorf("shut down %s: requests still in flight after %v: %w", ln.Addr(), timeout, err)
	}
	return nil
}

// sendBuffer is the socket send buffer of every connection: with a
// buffer larger than the kernel's autotuning grows to, each sendfile call
// moves more bytes between waits for a slow client (about 15% less server
// CPU per byte measured with 16 clients).
const sendBuffer = 4 << 20

// bigSendBuffers gives accepted TCP connections a sendBuffer.
type bigSendBuffers struct{ net.Listener }

// Accept implements net.Listener.
func (l bigSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(sendBuffer)
	}
	return c, err
}

// Close releases distribution's application and removes the temporary
// data directory, if New made one. The bundle reader is the caller's.
func (s *Server) Close() error {
	var err error
	if s.stopPurge != nil {
		s.stopPurge()
		<-s.purged
		s.stopPurge = nil
	}
	if s.app != nil {
		err = s.app.Shutdown()
	}
	for _, f := range s.files {
		f.close()
	}
	if s.tempDir != "" {
		if rerr := os.RemoveAll(s.tempDir); rerr != nil && err == nil {
			err = rerr
		}
		s.tempDir = ""
	}
	return err
}

// logWriter sends net/http's server errors (TLS handshake failures, ...)
// to the Logger as warnings.
type logWriter struct{ log Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Warnf("%s", strings.TrimSpace(string(p)))
	return len(p), nil
}

// withAccessLog logs one line per request: method, path (no query: upload
// state and credentials stay out), status, bytes sent, duration, client.
func (s *Server) withAccessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := httpsnoop.CaptureMetrics(next, w, r)
		s.log.Infof("%s %s %d %dB %v %s", r.Method, r.URL.Path, m.Code, m.Written, m.Duration.Round(time.Microsecond), r.RemoteAddr)
	})
}

// repoRoute matches the requests for a repository's content that
// containerd qualifies with ?ns=HOST when it pulls through a mirror.
var repoRoute = regexp.MustCompile(`^/v2/(.+)/(manifests/[^/]+|blobs/[^/]+|tags/list|referrers/[^/]+)$`)

// withNamespace honours containerd's ns parameter: a mirror request for
// library/nginx with ns=docker.io is served from docker.io/library/nginx
// when the registry has that repository, so images of two registries with
// the same path do not collide.
func (s *Server) withNamespace(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ns := r.URL.Query().Get("ns"); ns != "" {
			if m := repoRoute.FindStringSubmatch(r.URL.Path); m != nil {
				if name, ok := s.qualify(r.Context(), m[1], ns); ok {
					r = r.Clone(r.Context())
					r.URL.Path, r.URL.RawPath = "/v2/"+name+"/"+m[2], ""
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// qualify returns the repository name with registry host ns inserted
// (after the prefix), if the registry has that repository.
func (s *Server) qualify(ctx context.Context, name, ns string) (string, bool) {
	prefix := ""
	if s.opts.Prefix != "" {
		if rest, ok := strings.CutPrefix(name, s.opts.Prefix+"/"); ok {
			prefix, name = s.opts.Prefix+"/", rest
		}
	}
	if strings.HasPrefix(name, ns+"/") {
		return "", false
	}
	qualified := prefix + ns + "/" + name
	fi, err := s.driver.Stat(ctx, repositoryPath(qualified, "_manifests"))
	return qualified, err == nil && fi.IsDir()
}

// refuseWrites answers every request that would change the registry with
// the registry error UNSUPPORTED (405), as distribution does for an
// unsupported operation; distribution's read-only mode is on as well.
func refuseWrites(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
		default:
			_ = errcode.ServeJSON(w, errcode.ErrorCodeUnsupported.WithMessage("this registry serves a bundle read-only"))
		}
	})
}
