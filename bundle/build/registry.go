package build

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

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
	return &Registries{opts: opts, puller: puller, insecurePuller: insecurePuller}, nil
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
	return &Image{Ref: ref, Descriptor: root, Fetcher: &Repository{repo: parsed.Context(), puller: puller}}, nil
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
	if slices.Contains(r.opts.Insecure, reg.RegistryStr()) || slices.Contains(r.opts.Insecure, reg.Name()) {
		return r.insecurePuller
	}
	return r.puller
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
	repo   name.Repository
	puller *remote.Puller
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
	layer, err := r.puller.Layer(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	rc, err := layer.Compressed()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	return rc, nil
}
