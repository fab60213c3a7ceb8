package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/registry/api/errcode"
	"github.com/distribution/distribution/v3/registry/storage"
	"github.com/distribution/reference"
	"github.com/felixge/httpsnoop"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/manifests"
)

// The OCI distribution spec's headers for referrers.
const (
	headerSubject        = "OCI-Subject"
	headerFiltersApplied = "OCI-Filters-Applied"
)

var (
	// referrersRoute matches the referrers API: /v2/<name>/referrers/<digest>.
	referrersRoute = regexp.MustCompile(`^/v2/(.+)/referrers/([^/]+)$`)
	// manifestRoute matches a manifest by tag or digest.
	manifestRoute = regexp.MustCompile(`^/v2/(.+)/manifests/([^/]+)$`)
)

// referrerLister lists the referrers of subject in repo: the manifests and
// indexes there whose subject it is, as descriptors with their
// artifactType and annotations.
type referrerLister interface {
	Referrers(ctx context.Context, repo string, subject digest.Digest) ([]ocispec.Descriptor, error)
}

// referrersAPI adds the OCI referrers API, which distribution v3 lacks, in
// front of distribution's application: it answers GET and HEAD
// /v2/<name>/referrers/<digest> from its lister, and sets the OCI-Subject
// header on the answer to a manifest PUT whose content has a subject.
// Every other request goes to next.
type referrersAPI struct {
	next   http.Handler
	lister referrerLister
	log    Logger
}

// withReferrers puts the referrers API in front of next, listing the
// referrers stored in the server's driver (the bundle's and the pushed
// ones).
func (s *Server) withReferrers(ctx context.Context, next http.Handler) (http.Handler, error) {
	ns, err := storage.NewRegistry(ctx, s.driver)
	if err != nil {
		return nil, fmt.Errorf("referrers: %w", err)
	}
	return &referrersAPI{next: next, lister: newStoredReferrers(ns), log: s.log}, nil
}

func (a *referrersAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if m := referrersRoute.FindStringSubmatch(r.URL.Path); m != nil {
		a.serveReferrers(w, r, m[1], m[2])
		return
	}
	if r.Method == http.MethodPut && manifestRoute.MatchString(r.URL.Path) {
		w = a.withSubjectHeader(w, r)
	}
	a.next.ServeHTTP(w, r)
}

// serveReferrers answers a referrers request: an image index of the
// referrers of dgst in repo, empty when there are none, filtered by the
// artifactType query parameters when there are any.
func (a *referrersAPI) serveReferrers(w http.ResponseWriter, r *http.Request, repo, dgst string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		serveError(w, errcode.ErrorCodeUnsupported.WithMessage("the referrers API answers GET and HEAD"))
		return
	}
	if _, err := reference.WithName(repo); err != nil {
		serveError(w, errcode.ErrorCodeNameInvalid.WithDetail(err.Error()))
		return
	}
	subject, err := digest.Parse(dgst)
	if err != nil {
		serveError(w, errcode.ErrorCodeDigestInvalid.WithDetail(err.Error()))
		return
	}
	descs, err := a.lister.Referrers(r.Context(), repo, subject)
	if err != nil {
		a.log.Errorf("referrers of %s in %s: %v", subject, repo, err)
		serveError(w, errcode.ErrorCodeUnknown.WithDetail(err.Error()))
		return
	}
	if types := r.URL.Query()["artifactType"]; len(types) > 0 {
		descs = slices.DeleteFunc(descs, func(d ocispec.Descriptor) bool { return !slices.Contains(types, d.ArtifactType) })
		w.Header().Set(headerFiltersApplied, "artifactType")
	}
	body, err := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: append([]ocispec.Descriptor{}, descs...),
	})
	if err != nil {
		serveError(w, errcode.ErrorCodeUnknown.WithDetail(err.Error()))
		return
	}
	w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}

// withSubjectHeader reads the manifest a PUT sends (up to
// manifests.MaxManifestSize; distribution refuses larger ones) and, when it
// has a subject, returns a writer that adds OCI-Subject to the 201
// Created answer. The request body is left for next to read whole.
func (a *referrersAPI) withSubjectHeader(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
	head, err := io.ReadAll(io.LimitReader(r.Body, manifests.MaxManifestSize+1))
	// A read error comes again from the rest of the body, for next.
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), r.Body), r.Body}
	if err != nil || len(head) > manifests.MaxManifestSize {
		return w
	}
	_, subject, err := manifests.Referrer(ocispec.Descriptor{}, head)
	if err != nil || subject == nil {
		return w
	}
	return httpsnoop.Wrap(w, httpsnoop.Hooks{WriteHeader: func(next httpsnoop.WriteHeaderFunc) httpsnoop.WriteHeaderFunc {
		return func(code int) {
			if code == http.StatusCreated {
				w.Header().Set(headerSubject, subject.Digest.String())
			}
			next(code)
		}
	}})
}

func serveError(w http.ResponseWriter, err error) {
	_ = errcode.ServeJSON(w, err)
}

// storedReferrers finds referrers among the manifests that distribution's
// storage links into a repository: the bundle's and those pushed since.
// Each manifest is read once: what it says about its subject is kept by
// digest, as its content never changes.
type storedReferrers struct {
	ns    distribution.Namespace
	mu    sync.Mutex
	known map[digest.Digest]storedManifest
}

// storedManifest is what a manifest says as a referrer; subject is empty
// when it has none.
type storedManifest struct {
	subject digest.Digest
	desc    ocispec.Descriptor
}

func newStoredReferrers(ns distribution.Namespace) *storedReferrers {
	return &storedReferrers{ns: ns, known: map[digest.Digest]storedManifest{}}
}

// Referrers implements referrerLister, sorted by digest. A repository
// that does not exist has none.
func (s *storedReferrers) Referrers(ctx context.Context, repo string, subject digest.Digest) ([]ocispec.Descriptor, error) {
	named, err := reference.WithName(repo)
	if err != nil {
		return nil, err
	}
	r, err := s.ns.Repository(ctx, named)
	if err != nil {
		return nil, err
	}
	ms, err := r.Manifests(ctx)
	if err != nil {
		return nil, err
	}
	enum, ok := ms.(distribution.ManifestEnumerator)
	if !ok {
		return nil, fmt.Errorf("the manifest store of %s cannot list its manifests", repo)
	}
	var out []ocispec.Descriptor
	err = enum.Enumerate(ctx, func(d digest.Digest) error {
		m, err := s.manifest(ctx, ms, d)
		if err == nil && m.subject == subject {
			out = append(out, m.desc)
		}
		return err
	})
	if err != nil && !notFound(err) {
		return nil, err
	}
	slices.SortFunc(out, func(a, b ocispec.Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	return out, nil
}

// manifest returns what the manifest d says as a referrer, reading it on
// first use.
func (s *storedReferrers) manifest(ctx context.Context, ms distribution.ManifestService, d digest.Digest) (storedManifest, error) {
	s.mu.Lock()
	m, ok := s.known[d]
	s.mu.Unlock()
	if ok {
		return m, nil
	}
	mf, err := ms.Get(ctx, d)
	if err != nil {
		return m, fmt.Errorf("manifest %s: %w", d, err)
	}
	mediaType, payload, err := mf.Payload()
	if err != nil {
		return m, fmt.Errorf("manifest %s: %w", d, err)
	}
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(payload))}
	desc, subject, err := manifests.Referrer(desc, payload)
	if err != nil {
		return m, err
	}
	m = storedManifest{desc: desc}
	if subject != nil {
		m.subject = subject.Digest
	}
	s.mu.Lock()
	s.known[d] = m
	s.mu.Unlock()
	return m, nil
}
