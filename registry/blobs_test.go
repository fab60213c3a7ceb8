package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/testimages"
	"github.com/ferry-oci/ferry/manifests"
)

// largestBlob is the biggest blob of one fixture image, a layer.
func largestBlob(t *testing.T, f *fixture, ref string) (digest.Digest, []byte) {
	t.Helper()
	var d digest.Digest
	var b []byte
	for dd, bb := range f.blobsOf(t, ref) {
		if len(bb) > len(b) {
			d, b = dd, bb
		}
	}
	return d, b
}

// TestBlobFastPath reads a layer whole, by ranges, with HEAD and
// conditionally, over plain HTTP and TLS, under both names and with
// containerd's ns parameter, and asks for it in a repository that does
// not reference it.
func TestBlobFastPath(t *testing.T) {
	f := testBundle(t)
	layer, want := largestBlob(t, f, refTools)
	var quayLayer digest.Digest // a blob of quay.io/library/multi:1 only
	tools := f.blobsOf(t, refTools)
	for d := range f.blobsOf(t, refQuay) {
		if _, shared := tools[d]; !shared {
			quayLayer = d
		}
	}
	tlsOpts, _, ca := selfSignedFiles(t)
	pem, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	for _, tc := range []struct {
		name string
		opts Options
		c    *http.Client
	}{
		{"plain http", Options{}, httpClient(nil)},
		{"tls", tlsOpts, httpClient(tr)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := serveBundle(t, f.path, tc.opts)
			for _, tc2 := range []struct {
				what, method, path string
				hdr                http.Header
				status             int
				body               []byte
				code               string
			}{
				{"whole", http.MethodGet, "ferry/tools", nil, 200, want, ""},
				{"host-qualified", http.MethodGet, "ghcr.io/ferry/tools", nil, 200, want, ""},
				{"ns", http.MethodGet, "ferry/tools", nil, 200, want, ""},
				{"head", http.MethodHead, "ferry/tools", nil, 200, nil, ""},
				{"range", http.MethodGet, "ferry/tools", http.Header{"Range": {"bytes=100-4195"}}, 206, want[100:4196], ""},
				{"suffix range", http.MethodGet, "ferry/tools", http.Header{"Range": {"bytes=-10"}}, 206, want[len(want)-10:], ""},
				{"bad range", http.MethodGet, "ferry/tools", http.Header{"Range": {fmt.Sprintf("bytes=%d-", len(want)+5)}}, 416, nil, ""},
				{"not modified", http.MethodGet, "ferry/tools", http.Header{"If-None-Match": {`"` + layer.String() + `"`}}, 304, nil, ""},
				{"another repository's blob", http.MethodGet, "ferry/tools/blobs/" + quayLayer.String(), nil, 404, nil, "BLOB_UNKNOWN"},
				{"not in the bundle", http.MethodGet, "ferry/tools/blobs/" + digest.FromString("nope").String(), nil, 404, nil, "BLOB_UNKNOWN"},
			} {
				u := s.url + "/v2/" + tc2.path
				if !strings.Contains(tc2.path, "/blobs/") {
					u += "/blobs/" + layer.String()
				}
				if tc2.what == "ns" {
					u += "?ns=ghcr.io"
				}
				resp, body := call(t, tc.c, tc2.method, u, tc2.hdr, nil)
				ok := resp.StatusCode == tc2.status && errorCode(body) == tc2.code
				if tc2.body != nil || tc2.status == 304 || tc2.method == http.MethodHead {
					ok = ok && string(body) == string(tc2.body)
				}
				if tc2.status == 200 {
					ok = ok && resp.Header.Get("Docker-Content-Digest") == layer.String() &&
						resp.Header.Get("Etag") == `"`+layer.String()+`"` && resp.ContentLength == int64(len(want))
				}
				if !ok {
					t.Errorf("%s: %s %s: %s %v %d bytes %.200s", tc2.what, tc2.method, u, resp.Status, resp.Header, len(body), body)
				}
			}
		})
	}
}

// TestCorruptBlob serves a bundle with a flipped byte inside a layer: no
// byte of it is ever sent, the first request logs it, every request
// fails. A corrupt manifest stops New, and so does a corrupt layer with
// VerifyAll.
func TestCorruptBlob(t *testing.T) {
	f := testBundle(t)
	layer, body := largestBlob(t, f, refTools)
	corrupt := corruptCopy(t, f, body)

	t.Run("layer", func(t *testing.T) {
		s := serveBundle(t, corrupt, Options{})
		c := httpClient(nil)
		u := s.url + "/v2/ferry/tools/blobs/" + layer.String()
		for _, tc := range []struct {
			method string
			hdr    http.Header
		}{
			{http.MethodGet, nil},
			{http.MethodGet, nil},
			{http.MethodGet, http.Header{"Range": {"bytes=0-99"}}},
			{http.MethodHead, nil},
		} {
			resp, got := call(t, c, tc.method, u, tc.hdr, nil)
			if resp.StatusCode != http.StatusInternalServerError || (tc.method == http.MethodGet && errorCode(got) != "UNKNOWN") {
				t.Errorf("%s %v the corrupt layer: %s %.200s, want 500 UNKNOWN", tc.method, tc.hdr, resp.Status, got)
			}
		}
		if lines := s.log.grep("error", layer.String(), manifests.ErrDigestMismatch.Error()); len(lines) != 1 {
			t.Errorf("log lines naming the corrupt layer: %q, want 1", lines)
		}
	})

	t.Run("mounted into a pushed repository", func(t *testing.T) {
		s := serveBundle(t, corrupt, Options{Writable: true})
		c := httpClient(nil)
		resp, got := call(t, c, http.MethodPost, s.url+"/v2/pushed/app/blobs/uploads/?mount="+layer.String()+"&from=ferry/tools", nil, nil)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("mount: %s %s", resp.Status, got)
		}
		resp, got = call(t, c, http.MethodGet, s.url+"/v2/pushed/app/blobs/"+layer.String(), nil, nil)
		if resp.StatusCode != http.StatusInternalServerError || errorCode(got) != "UNKNOWN" {
			t.Errorf("GET the mounted corrupt layer: %s %.200s, want 500 UNKNOWN", resp.Status, got)
		}
	})

	t.Run("verify all", func(t *testing.T) {
		r, err := bundle.Open(t.Context(), corrupt)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		_, err = New(context.Background(), r, Options{VerifyAll: true})
		if !errors.Is(err, manifests.ErrDigestMismatch) || !strings.Contains(err.Error(), layer.String()) {
			t.Errorf("New with VerifyAll over a corrupt layer: %v, want a digest mismatch naming %s", err, layer)
		}
	})

	t.Run("manifest", func(t *testing.T) {
		r, err := bundle.Open(t.Context(), corruptCopy(t, f, f.blobs(t)[f.digestOf(t, refTools)]))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		_, err = New(context.Background(), r, Options{})
		if !errors.Is(err, manifests.ErrDigestMismatch) || !strings.Contains(err.Error(), refTools) {
			t.Errorf("New over a corrupt manifest: %v, want a digest mismatch naming %s", err, refTools)
		}
	})
}

// TestBundleReplaced changes the served file after start, in place and by
// a rename over it: blob requests then fail with UNAVAILABLE, and the log
// says the bundle changed.
func TestBundleReplaced(t *testing.T) {
	f := testBundle(t)
	layer, _ := largestBlob(t, f, refTools)
	orig, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(path string) error
	}{
		{"touched", func(p string) error {
			later := time.Now().Add(time.Hour)
			return os.Chtimes(p, later, later)
		}},
		{"renamed over", func(p string) error {
			tmp := p + ".new"
			if err := os.WriteFile(tmp, orig, 0o644); err != nil {
				return err
			}
			return os.Rename(tmp, p)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "bundle.tar")
			if err := os.WriteFile(p, orig, 0o644); err != nil {
				t.Fatal(err)
			}
			s := serveBundle(t, p, Options{})
			c := httpClient(nil)
			u := s.url + "/v2/ferry/tools/blobs/" + layer.String()
			if resp, _ := call(t, c, http.MethodGet, u, nil, nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("GET before the change: %s", resp.Status)
			}
			if err := tc.change(p); err != nil {
				t.Fatal(err)
			}
			resp, body := call(t, c, http.MethodGet, u, nil, nil)
			if resp.StatusCode != http.StatusServiceUnavailable || errorCode(body) != "UNAVAILABLE" {
				t.Errorf("GET after the change: %s %.200s, want 503 UNAVAILABLE", resp.Status, body)
			}
			if len(s.log.grep("error", p, ErrBundleChanged.Error())) != 1 {
				t.Errorf("the log does not say once that %s changed", p)
			}
		})
	}
}

// TestFiveHundredClients has 500 clients, each on its own connection,
// fetch a 4 MiB layer at once; every byte is checked, and the process
// allocates far less than the bytes it sends.
func TestFiveHundredClients(t *testing.T) {
	img := testimages.Image(t, "linux/amd64", testimages.WithRandomLayers(1, 4<<20))
	path := testbundle.Write(t, filepath.Join(t.TempDir(), "big.tar"), map[string]testbundle.Image{"docker.io/library/big:1": img})
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	ld, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	s := serveBundle(t, path, Options{})
	const clients = 500
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var g errgroup.Group
	for i := 0; i < clients; i++ {
		g.Go(func() error {
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.Proxy = nil
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 2 * time.Minute}).Get(s.url + "/v2/library/big/blobs/" + ld.String())
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			v := digest.Digest(ld.String()).Verifier()
			n, err := io.Copy(v, resp.Body)
			if err != nil || resp.StatusCode != http.StatusOK || !v.Verified() {
				return fmt.Errorf("client %d: %s, %d bytes, %v, verified %v", i, resp.Status, n, err, v.Verified())
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	sent := uint64(clients * 4 << 20)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > sent/8 {
		t.Errorf("500 clients of a 4 MiB blob: %d MB allocated (clients and server), %d MB sent", alloc>>20, sent>>20)
	}
	t.Logf("500 clients: %d MB sent, %d MB allocated by clients and server together", sent>>20, (after.TotalAlloc-before.TotalAlloc)>>20)
}
