package build

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	ferryremote "github.com/ferry-oci/ferry/internal/remote"
	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// RegistryOptions say how to reach source registries. The zero value uses
// the docker config keychain and verified TLS.
type RegistryOptions struct {
	// Keychain finds credentials; nil means authn.DefaultKeychain
	// (~/.docker/config.json, DOCKER_CONFIG).
	Keychain authn.Keychain
	// Insecure lists registries (host[:port]) that may be reached over plain
	// HTTP or with unverified TLS.
	Insecure []string
	// Jobs bounds concurrent requests per registry; 0 means 8.
	Jobs int
	// Transport, when set, replaces the default HTTP transport.
	Transport http.RoundTripper
}

// Registries resolves registry references and reads their blobs, sharing
// one authenticated client (tokens are reused across images).
type Registries struct {
	opts           RegistryOptions
	puller         *remote.Puller
	insecurePuller *remote.Puller
	base, insecure http.RoundTripper
	// blobClients holds, per repository, a func returning the HTTP client
	// that GETs its blobs (made once; never kept when making it failed).
	blobClients sync.Map
}

// NewRegistries returns a client for source registries.
func NewRegistries(opts RegistryOptions) (*Registries, error) {
	if opts.Keychain == nil {
		opts.Keychain = authn.DefaultKeychain
	}
	opts.Jobs = transfer.Jobs(opts.Jobs)
	base := opts.Transport
	if base == nil {
		base = remote.DefaultTransport
	}
	common := []remote.Option{remote.WithAuthFromKeychain(opts.Keychain), remote.WithJobs(opts.Jobs), remote.WithUserAgent("ferry")}
	puller, err := remote.NewPuller(append(common, remote.WithTransport(base))...)
	if err != nil {
		return nil, err
	}
	insecure := base
	if t, ok := base.(*http.Transport); ok {
		t = t.Clone()
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // only for --insecure-registry hosts
		insecure = t
	}
	insecurePuller, err := remote.NewPuller(append(common, remote.WithTransport(insecure))...)
	if err != nil {
		return nil, err
	}
	return &Registries{opts: opts, puller: puller, insecurePuller: insecurePuller, base: base, insecure: insecure}, nil
}

// Image is an image resolved in a registry: its root descriptor and a
// Fetcher for its repository.
type Image struct {
	Ref        string
	Descriptor ocispec.Descriptor
	Fetcher    *Repository
}

// Resolve looks up a reference (tag or digest) and returns its root.
func (r *Registries) Resolve(ctx context.Context, ref string) (*Image, error) {
	parsed, err := r.parse(ref)
	if err != nil {
		return nil, err
	}
	puller := r.pullerFor(parsed.Context().Registry)
	desc, err := puller.Head(ctx, parsed)
	if err != nil {
		return nil, classify(err)
	}
	root := ocispec.Descriptor{MediaType: string(desc.MediaType), Digest: digest.Digest(desc.Digest.String()), Size: desc.Size}
	return &Image{Ref: ref, Descriptor: root, Fetcher: &Repository{repo: parsed.Context(), puller: puller, registries: r}}, nil
}

func (r *Registries) parse(ref string) (name.Reference, error) {
	var opts []name.Option
	host, _, _, err := manifests.SplitReference(ref)
	if err != nil {
		return nil, err
	}
	if slices.Contains(r.opts.Insecure, host) {
		opts = append(opts, name.Insecure)
	}
	parsed, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", manifests.ErrInvalidReference, ref, err)
	}
	return parsed, nil
}

func (r *Registries) pullerFor(reg name.Registry) *remote.Puller {
	if r.isInsecure(reg) {
		return r.insecurePuller
	}
	return r.puller
}

func (r *Registries) isInsecure(reg name.Registry) bool {
	return slices.Contains(r.opts.Insecure, reg.RegistryStr()) || slices.Contains(r.opts.Insecure, reg.Name())
}

// fetchBlob GETs a blob's bytes as the registry sends them, unhashed: the
// copy engine's VerifyReader checks every blob it moves, so each byte is
// hashed once (go-containerregistry's layer reader would hash it again).
func (r *Registries) fetchBlob(ctx context.Context, repo name.Repository, desc ocispec.Descriptor) (io.ReadCloser, error) {
	ref := repo.Digest(desc.Digest.String())
	client, err := r.blobClient(ctx, repo)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, classify(err))
	}
	u := url.URL{Scheme: repo.Scheme(), Host: repo.RegistryStr(), Path: "/v2/" + repo.RepositoryStr() + "/blobs/" + desc.Digest.String()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("%s: %w", ref, classify(err))
	}
	return resp.Body, nil
}

// blobClient is the client that GETs repo's blobs, authorized to pull
// from it: made once per repository, on first use.
func (r *Registries) blobClient(ctx context.Context, repo name.Repository) (*http.Client, error) {
	newClient := sync.OnceValues(func() (*http.Client, error) {
		auth, err := authn.Resolve(ctx, r.opts.Keychain, repo)
		if err != nil {
			return nil, err
		}
		base := r.base
		if r.isInsecure(repo.Registry) {
			base = r.insecure
		}
		tr, err := transport.NewWithContext(ctx, repo.Registry, auth, transport.NewRetry(base), []string{repo.Scope(transport.PullScope)})
		if err != nil {
			return nil, err
		}
		return &http.Client{Transport: transport.NewUserAgent(tr, "ferry")}, nil
	})
	v, _ := r.blobClients.LoadOrStore(repo.Name(), newClient)
	c, err := v.(func() (*http.Client, error))()
	if err != nil {
		r.blobClients.CompareAndDelete(repo.Name(), v) // a later call tries again
	}
	return c, err
}

// classify adds ferry's sentinel and a hint to registry errors a user can act on.
func classify(err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%w (give credentials in %s): %w", manifests.ErrUnauthorized, ferryremote.CredentialFiles, err)
		case http.StatusNotFound:
			return fmt.Errorf("%w: %w", ErrImageNotFound, err)
		}
	}
	return err
}

// Repository is a transfer.Fetcher over one registry repository.
type Repository struct {
	repo       name.Repository
	puller     *remote.Puller
	registries *Registries
}

// Fetch implements transfer.Fetcher: manifests by digest, blobs by digest.
func (r *Repository) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	ref := r.repo.Digest(desc.Digest.String())
	if manifests.IsGraphNode(desc.MediaType) {
		d, err := r.puller.Get(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ref, classify(err))
		}
		return io.NopCloser(bytes.NewReader(d.Manifest)), nil
	}
	return r.registries.fetchBlob(ctx, r.repo, desc)
}
