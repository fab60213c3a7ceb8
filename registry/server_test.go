package registry

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/internal/testenv"
)

// corruptCopy copies the fixture bundle and flips one byte in the middle of
// a blob's body.
func corruptCopy(t *testing.T, f *fixture, body []byte) string {
	t.Helper()
	b, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(b, body)
	if at < 0 {
		t.Fatal("blob not found in the bundle")
	}
	b[at+len(body)/2] ^= 0xff
	p := filepath.Join(t.TempDir(), "corrupt.tar")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConcurrentPulls has 32 clients pull every blob of every image at once;
// each checks every byte.
func TestConcurrentPulls(t *testing.T) {
	f := testBundle(t)
	s := serveBundle(t, f.path, Options{})
	type blob struct {
		url  string
		want []byte
	}
	var all []blob
	for ref := range f.images {
		repo, _, _ := strings.Cut(ref, ":")
		for d, b := range f.blobsOf(t, ref) {
			kind := "blobs"
			if d == f.digestOf(t, ref) || bytes.Contains(b, []byte(`"schemaVersion"`)) {
				kind = "manifests"
			}
			all = append(all, blob{s.url + "/v2/" + repo + "/" + kind + "/" + d.String(), b})
		}
	}
	c := httpClient(nil)
	var g errgroup.Group
	for i := 0; i < 32; i++ {
		g.Go(func() error {
			for j := range all {
				b := all[(i+j)%len(all)]
				req, _ := http.NewRequest(http.MethodGet, b.url, nil)
				req.Header.Set("Accept", acceptAll)
				resp, err := c.Do(req)
				if err != nil {
					return err
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(got, b.want) {
					return errors.New(b.url + ": " + resp.Status + ", wrong bytes")
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	t.Logf("32 clients pulled %d blobs each", len(all))
}

// TestGracefulShutdown ends Serve while an upload is in flight: the upload
// finishes, then the server is gone.
func TestGracefulShutdown(t *testing.T) {
	f := testBundle(t)
	dataDir := t.TempDir()
	s := serveBundle(t, f.path, Options{Writable: true, DataDir: dataDir})
	c := httpClient(nil)
	resp, body := call(t, c, http.MethodPost, s.url+"/v2/slow/upload/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST upload: %s %s", resp.Status, body)
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPatch, loc.String(), pr)
	req.Header.Set("Content-Type", "application/octet-stream")
	patched := make(chan *http.Response, 1)
	go func() {
		resp, err := c.Do(req)
		if err != nil {
			t.Error(err)
		}
		patched <- resp
	}()
	if _, err := pw.Write(bytes.Repeat([]byte("a"), 64<<10)); err != nil {
		t.Fatal(err)
	}
	// The upload is in flight once its first bytes are on disk.
	data := filepath.Join(dataDir, repositoryPath("slow/upload", "_uploads", path.Base(loc.Path), "data"))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if fi, err := os.Stat(data); err == nil && fi.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the upload did not reach %s", data)
		}
	}
	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("Serve returned (%v) with an upload in flight", err)
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := pw.Write(bytes.Repeat([]byte("b"), 64<<10)); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if resp := <-patched; resp == nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH in flight during shutdown: %v", resp)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := httpClient(nil).Get(s.url + "/v2/"); err == nil {
		t.Error("the server still answers after Serve returned")
	}
}

// TestTLS serves HTTPS with a self-signed CA and with certificate files.
func TestTLS(t *testing.T) {
	f := testBundle(t)
	selfSigned, caPEM, err := SelfSignedTLS([]string{"localhost", "127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	selfPool := x509.NewCertPool()
	if !selfPool.AppendCertsFromPEM(caPEM) {
		t.Fatal("the CA PEM does not parse")
	}
	files := testenv.NewTestCerts(t)
	loaded, err := LoadTLS(files.CertFile, files.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		tls  *tls.Config
		pool *x509.CertPool
	}{
		{"self-signed", selfSigned, selfPool},
		{"files", loaded, files.CAPool},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := serveBundle(t, f.path, Options{TLS: tc.tls})
			if !strings.HasPrefix(s.url, "https://127.0.0.1:") {
				t.Fatalf("URL %s", s.url)
			}
			_, port, _ := strings.Cut(s.host, ":")
			for _, u := range []string{s.url, "https://localhost:" + port} {
				tr := http.DefaultTransport.(*http.Transport).Clone()
				tr.TLSClientConfig = &tls.Config{RootCAs: tc.pool}
				resp, err := httpClient(tr).Get(u + "/v2/")
				if err != nil {
					t.Fatalf("GET %s/v2/ trusting the CA: %v", u, err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET %s/v2/: %s", u, resp.Status)
				}
			}
			var unknown *tls.CertificateVerificationError
			if _, err := httpClient(nil).Get(s.url + "/v2/"); !errors.As(err, &unknown) {
				t.Errorf("GET without trusting the CA: %v, want a certificate error", err)
			}
			if !s.log.wait("warn", "TLS handshake error") {
				t.Errorf("the failed handshake is not logged")
			}
		})
	}
}

// TestBadOptions gets clear errors for files and names that cannot work.
func TestBadOptions(t *testing.T) {
	f := testBundle(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certs := testenv.NewTestCerts(t)
	other := testenv.NewTestCerts(t)
	r, err := bundle.Open(t.Context(), f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, tc := range []struct {
		name    string
		run     func() error
		also    error
		mention string
	}{
		{"htpasswd missing", func() error {
			_, err := New(context.Background(), r, Options{Htpasswd: filepath.Join(dir, "nope")})
			return err
		}, fs.ErrNotExist, "nope"},
		{"htpasswd not bcrypt", func() error {
			_, err := New(context.Background(), r, Options{Htpasswd: write("md5", "user:$apr1$abc$def\n")})
			return err
		}, nil, "line 1"},
		{"htpasswd empty", func() error {
			_, err := New(context.Background(), r, Options{Htpasswd: write("empty", "# nobody\n")})
			return err
		}, nil, "no users"},
		{"bad prefix", func() error {
			_, err := New(context.Background(), r, Options{Prefix: "Not/A Prefix"})
			return err
		}, nil, "Not/A Prefix"},
		{"certificate missing", func() error {
			_, err := LoadTLS(filepath.Join(dir, "srv.crt"), certs.KeyFile)
			return err
		}, fs.ErrNotExist, "srv.crt"},
		{"key missing", func() error {
			_, err := LoadTLS(certs.CertFile, filepath.Join(dir, "srv.key"))
			return err
		}, fs.ErrNotExist, "srv.key"},
		{"key of another certificate", func() error {
			_, err := LoadTLS(certs.CertFile, other.KeyFile)
			return err
		}, nil, "private key does not match"},
		{"self-signed without hosts", func() error {
			_, _, err := SelfSignedTLS(nil, time.Hour)
			return err
		}, nil, "host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if !errors.Is(err, ErrInvalidOptions) || (tc.also != nil && !errors.Is(err, tc.also)) || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("got %v; want ErrInvalidOptions (and %v) mentioning %q", err, tc.also, tc.mention)
			}
		})
	}
}

// BenchmarkOpenAndFirstManifest measures start-up: open the bundle, lay
// it out, and answer the first manifest request.
func BenchmarkOpenAndFirstManifest(b *testing.B) {
	f := testBundle(b)
	for i := 0; i < b.N; i++ {
		r, err := bundle.Open(b.Context(), f.path)
		if err != nil {
			b.Fatal(err)
		}
		s, err := New(context.Background(), r, Options{})
		if err != nil {
			b.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, "/v2/library/multi/manifests/1", nil)
		req.Header.Set("Accept", acceptAll)
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("first manifest: %d", w.Code)
		}
		s.Close()
		r.Close()
	}
}
