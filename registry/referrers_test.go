package registry

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/manifests"
)

const (
	typeSignature = manifests.ArtifactTypeCosignSignature
	typeSBOM      = "application/spdx+json"
)

// artifact is a small OCI artifact for subject: an image manifest whose
// config media type is artifactType, with one layer and one annotation.
func artifact(t *testing.T, subject v1.Descriptor, artifactType, content string) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.MediaType(artifactType))
	img, err := mutate.Append(img, mutate.Addendum{Layer: static.NewLayer([]byte(content), types.MediaType(artifactType))})
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.Annotations(img, map[string]string{"test.content": content}).(v1.Image)
	return mutate.Subject(img, subject).(v1.Image)
}

// decodeIndex decodes a referrers answer.
func decodeIndex(t *testing.T, body []byte) ocispec.Index {
	t.Helper()
	var idx ocispec.Index
	if err := json.Unmarshal(body, &idx); err != nil {
		t.Fatalf("referrers answer %q: %v", body, err)
	}
	return idx
}

// TestReferrersGoContainerRegistry pushes referrers with
// go-containerregistry, which keeps the referrers tag schema only for a
// registry without the referrers API, and lists them with it: for a bundle
// image, a platform manifest of a bundle index, and an image pushed since.
func TestReferrersGoContainerRegistry(t *testing.T) {
	f := testBundle(t)
	s := serveBundle(t, f.path, Options{Writable: true})
	opts := []remote.Option{remote.WithTransport(httpClient(nil).Transport), remote.WithAuth(authn.Anonymous)}
	repo, err := name.NewRepository(s.host+"/library/multi", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	multi, err := remote.Index(repo.Tag("1"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	im, err := multi.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	pushed := artifact(t, im.Manifests[0], "application/vnd.example.pushed", "an image pushed into the server")
	if err := remote.Write(repo.Tag("pushed"), pushed, opts...); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []struct {
		name string
		desc v1.Descriptor
	}{
		{"bundle index", descriptorOf(t, multi)},
		{"bundle platform manifest", im.Manifests[1]},
		{"pushed image", descriptorOf(t, pushed)},
	} {
		t.Run(sub.name, func(t *testing.T) {
			want := map[string]string{}
			for _, a := range []v1.Image{artifact(t, sub.desc, typeSignature, "sig of "+sub.name), artifact(t, sub.desc, typeSBOM, "sbom of "+sub.name)} {
				d := descriptorOf(t, a)
				if err := remote.Write(repo.Digest(d.Digest.String()), a, opts...); err != nil {
					t.Fatal(err)
				}
				cfg, err := a.Manifest()
				if err != nil {
					t.Fatal(err)
				}
				want[d.Digest.String()] = string(cfg.Config.MediaType)
			}
			subject := repo.Digest(sub.desc.Digest.String())
			idx, err := remote.Referrers(subject, opts...)
			if err != nil {
				t.Fatal(err)
			}
			got, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Manifests) != len(want) {
				t.Fatalf("referrers of %s: %+v, want %v", subject, got.Manifests, want)
			}
			for _, m := range got.Manifests {
				if want[m.Digest.String()] != m.ArtifactType || m.Annotations["test.content"] == "" {
					t.Errorf("referrer %s: artifactType %q annotations %v, want %q", m.Digest, m.ArtifactType, m.Annotations, want[m.Digest.String()])
				}
			}
			idx, err = remote.Referrers(subject, append(opts, remote.WithFilter("artifactType", typeSBOM))...)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := idx.IndexManifest(); len(got.Manifests) != 1 || got.Manifests[0].ArtifactType != typeSBOM {
				t.Errorf("referrers of %s filtered by %s: %+v", subject, typeSBOM, got.Manifests)
			}
		})
	}
	tags, err := remote.List(repo, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(tags, func(tag string) bool { return strings.HasPrefix(tag, "sha256-") }); i >= 0 {
		t.Errorf("go-containerregistry wrote the referrers tag %s: it did not see the referrers API", tags[i])
	}
}

// descriptorOf is the descriptor of an image or index.
func descriptorOf(t *testing.T, x interface {
	MediaType() (types.MediaType, error)
	Digest() (v1.Hash, error)
	Size() (int64, error)
}) v1.Descriptor {
	t.Helper()
	mt, err := x.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	d, err := x.Digest()
	if err != nil {
		t.Fatal(err)
	}
	size, err := x.Size()
	if err != nil {
		t.Fatal(err)
	}
	return v1.Descriptor{MediaType: mt, Digest: d, Size: size}
}

// TestReferrersAPI checks the referrers API as the OCI distribution spec
// words it: the OCI-Subject header on a PUT with a subject, an empty index
// for a digest (or repository) without referrers, the artifactType filter,
// HEAD, bad names and digests, a deleted referrer, containerd's ns
// parameter and authentication.
func TestReferrersAPI(t *testing.T) {
	f := testBundle(t)
	const user, pass = "ferry", "s3cret-pass"
	s := serveBundle(t, f.path, Options{Writable: true, Htpasswd: writeHtpasswd(t, user, pass)})
	anon := httpClient(nil)
	c := &http.Client{Transport: basicAuth{user, pass, anon.Transport}}
	do := func(method, path string, hdr http.Header, body []byte) (*http.Response, []byte) {
		t.Helper()
		return call(t, c, method, s.url+path, hdr, body)
	}
	subject := f.digestOf(t, refMulti)
	const repo = "docker.io/library/multi"
	empty := pushBlob(t, c, s.url, repo, ocispec.DescriptorEmptyJSON.MediaType, []byte("{}"))
	layer := pushBlob(t, c, s.url, repo, typeSBOM, []byte(`{"spdxVersion":"SPDX-2.3"}`))
	put := func(m ocispec.Manifest) (digest.Digest, *http.Response) {
		t.Helper()
		b, _ := json.Marshal(m)
		resp, body := do(http.MethodPut, "/v2/"+repo+"/manifests/"+digest.FromBytes(b).String(), http.Header{"Content-Type": {ocispec.MediaTypeImageManifest}}, b)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT manifest: %s %s", resp.Status, body)
		}
		return digest.FromBytes(b), resp
	}
	base := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: empty, Layers: []ocispec.Descriptor{layer}}
	plain, resp := put(base)
	if h := resp.Header.Values(headerSubject); len(h) != 0 {
		t.Errorf("PUT without a subject: OCI-Subject %q", h)
	}
	withSubject := base
	withSubject.ArtifactType = typeSBOM
	withSubject.Subject = &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: subject, Size: 1}
	withSubject.Annotations = map[string]string{"org.example": "sbom"}
	sbom, resp := put(withSubject)
	if h := resp.Header.Get(headerSubject); h != subject.String() {
		t.Errorf("PUT with subject %s: OCI-Subject %q", subject, h)
	}
	sig := withSubject
	sig.ArtifactType, sig.Annotations = typeSignature, nil
	signature, _ := put(sig)

	list := func(path string) (ocispec.Index, *http.Response) {
		t.Helper()
		resp, body := do(http.MethodGet, path, nil, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ocispec.MediaTypeImageIndex {
			t.Fatalf("GET %s: %s %s %s", path, resp.Status, resp.Header.Get("Content-Type"), body)
		}
		return decodeIndex(t, body), resp
	}
	idx, resp := list("/v2/" + repo + "/referrers/" + subject.String())
	wantAll := []ocispec.Descriptor{
		{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: typeSBOM, Digest: sbom, Annotations: withSubject.Annotations},
		{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: typeSignature, Digest: signature},
	}
	checkReferrers(t, idx, wantAll)
	if resp.Header.Get(headerFiltersApplied) != "" {
		t.Errorf("no filter asked, OCI-Filters-Applied %q", resp.Header.Get(headerFiltersApplied))
	}
	idx, resp = list("/v2/" + repo + "/referrers/" + subject.String() + "?artifactType=" + url.QueryEscape(typeSignature))
	checkReferrers(t, idx, wantAll[1:])
	if resp.Header.Get(headerFiltersApplied) != "artifactType" {
		t.Errorf("filtered: OCI-Filters-Applied %q", resp.Header.Get(headerFiltersApplied))
	}
	// containerd's ns parameter reaches the host-qualified repository.
	idx, _ = list("/v2/library/multi/referrers/" + subject.String() + "?ns=docker.io")
	checkReferrers(t, idx, wantAll)
	for _, path := range []string{
		"/v2/" + repo + "/referrers/" + plain.String(),
		"/v2/library/multi/referrers/" + subject.String(),
		"/v2/no/such/repo/referrers/" + subject.String(),
	} {
		if idx, _ := list(path); idx.Manifests == nil || len(idx.Manifests) != 0 || idx.MediaType != ocispec.MediaTypeImageIndex {
			t.Errorf("GET %s: %+v, want an empty index", path, idx)
		}
	}

	if resp, body := do(http.MethodHead, "/v2/"+repo+"/referrers/"+subject.String(), nil, nil); resp.StatusCode != http.StatusOK || len(body) != 0 || resp.ContentLength <= 0 {
		t.Errorf("HEAD: %s, %d bytes, Content-Length %d", resp.Status, len(body), resp.ContentLength)
	}
	for _, tc := range []struct {
		path   string
		status int
		code   string
	}{
		{"/v2/" + repo + "/referrers/sha256:nothex", http.StatusBadRequest, "DIGEST_INVALID"},
		{"/v2/Upper/Case/referrers/" + subject.String(), http.StatusBadRequest, "NAME_INVALID"},
	} {
		if resp, body := do(http.MethodGet, tc.path, nil, nil); resp.StatusCode != tc.status || errorCode(body) != tc.code {
			t.Errorf("GET %s: %s %s, want %d %s", tc.path, resp.Status, body, tc.status, tc.code)
		}
	}
	resp, _ = call(t, anon, http.MethodGet, s.url+"/v2/"+repo+"/referrers/"+subject.String(), nil, nil)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Basic realm="ferry"` {
		t.Errorf("GET without credentials: %s, WWW-Authenticate %q", resp.Status, resp.Header.Get("WWW-Authenticate"))
	}

	if resp, body := do(http.MethodDelete, "/v2/"+repo+"/manifests/"+sbom.String(), nil, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE %s: %s %s", sbom, resp.Status, body)
	}
	idx, _ = list("/v2/" + repo + "/referrers/" + subject.String())
	checkReferrers(t, idx, wantAll[1:])
}

// checkReferrers compares a referrers index with want (sizes aside).
func checkReferrers(t *testing.T, idx ocispec.Index, want []ocispec.Descriptor) {
	t.Helper()
	got := slices.Clone(idx.Manifests)
	for i := range got {
		if got[i].Size <= 0 {
			t.Errorf("referrer %s: size %d", got[i].Digest, got[i].Size)
		}
		got[i].Size = 0
	}
	want = slices.Clone(want)
	slices.SortFunc(want, func(a, b ocispec.Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("referrers:\n got %s\nwant %s", g, w)
	}
}

// basicAuth sends every request with HTTP basic authentication.
type basicAuth struct {
	user, pass string
	next       http.RoundTripper
}

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.user, b.pass)
	return b.next.RoundTrip(r)
}
