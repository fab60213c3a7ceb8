package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/manifests"
)

// acceptAll is the Accept header of a client that takes every manifest type.
var acceptAll = strings.Join([]string{
	ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest,
	manifests.MediaTypeDockerManifestList, manifests.MediaTypeDockerManifest,
}, ", ")

// call makes one request and returns the response with its whole body.
func call(t testing.TB, c *http.Client, method, u string, hdr http.Header, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, u, err)
	}
	return resp, b
}

// errorCode is the first code of a registry error body.
func errorCode(body []byte) string {
	var e struct{ Errors []struct{ Code string } }
	if json.Unmarshal(body, &e) != nil || len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

// TestPull follows the OCI distribution spec's pull workflow: manifests by
// tag and by digest (GET and HEAD, exact bytes, media type, digest header),
// under both repository names and with containerd's ns parameter, then blobs
// whole and by range.
func TestPull(t *testing.T) {
	f := testBundle(t)
	s := serveBundle(t, f.path, Options{})
	c := httpClient(nil)
	multi, quay := f.digestOf(t, refMulti), f.digestOf(t, refQuay)
	idx, err := manifests.ParseIndex(f.blobs(t)[multi])
	if err != nil {
		t.Fatal(err)
	}
	child := idx.Manifests[1]

	for _, tc := range []struct {
		path      string
		want      digest.Digest
		mediaType string
	}{
		{"library/multi/manifests/1", multi, ocispec.MediaTypeImageIndex},
		{"library/multi/manifests/latest", multi, ocispec.MediaTypeImageIndex},
		{"docker.io/library/multi/manifests/1", multi, ocispec.MediaTypeImageIndex},
		{"library/multi/manifests/" + multi.String(), multi, ocispec.MediaTypeImageIndex},
		{"library/multi/manifests/" + child.Digest.String(), child.Digest, ocispec.MediaTypeImageManifest},
		{"quay.io/library/multi/manifests/1", quay, ocispec.MediaTypeImageManifest},
		{"library/multi/manifests/1?ns=quay.io", quay, ocispec.MediaTypeImageManifest},
		{"library/multi/manifests/1?ns=docker.io", multi, ocispec.MediaTypeImageIndex},
		{"library/multi/manifests/1?ns=unknown.example", multi, ocispec.MediaTypeImageIndex},
		{"library/schema2/manifests/1", f.digestOf(t, refSchema2), manifests.MediaTypeDockerManifestList},
		{"ferry/tools/manifests/v1", f.digestOf(t, refTools), ocispec.MediaTypeImageManifest},
		{"ghcr.io/ferry/tools/manifests/v1", f.digestOf(t, refTools), ocispec.MediaTypeImageManifest},
	} {
		t.Run(tc.path, func(t *testing.T) {
			for _, method := range []string{http.MethodHead, http.MethodGet} {
				resp, body := call(t, c, method, s.url+"/v2/"+tc.path, http.Header{"Accept": {acceptAll}}, nil)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%s: %s %s", method, resp.Status, body)
				}
				if got := resp.Header.Get("Docker-Content-Digest"); got != tc.want.String() {
					t.Errorf("%s: Docker-Content-Digest %s, want %s", method, got, tc.want)
				}
				if got := resp.Header.Get("Content-Type"); got != tc.mediaType {
					t.Errorf("%s: Content-Type %s, want %s", method, got, tc.mediaType)
				}
				if method == http.MethodGet && digest.FromBytes(body) != tc.want {
					t.Errorf("GET: body is %s, want %s", digest.FromBytes(body), tc.want)
				}
			}
		})
	}

	for _, tc := range []struct{ path, code string }{
		{"library/multi/manifests/2", "MANIFEST_UNKNOWN"},
		{"library/multi/manifests/" + digest.FromString("nope").String(), "MANIFEST_UNKNOWN"},
		{"nope/nope/manifests/1", "MANIFEST_UNKNOWN"},
		{"library/multi/blobs/" + digest.FromString("nope").String(), "BLOB_UNKNOWN"},
	} {
		resp, body := call(t, c, http.MethodGet, s.url+"/v2/"+tc.path, http.Header{"Accept": {acceptAll}}, nil)
		if resp.StatusCode != http.StatusNotFound || errorCode(body) != tc.code {
			t.Errorf("GET %s: %s %s, want 404 %s", tc.path, resp.Status, body, tc.code)
		}
	}

	t.Run("blobs", func(t *testing.T) {
		blobs := f.blobs(t)
		m, err := manifests.ParseManifest(blobs[child.Digest])
		if err != nil {
			t.Fatal(err)
		}
		for _, desc := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
			want := blobs[desc.Digest]
			u := s.url + "/v2/library/multi/blobs/" + desc.Digest.String()
			resp, body := call(t, c, http.MethodGet, u, nil, nil)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) || resp.Header.Get("Docker-Content-Digest") != desc.Digest.String() {
				t.Errorf("GET blob %s: %s, %d bytes (want %d)", desc.Digest, resp.Status, len(body), len(want))
			}
			resp, body = call(t, c, http.MethodGet, u, http.Header{"Range": {"bytes=10-99"}}, nil)
			if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, want[10:100]) {
				t.Errorf("GET blob %s bytes=10-99: %s, %d bytes", desc.Digest, resp.Status, len(body))
			}
			resp, _ = call(t, c, http.MethodHead, u, nil, nil)
			if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(want)) {
				t.Errorf("HEAD blob %s: %s, length %d", desc.Digest, resp.Status, resp.ContentLength)
			}
		}
	})

	if lines := s.log.grep("info GET /v2/library/multi/manifests/1 200"); len(lines) == 0 {
		t.Errorf("no access line for GET /v2/library/multi/manifests/1")
	}
}

// TestContentDiscovery lists tags (with pagination) and the catalog, with
// and without a prefix.
func TestContentDiscovery(t *testing.T) {
	f := testBundle(t)
	c := httpClient(nil)
	list := func(t *testing.T, u string) ([]string, string) {
		t.Helper()
		resp, body := call(t, c, http.MethodGet, u, nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %s", u, resp.Status, body)
		}
		var v struct {
			Tags         []string
			Repositories []string
		}
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatal(err)
		}
		got := append(v.Tags, v.Repositories...)
		if len(got) == 0 {
			got = nil
		}
		return got, resp.Header.Get("Link")
	}

	for _, prefix := range []string{"", "mirror"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			s := serveBundle(t, f.path, Options{Prefix: prefix})
			p := ""
			if prefix != "" {
				p = prefix + "/"
			}
			// more says a Link to a next page is due; distribution also
			// links a full last page to an empty one.
			for _, tc := range []struct {
				path string
				want []string
				more bool
			}{
				{p + "library/multi/tags/list", []string{"1", "latest"}, false},
				{p + "library/multi/tags/list?n=1", []string{"1"}, true},
				{p + "library/multi/tags/list?n=1&last=1", []string{"latest"}, false},
				{p + "library/multi/tags/list?n=1&last=latest", nil, false},
				{p + "quay.io/library/multi/tags/list", []string{"1"}, false},
				{p + "library/multi/tags/list?ns=quay.io", []string{"1"}, false},
				{"_catalog", s.Repositories(), false},
				{"_catalog?n=3", s.Repositories()[:3], true},
				{"_catalog?n=3&last=" + url.QueryEscape(s.Repositories()[2]), s.Repositories()[3:6], true},
			} {
				got, link := list(t, s.url+"/v2/"+tc.path)
				if !reflect.DeepEqual(got, tc.want) || (tc.more && link == "") {
					t.Errorf("GET %s = %v (Link %q), want %v (next page: %v)", tc.path, got, link, tc.want, tc.more)
				}
			}
			want := []string{"docker.io/library/multi", "docker.io/library/schema2", "ferry/tools", "ghcr.io/ferry/tools", "library/multi", "library/schema2", "quay.io/library/multi"}
			for i := range want {
				want[i] = p + want[i]
			}
			if got := s.Repositories(); !reflect.DeepEqual(got, want) {
				t.Errorf("Repositories() = %v, want %v", got, want)
			}
			if s.Images() != 5 {
				t.Errorf("Images() = %d, want 5", s.Images())
			}
			resp, _ := call(t, c, http.MethodGet, s.url+"/v2/"+p+"library/multi/manifests/1?ns=quay.io", http.Header{"Accept": {acceptAll}}, nil)
			if got := resp.Header.Get("Docker-Content-Digest"); got != f.digestOf(t, refQuay).String() {
				t.Errorf("ns=quay.io under prefix %q: %s %s", prefix, resp.Status, got)
			}
		})
	}
}

// pushBlob uploads a blob monolithically (POST then PUT) and checks the
// registry created it.
func pushBlob(t testing.TB, c *http.Client, base, repo, mediaType string, content []byte) ocispec.Descriptor {
	t.Helper()
	d := digest.FromBytes(content)
	loc, err := url.Parse(startUpload(t, c, base, repo))
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	resp, body := call(t, c, http.MethodPut, loc.String(), http.Header{"Content-Type": {"application/octet-stream"}}, content)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT upload: %s %s", resp.Status, body)
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(content))}
}

// TestPushAndDelete follows the spec's push and content management
// workflows in writable mode: blobs, a cross-repository mount from the
// bundle, manifests by tag, deletes of pushed content, and the refusal to
// delete what the bundle holds.
func TestPushAndDelete(t *testing.T) {
	f := testBundle(t)
	dataDir := t.TempDir()
	s := serveBundle(t, f.path, Options{Writable: true, DataDir: dataDir})
	c := httpClient(nil)
	blobs := f.blobs(t)
	idx, err := manifests.ParseIndex(blobs[f.digestOf(t, refMulti)])
	if err != nil {
		t.Fatal(err)
	}
	child := idx.Manifests[0]
	m, err := manifests.ParseManifest(blobs[child.Digest])
	if err != nil {
		t.Fatal(err)
	}

	// A new image: a new config, a new layer, and a layer mounted from the bundle.
	config := pushBlob(t, c, s.url, "pushed/app", ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	layer := pushBlob(t, c, s.url, "pushed/app", ocispec.MediaTypeImageLayer, []byte("a layer that is not in the bundle"))
	mounted := m.Layers[0]
	resp, body := call(t, c, http.MethodPost, s.url+"/v2/pushed/app/blobs/uploads/?mount="+mounted.Digest.String()+"&from=library/multi", nil, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("mount from library/multi: %s %s", resp.Status, body)
	}
	manifest, _ := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    config,
		Layers:    []ocispec.Descriptor{layer, mounted},
	})
	md := digest.FromBytes(manifest)
	ct := http.Header{"Content-Type": {ocispec.MediaTypeImageManifest}}
	resp, body = call(t, c, http.MethodPut, s.url+"/v2/pushed/app/manifests/v1", ct, manifest)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Docker-Content-Digest") != md.String() {
		t.Fatalf("PUT manifest: %s %s", resp.Status, body)
	}
	// A new tag in a bundle repository, for a manifest the bundle has.
	resp, body = call(t, c, http.MethodPut, s.url+"/v2/library/multi/manifests/extra", ct, blobs[child.Digest])
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT library/multi:extra: %s %s", resp.Status, body)
	}

	for _, tc := range []struct {
		method, path string
		status       int
		code         string
		digest       digest.Digest
	}{
		{http.MethodGet, "pushed/app/manifests/v1", 200, "", md},
		{http.MethodGet, "pushed/app/blobs/" + layer.Digest.String(), 200, "", layer.Digest},
		{http.MethodGet, "pushed/app/blobs/" + mounted.Digest.String(), 200, "", mounted.Digest},
		{http.MethodGet, "library/multi/manifests/extra", 200, "", child.Digest},
		{http.MethodDelete, "library/multi/manifests/extra", 202, "", ""},
		{http.MethodGet, "library/multi/manifests/extra", 404, "MANIFEST_UNKNOWN", ""},
		{http.MethodDelete, "pushed/app/manifests/" + md.String(), 202, "", ""},
		{http.MethodGet, "pushed/app/manifests/v1", 404, "MANIFEST_UNKNOWN", ""},
		{http.MethodDelete, "pushed/app/blobs/" + layer.Digest.String(), 202, "", ""},
		{http.MethodGet, "pushed/app/blobs/" + layer.Digest.String(), 404, "BLOB_UNKNOWN", ""},
		// What the bundle holds stays.
		{http.MethodDelete, "library/multi/manifests/" + child.Digest.String(), 405, "UNSUPPORTED", ""},
		{http.MethodDelete, "library/multi/manifests/1", 405, "UNSUPPORTED", ""},
		{http.MethodDelete, "library/multi/blobs/" + mounted.Digest.String(), 405, "UNSUPPORTED", ""},
		{http.MethodGet, "library/multi/manifests/1", 200, "", f.digestOf(t, refMulti)},
	} {
		resp, body := call(t, c, tc.method, s.url+"/v2/"+tc.path, http.Header{"Accept": {acceptAll}}, nil)
		if resp.StatusCode != tc.status || errorCode(body) != tc.code || (tc.digest != "" && digest.FromBytes(body) != tc.digest) {
			t.Errorf("%s %s: %s %.200s; want %d %s %s", tc.method, tc.path, resp.Status, body, tc.status, tc.code, tc.digest)
		}
	}
}

// TestReadOnly refuses every write with UNSUPPORTED and still serves reads.
func TestReadOnly(t *testing.T) {
	f := testBundle(t)
	s := serveBundle(t, f.path, Options{})
	c := httpClient(nil)
	multi := f.digestOf(t, refMulti)
	for _, tc := range []struct{ method, path string }{
		{http.MethodPost, "pushed/app/blobs/uploads/"},
		{http.MethodPut, "library/multi/manifests/2"},
		{http.MethodDelete, "library/multi/manifests/" + multi.String()},
		{http.MethodPatch, "library/multi/blobs/uploads/x"},
	} {
		resp, body := call(t, c, tc.method, s.url+"/v2/"+tc.path, nil, []byte("{}"))
		if resp.StatusCode != http.StatusMethodNotAllowed || errorCode(body) != "UNSUPPORTED" {
			t.Errorf("%s %s: %s %s; want 405 UNSUPPORTED", tc.method, tc.path, resp.Status, body)
		}
	}
	resp, _ := call(t, c, http.MethodGet, s.url+"/v2/library/multi/manifests/1", http.Header{"Accept": {acceptAll}}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET in read-only mode: %s", resp.Status)
	}
}

// TestAuth requires basic authentication with an htpasswd file and keeps
// credentials out of the log.
func TestAuth(t *testing.T) {
	f := testBundle(t)
	s := serveBundle(t, f.path, Options{Htpasswd: writeHtpasswd(t, "ferry", "s3cret-pass")})
	c := httpClient(nil)
	for _, tc := range []struct {
		name, user, pass string
		status           int
	}{
		{"none", "", "", http.StatusUnauthorized},
		{"wrong password", "ferry", "nope", http.StatusUnauthorized},
		{"unknown user", "who", "s3cret-pass", http.StatusUnauthorized},
		{"right", "ferry", "s3cret-pass", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/v2/", "/v2/library/multi/manifests/1"} {
				req, _ := http.NewRequest(http.MethodGet, s.url+path, nil)
				req.Header.Set("Accept", acceptAll)
				if tc.user != "" {
					req.SetBasicAuth(tc.user, tc.pass)
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.status {
					t.Errorf("GET %s: %s, want %d", path, resp.Status, tc.status)
				}
				if tc.status == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") != `Basic realm="ferry"` {
					t.Errorf("GET %s: WWW-Authenticate %q", path, resp.Header.Get("WWW-Authenticate"))
				}
			}
		})
	}
	if lines := s.log.grep("s3cret"); len(lines) > 0 {
		t.Errorf("the log holds the password: %q", lines)
	}
	if lines := s.log.grep(fmt.Sprint(http.StatusUnauthorized)); len(lines) == 0 {
		t.Errorf("no access line for the 401s")
	}
}
