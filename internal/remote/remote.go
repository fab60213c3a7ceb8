package remote

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// CredentialFiles says where ferry finds registry credentials
// (authn.DefaultKeychain), for messages that ask for them: no docker
// needed, `skopeo login` or a hand-written file will do.
const CredentialFiles = "the docker config ($DOCKER_CONFIG/config.json or ~/.docker/config.json) " +
	"or a containers auth file ($REGISTRY_AUTH_FILE, as `skopeo login --authfile FILE` writes it)"

// Options say how to reach a registry. The zero value speaks HTTPS,
// verifies certificates against the system's CAs, takes credentials from
// the docker config (DOCKER_CONFIG or ~/.docker/config.json) and keeps
// transfer.DefaultJobs requests in flight.
type Options struct {
	// PlainHTTP allows plain HTTP. Without it ferry speaks HTTPS only, to
	// localhost and private addresses too (where go-containerregistry
	// would otherwise fall back to HTTP silently), so credentials never
	// travel in clear by accident.
	PlainHTTP bool
	// Insecure skips TLS certificate verification.
	Insecure bool
	// CAFile is a PEM file of CA certificates to trust besides the system's.
	CAFile string
	// Username and Password, when Username is set, are sent (basic auth,
	// or exchanged for a bearer token) instead of the Keychain's.
	Username, Password string
	// Keychain finds credentials when Username is empty; nil means
	// authn.DefaultKeychain.
	Keychain authn.Keychain
	// Jobs bounds the registry requests in flight (existence checks,
	// mounts, uploads) across all repositories; 0 means transfer.DefaultJobs.
	Jobs int
	// Retry says how requests that failed on the way are retried.
	Retry RetryPolicy
}

// Client is a client of one registry host, shared by the repositories it
// writes to. It remembers which repository holds each blob it has seen or
// stored, so a blob goes over the wire once per registry and is mounted
// into the other repositories.
type Client struct {
	host   string
	reg    name.Registry
	opts   Options
	retry  *retrier
	puller *remote.Puller
	pusher *remote.Pusher
	lim    transfer.Limit

	mu    sync.Mutex
	blobs map[digest.Digest]*blobPlace
	// subjects serializes the PUTs of referrers of one subject (by
	// "repository@digest"): on a registry without the referrers API each
	// one rewrites the subject's referrers tag schema index.
	subjects sync.Map
	// blobClients holds, per repository, a func returning the HTTP client
	// that GETs its blobs for a build (made once; dropped when making it
	// failed).
	blobClients sync.Map
}

// blobPlace is a repository that holds a blob, or is being sent it (done
// is closed when the upload ends; ok says whether it succeeded).
type blobPlace struct {
	repo name.Repository
	done chan struct{}
	ok   bool
}

// New returns a client of the registry at host ("reg.local:5000").
// It does no I/O beyond reading opts.CAFile; Ping checks the registry.
func New(host string, opts Options) (*Client, error) {
	reg, err := name.NewRegistry(host, nameOptions(opts)...)
	if err != nil {
		return nil, fmt.Errorf("%w: registry %q: %v", manifests.ErrInvalidArgument, host, err)
	}
	guard, err := opts.transport()
	if err != nil {
		return nil, err
	}
	retry := newRetrier(guard, opts.Retry)
	ropts := []remote.Option{
		remote.WithTransport(retry),
		// The retrier retries each request; go-containerregistry only
		// restarts an upload whose PATCH failed.
		remote.WithRetryStatusCodes(),
		remote.WithRetryPredicate(retry.restartUpload),
		remote.WithRetryBackoff(uploadBackoff),
		remote.WithNondistributable, // an air gap has nowhere else to fetch foreign layers from
		remote.WithUserAgent("ferry"),
	}
	if opts.Username != "" {
		ropts = append(ropts, remote.WithAuth(opts.basic()))
	} else {
		ropts = append(ropts, remote.WithAuthFromKeychain(opts.keychain()))
	}
	puller, err := remote.NewPuller(ropts...)
	if err != nil {
		return nil, err
	}
	pusher, err := remote.NewPusher(ropts...)
	if err != nil {
		return nil, err
	}
	if err := transfer.CheckJobs(opts.Jobs); err != nil {
		return nil, err
	}
	return &Client{
		host: host, reg: reg, opts: opts, retry: retry, puller: puller, pusher: pusher,
		lim: transfer.NewLimit(opts.Jobs), blobs: map[digest.Digest]*blobPlace{},
	}, nil
}

func nameOptions(opts Options) []name.Option {
	if opts.PlainHTTP {
		return []name.Option{name.Insecure}
	}
	return nil
}

func (o Options) basic() authn.Authenticator {
	return &authn.Basic{Username: o.Username, Password: o.Password}
}

func (o Options) keychain() authn.Keychain {
	if o.Keychain != nil {
		return o.Keychain
	}
	return authn.DefaultKeychain
}

// transport is the HTTP transport under the retrier: TLS as the options
// say, and no plain HTTP unless PlainHTTP.
func (o Options) transport() (http.RoundTripper, error) {
	tr := remote.DefaultTransport.(*http.Transport).Clone()
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.Insecure} //nolint:gosec // --insecure asks for it
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: CA file: %v", manifests.ErrInvalidArgument, err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: CA file %s holds no PEM certificate", manifests.ErrInvalidArgument, o.CAFile)
		}
		cfg.RootCAs = pool
	}
	tr.TLSClientConfig = cfg
	return &schemeGuard{inner: tr, plainHTTP: o.PlainHTTP}, nil
}

// schemeGuard refuses plain-HTTP requests unless they were allowed.
// go-containerregistry tries HTTP after HTTPS for localhost and private
// addresses; this is what stops it.
type schemeGuard struct {
	inner     http.RoundTripper
	plainHTTP bool
}

func (g *schemeGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.plainHTTP {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("%w: refusing plain HTTP to %s without --plain-http", manifests.ErrPlainHTTP, req.URL.Host)
	}
	return g.inner.RoundTrip(req)
}

// baseURL is the registry's scheme and host: "https://reg.local:5000".
func (r *Client) baseURL() string {
	if r.opts.PlainHTTP {
		return "http://" + r.host
	}
	return "https://" + r.host
}

// Host returns the registry host.
func (r *Client) Host() string { return r.host }

// Retried returns how many requests the client has sent again after they
// failed on the way.
func (r *Client) Retried() int { return int(r.retry.retried.Load()) }

// Ping checks that the registry answers on the expected scheme, that its
// certificate is trusted and that it accepts the credentials. Its errors
// match manifests.ErrUnreachable, manifests.ErrPlainHTTP, manifests.ErrTLSTrust or manifests.ErrUnauthorized.
func (r *Client) Ping(ctx context.Context) error {
	url := r.baseURL() + "/v2/"
	// Unauthenticated first, on our own client, for clear network errors.
	if err := r.get(ctx, &http.Client{Transport: r.retry}, url, http.StatusOK, http.StatusUnauthorized); err != nil {
		return err
	}
	auth, err := r.authenticator(ctx)
	if err != nil {
		return err
	}
	tr, err := transport.NewWithContext(ctx, r.reg, auth, r.retry, nil)
	if err != nil {
		return r.classify(err)
	}
	return r.get(ctx, &http.Client{Transport: tr}, url, http.StatusOK)
}

func (r *Client) get(ctx context.Context, client *http.Client, url string, ok ...int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return r.classify(err)
	}
	defer resp.Body.Close()
	return r.classify(transport.CheckError(resp, ok...))
}

func (r *Client) authenticator(ctx context.Context) (authn.Authenticator, error) {
	if r.opts.Username != "" {
		return r.opts.basic(), nil
	}
	auth, err := authn.Resolve(ctx, r.opts.keychain(), r.reg)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", r.host, err)
	}
	return auth, nil
}

// classify wraps a registry error with the installer sentinel that says
// what went wrong, the registry and what to do.
func (r *Client) classify(err error) error {
	var (
		terr   *transport.Error
		opErr  *net.OpError
		dnsErr *net.DNSError
	)
	switch {
	case isTLSTrust(err) && !errors.Is(err, manifests.ErrTLSTrust):
		// Before the plain-HTTP case: go-containerregistry tries HTTP
		// after a failed HTTPS to a loopback or private address, and the
		// guard's refusal of it must not hide the certificate problem.
		return fmt.Errorf("%w: TLS trust problem with %s (%w); pass --ca-file with the CA that signed its certificate, or --insecure to skip verification",
			manifests.ErrTLSTrust, r.host, err)
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, manifests.ErrUnauthorized), errors.Is(err, manifests.ErrUnreachable), errors.Is(err, manifests.ErrPlainHTTP),
		errors.Is(err, manifests.ErrTLSTrust), errors.Is(err, manifests.ErrMediaTypeRejected):
		return err
	case errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden):
		return fmt.Errorf("%w at %s (HTTP %d; give --username and --password-stdin, or credentials for %s in %s): %w",
			manifests.ErrUnauthorized, r.host, terr.StatusCode, r.host, CredentialFiles, err)
	case errors.Is(err, http.ErrSchemeMismatch) && !r.opts.PlainHTTP:
		return fmt.Errorf("%w: %s answers HTTPS requests in plain HTTP; pass --plain-http if that is intended", manifests.ErrPlainHTTP, r.host)
	case errors.As(err, &terr) && transientStatus(terr.StatusCode):
		return fmt.Errorf("registry %s %w: it kept answering HTTP %d: %w", r.host, manifests.ErrUnreachable, terr.StatusCode, err)
	case errors.As(err, &opErr), errors.As(err, &dnsErr), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("registry %s %w: %w", r.host, manifests.ErrUnreachable, err)
	}
	return err
}

// isTLSTrust reports whether err is a certificate the client does not trust.
func isTLSTrust(err error) bool {
	var (
		unknown x509.UnknownAuthorityError
		verify  *tls.CertificateVerificationError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
	)
	return errors.As(err, &unknown) || errors.As(err, &verify) || errors.As(err, &host) || errors.As(err, &invalid)
}

// Repository returns the repository at path ("tke/library/nginx") of the
// registry as a transfer.Target and transfer.Mounter. src, when not nil,
// re-reads a blob whose upload must be retried (the engine's stream can be
// read once); it is the source of the copies into the repository.
func (r *Client) Repository(path string, src transfer.Fetcher) (*Repository, error) {
	if err := CheckRepositoryPath(path); err != nil {
		return nil, fmt.Errorf("%w: repository %s/%s: %v", manifests.ErrInvalidReference, r.host, path, err)
	}
	return &Repository{r: r, repo: r.reg.Repo(path), src: src}, nil
}

// CheckRepositoryPath checks a repository path below a registry host.
// (name.NewRepository would read a first component without a dot or
// colon, as in "harbor/library/nginx", as a path on Docker Hub.)
func CheckRepositoryPath(path string) error {
	_, err := name.NewRepository("registry.invalid/" + path)
	return err
}

// found records that repo holds blob d.
func (r *Client) found(d digest.Digest, repo name.Repository) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.blobs[d] == nil {
		done := make(chan struct{})
		close(done)
		r.blobs[d] = &blobPlace{repo: repo, done: done, ok: true}
	}
}

// sending records that blob d is being sent to repo and returns how to
// report the upload's end. When another repository already holds the blob
// or is being sent it, it returns that place instead: its sender holds a
// job slot, so waiting for it always ends.
func (r *Client) sending(d digest.Digest, repo name.Repository) (end func(ok bool), other *blobPlace) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.blobs[d]; p != nil {
		if p.repo == repo {
			return func(bool) {}, nil
		}
		return nil, p
	}
	p := &blobPlace{repo: repo, done: make(chan struct{})}
	r.blobs[d] = p
	return func(ok bool) {
		r.mu.Lock()
		p.ok = ok
		if !ok && r.blobs[d] == p {
			delete(r.blobs, d)
		}
		r.mu.Unlock()
		close(p.done)
	}, nil
}

// wait waits for the upload to p to end and reports whether p holds the blob.
func (p *blobPlace) wait(ctx context.Context, mu *sync.Mutex) (bool, error) {
	select {
	case <-p.done:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	mu.Lock()
	defer mu.Unlock()
	return p.ok, nil
}

// mountSource returns another repository that holds blob d, waiting for
// an upload of it in flight.
func (r *Client) mountSource(ctx context.Context, d digest.Digest, repo name.Repository) (name.Repository, bool, error) {
	r.mu.Lock()
	p := r.blobs[d]
	r.mu.Unlock()
	if p == nil || p.repo == repo {
		return name.Repository{}, false, nil
	}
	ok, err := p.wait(ctx, &r.mu)
	return p.repo, ok, err
}

// Repository is one repository of a registry: a transfer.Target (HEAD
// and upload of blobs, PUT of manifests by digest) and a transfer.Mounter
// (cross-repository mount from a repository of the same registry that got
// the blob in this run).
type Repository struct {
	r    *Client
	repo name.Repository
	src  transfer.Fetcher
}

var (
	_ transfer.Target  = (*Repository)(nil)
	_ transfer.Mounter = (*Repository)(nil)
)

// Name returns the repository's full name, "host/path".
func (t *Repository) Name() string { return t.repo.Name() }

// Exists implements transfer.Exister: HEAD of the manifest or blob by
// digest. What the registry holds under desc's digest must have desc's
// size: a descriptor that declares another size is an error wrapping
// manifests.ErrSizeMismatch, whichever image's copy reached the blob first.
func (t *Repository) Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	release, err := t.r.lim.Acquire(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	exists, err := t.stat(ctx, desc)
	if exists && !manifests.IsGraphNode(desc.MediaType) {
		t.r.found(desc.Digest, t.repo)
	}
	return exists, err
}

// stat HEADs desc's manifest or blob in the repository and checks its
// size against desc's.
func (t *Repository) stat(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	ref := t.repo.Digest(desc.Digest.String())
	var size int64
	var err error
	if manifests.IsGraphNode(desc.MediaType) {
		var got *v1.Descriptor
		if got, err = t.r.puller.Head(ctx, ref); err == nil {
			size = got.Size
		}
	} else {
		var l v1.Layer
		if l, err = t.r.puller.Layer(ctx, ref); err == nil {
			size, err = l.Size()
		}
	}
	switch {
	case isNotFound(err):
		return false, nil
	case err != nil:
		return false, t.r.classify(err)
	case size != desc.Size:
		return false, fmt.Errorf("%s: %w: %s holds %d bytes under this digest, but the manifest declares %d",
			desc.Digest, manifests.ErrSizeMismatch, t.repo.Name(), size, desc.Size)
	}
	return true, nil
}

func isNotFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}

// errNotMounted stops an upload that a mount attempt turned into.
var errNotMounted = errors.New("registry did not mount the blob")

// Mount implements transfer.Mounter: when another repository of the
// registry holds the blob (or is being sent it), ask the registry to mount
// it from there.
func (t *Repository) Mount(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	if manifests.IsGraphNode(desc.MediaType) {
		return false, nil
	}
	from, ok, err := t.r.mountSource(ctx, desc.Digest, t.repo)
	if err != nil || !ok {
		return false, err
	}
	release, err := t.r.lim.Acquire(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	return t.mountFrom(ctx, desc, from)
}

// mountAfter waits for the upload to other and mounts the blob from there.
func (t *Repository) mountAfter(ctx context.Context, desc ocispec.Descriptor, other *blobPlace) (bool, error) {
	ok, err := other.wait(ctx, &t.r.mu)
	if err != nil || !ok {
		return false, err
	}
	return t.mountFrom(ctx, desc, other.repo)
}

// mountFrom asks the registry to mount the blob from another repository;
// the caller holds a job slot.
func (t *Repository) mountFrom(ctx context.Context, desc ocispec.Descriptor, from name.Repository) (bool, error) {
	l := &remote.MountableLayer{Layer: (&blobLayer{ctx: ctx, desc: desc}).layer(), Reference: from.Digest(desc.Digest.String())}
	err := t.r.pusher.Upload(ctx, t.repo, l)
	if errors.Is(err, errNotMounted) {
		return false, nil
	}
	if err != nil {
		return false, t.r.classify(err)
	}
	// The registry mounts by digest alone: check that what it holds has
	// the size desc declares before counting the blob as stored.
	if ok, err := t.stat(ctx, desc); !ok {
		return false, cmp.Or(err, fmt.Errorf("%s: %w after %s mounted it", desc.Digest, manifests.ErrNotFound, t.repo.Name()))
	}
	t.r.found(desc.Digest, t.repo)
	return true, nil
}

// Push implements transfer.Pusher: a manifest is PUT by digest, any other
// blob uploaded. An upload retried after a network error re-reads the blob
// from the repository's source.
func (t *Repository) Push(ctx context.Context, desc ocispec.Descriptor, content io.Reader) error {
	release, err := t.r.lim.Acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	if manifests.IsGraphNode(desc.MediaType) {
		b, err := io.ReadAll(content) // content verifies the bytes at EOF
		if err != nil {
			return err
		}
		return t.put(ctx, t.repo.Digest(desc.Digest.String()), desc, b)
	}
	end, other := t.r.sending(desc.Digest, t.repo)
	if other != nil {
		// Another repository started sending the blob after this copy's
		// Mount looked: wait for it and mount, rather than send it twice.
		mounted, err := t.mountAfter(ctx, desc, other)
		if err != nil {
			return err
		}
		if mounted {
			return transfer.ErrMounted
		}
		end = func(bool) {} // its upload failed or the mount was refused: send it here
	}
	l := &blobLayer{ctx: ctx, desc: desc, first: content, src: t.src}
	err = t.r.pusher.Upload(ctx, t.repo, l.layer())
	end(err == nil)
	if rerr := l.readErr(); rerr != nil {
		return rerr // the source's bytes were wrong, whatever the registry said
	}
	return t.r.classify(err)
}

// TagDigest returns the digest tag points at, and whether the tag exists.
func (t *Repository) TagDigest(ctx context.Context, tag string) (digest.Digest, bool, error) {
	got, err := t.r.puller.Head(ctx, t.repo.Tag(tag))
	switch {
	case err == nil:
		return digest.Digest(got.Digest.String()), true, nil
	case isNotFound(err):
		return "", false, nil
	}
	return "", false, t.r.classify(err)
}

// Tag points tag at the manifest desc, whose bytes are content, unless it
// already points there.
func (t *Repository) Tag(ctx context.Context, tag string, desc ocispec.Descriptor, content []byte) error {
	got, exists, err := t.TagDigest(ctx, tag)
	if err != nil || (exists && got == desc.Digest) {
		return err
	}
	return t.PutTag(ctx, tag, desc, content)
}

// PutTag points tag at the manifest desc, whose bytes are content,
// whatever it points at now (the caller has read the tag).
func (t *Repository) PutTag(ctx context.Context, tag string, desc ocispec.Descriptor, content []byte) error {
	return t.put(ctx, t.repo.Tag(tag), desc, content)
}

// put PUTs a manifest by digest or tag. A manifest with a subject (a
// referrer) is listed by the registry's referrers API, or where the
// registry has none (go-containerregistry asks it) added to the subject's
// referrers tag schema index (tag sha256-<hex>), merged with the entries
// already there; referrers of one subject are PUT one at a time.
func (t *Repository) put(ctx context.Context, ref name.Reference, desc ocispec.Descriptor, content []byte) error {
	if _, subject, err := manifests.Referrer(desc, content); err == nil && subject != nil {
		mu, _ := t.r.subjects.LoadOrStore(t.repo.Name()+"@"+subject.Digest.String(), &sync.Mutex{})
		mu.(*sync.Mutex).Lock()
		defer mu.(*sync.Mutex).Unlock()
	}
	err := t.r.pusher.Put(ctx, ref, rawManifest{content: content, mediaType: desc.MediaType})
	var terr *transport.Error
	if errors.As(err, &terr) && isOCI(desc.MediaType) &&
		(terr.StatusCode == http.StatusBadRequest || terr.StatusCode == http.StatusUnsupportedMediaType) &&
		hasCode(terr, transport.ManifestInvalidErrorCode, transport.UnsupportedErrorCode) {
		return fmt.Errorf("%w: %s refused %s %s (HTTP %d): it does not seem to support OCI images; "+
			"upgrade it (distribution 2.7+, Harbor 2+, ...), since the digests can be kept only with the OCI media types: %w",
			manifests.ErrMediaTypeRejected, t.r.host, desc.MediaType, desc.Digest, terr.StatusCode, err)
	}
	return t.r.classify(err)
}

func isOCI(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == ocispec.MediaTypeImageManifest
}

// hasCode reports whether the error carries one of codes, or no code at all.
func hasCode(terr *transport.Error, codes ...transport.ErrorCode) bool {
	if len(terr.Errors) == 0 {
		return true
	}
	for _, d := range terr.Errors {
		for _, c := range codes {
			if d.Code == c {
				return true
			}
		}
	}
	return false
}

// rawManifest is a manifest's exact bytes and media type, for remote.Put.
type rawManifest struct {
	content   []byte
	mediaType string
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.content, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return types.MediaType(m.mediaType), nil }

// blobLayer is a blob to upload as a go-containerregistry layer. Its first
// Compressed call returns the copy engine's stream; later ones (retries)
// re-read the blob from src through a fresh VerifyReader. Without a
// stream and src (a mount attempt), Compressed returns errNotMounted.
type blobLayer struct {
	ctx  context.Context // the Push or Mount call's; a blobLayer lives for one call
	desc ocispec.Descriptor
	src  transfer.Fetcher

	mu    sync.Mutex
	first io.Reader
	err   error // the first error reading the blob's bytes
}

// layer returns l as a v1.Layer.
func (l *blobLayer) layer() v1.Layer {
	v, _ := partial.CompressedToLayer(l) // never fails
	return v
}

func (l *blobLayer) Digest() (v1.Hash, error) { return v1.NewHash(l.desc.Digest.String()) }

func (l *blobLayer) Size() (int64, error) { return l.desc.Size, nil }

func (l *blobLayer) MediaType() (types.MediaType, error) {
	return types.MediaType(l.desc.MediaType), nil
}

func (l *blobLayer) Compressed() (io.ReadCloser, error) {
	l.mu.Lock()
	first, err := l.first, l.err
	l.first = nil
	l.mu.Unlock()
	switch {
	case err != nil:
		return nil, err // the blob is bad: retrying cannot help
	case first != nil:
		return io.NopCloser(&recordingReader{r: first, l: l}), nil
	case l.src == nil:
		return nil, errNotMounted
	}
	rc, err := l.src.Fetch(l.ctx, l.desc)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{&recordingReader{r: transfer.NewVerifyReader(rc, l.desc), l: l}, rc}, nil
}

// readErr returns the first error met reading the blob's bytes.
func (l *blobLayer) readErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// recordingReader keeps the first error of its blob's reads: an HTTP
// client reports a failed request body as a network error.
type recordingReader struct {
	r io.Reader
	l *blobLayer
}

func (r *recordingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.l.mu.Lock()
		if r.l.err == nil {
			r.l.err = err
		}
		r.l.mu.Unlock()
	}
	return n, err
}
