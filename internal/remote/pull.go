package remote

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// Clients are the clients of every registry a build reads from, one per
// host, made when first used, all with the same Options (and so the same
// TLS, plain-HTTP, credential and retry rules as push).
type Clients struct {
	opts Options

	mu     sync.Mutex
	byHost map[string]*Client
}

// NewClients checks opts (jobs, CA file) and returns an empty set of clients.
func NewClients(opts Options) (*Clients, error) {
	if err := transfer.CheckJobs(opts.Jobs); err != nil {
		return nil, err
	}
	if _, err := opts.transport(); err != nil {
		return nil, err
	}
	return &Clients{opts: opts, byHost: map[string]*Client{}}, nil
}

// client returns the client of host, making it on first use.
func (c *Clients) client(host string) (*Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl := c.byHost[host]; cl != nil {
		return cl, nil
	}
	cl, err := New(host, c.opts)
	if err != nil {
		return nil, err
	}
	c.byHost[host] = cl
	return cl, nil
}

// Resolve looks up a registry reference (tag or digest) and returns its
// root descriptor and its repository. An unknown tag or repository is an
// error wrapping manifests.ErrNotFound.
func (c *Clients) Resolve(ctx context.Context, ref string) (ocispec.Descriptor, *Repository, error) {
	if _, _, _, err := manifests.SplitReference(ref); err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	parsed, err := name.ParseReference(ref, nameOptions(c.opts)...)
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("%w %q: %v", manifests.ErrInvalidReference, ref, err)
	}
	cl, err := c.client(parsed.Context().RegistryStr())
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	repo := &Repository{r: cl, repo: parsed.Context()}
	desc, err := repo.head(ctx, parsed)
	return desc, repo, err
}

// head HEADs a manifest by tag or digest.
func (t *Repository) head(ctx context.Context, ref name.Reference) (ocispec.Descriptor, error) {
	d, err := t.r.puller.Head(ctx, ref)
	if isNotFound(err) {
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w: %w", ref, manifests.ErrNotFound, err)
	}
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w", ref, t.r.classify(err))
	}
	return ocispec.Descriptor{MediaType: string(d.MediaType), Digest: digest.Digest(d.Digest.String()), Size: d.Size}, nil
}

// ResolveTag resolves a tag of the repository; an unknown tag is an error
// wrapping manifests.ErrNotFound.
func (t *Repository) ResolveTag(ctx context.Context, tag string) (ocispec.Descriptor, error) {
	return t.head(ctx, t.repo.Tag(tag))
}

// Fetch implements transfer.Fetcher: manifests and blobs by digest. The
// bytes are not verified here; the copy engine does that.
func (t *Repository) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	ref := t.repo.Digest(desc.Digest.String())
	if manifests.IsGraphNode(desc.MediaType) {
		d, err := t.r.puller.Get(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ref, t.r.classify(err))
		}
		return io.NopCloser(bytes.NewReader(d.Manifest)), nil
	}
	return t.fetchBlob(ctx, ref)
}

// fetchBlob GETs a blob's bytes as the registry sends them, unhashed: the
// copy engine's VerifyReader checks every blob it moves, so each byte is
// hashed once (go-containerregistry's layer reader would hash it again).
func (t *Repository) fetchBlob(ctx context.Context, ref name.Digest) (io.ReadCloser, error) {
	client, err := t.blobClient(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, t.r.classify(err))
	}
	u := t.r.baseURL() + "/v2/" + t.repo.RepositoryStr() + "/blobs/" + ref.DigestStr()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, t.r.classify(err))
	}
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("%s: %w", ref, t.r.classify(err))
	}
	return resp.Body, nil
}

// blobClient is the client that GETs the repository's blobs, authorized
// to pull from it: made once per repository, on first use.
func (t *Repository) blobClient(ctx context.Context) (*http.Client, error) {
	newClient := sync.OnceValues(func() (*http.Client, error) {
		auth, err := t.r.authenticator(ctx)
		if err != nil {
			return nil, err
		}
		tr, err := transport.NewWithContext(ctx, t.r.reg, auth, t.r.retry, []string{t.repo.Scope(transport.PullScope)})
		if err != nil {
			return nil, err
		}
		return &http.Client{Transport: transport.NewUserAgent(tr, "ferry")}, nil
	})
	key := t.repo.RepositoryStr()
	v, _ := t.r.blobClients.LoadOrStore(key, newClient)
	c, err := v.(func() (*http.Client, error))()
	if err != nil {
		t.r.blobClients.CompareAndDelete(key, v) // a later call tries again
	}
	return c, err
}

// Referrers lists the manifests of the repository whose subject is
// subject: from the registry's referrers API, or from the referrers tag
// schema index (tag sha256-<hex>) where the API is missing.
func (t *Repository) Referrers(ctx context.Context, subject digest.Digest) ([]ocispec.Descriptor, error) {
	ref := t.repo.Digest(subject.String())
	idx, err := remote.Referrers(ref, remote.Reuse(t.r.puller), remote.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("referrers of %s: %w", ref, t.r.classify(err))
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("referrers of %s: %w", ref, err)
	}
	out := make([]ocispec.Descriptor, 0, len(im.Manifests))
	for _, m := range im.Manifests {
		out = append(out, ocispec.Descriptor{
			MediaType: string(m.MediaType), Digest: digest.Digest(m.Digest.String()), Size: m.Size,
			ArtifactType: m.ArtifactType, Annotations: m.Annotations,
		})
	}
	return out, nil
}
