package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ferry-oci/ferry/internal/testenv"
)

// syncBuffer is a bytes.Buffer that several loggers may write at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServe runs `ferry serve args... --ready-file F` until the test calls
// the returned stop, which cancels it (as SIGINT does) and returns the exit
// code, stdout and stderr. It returns the URL from the ready file.
func startServe(t *testing.T, args ...string) (string, func() (int, string, string)) {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() { done <- execute(ctx, append(args, "--ready-file", ready), &out, &errOut) }()
	stop := sync.OnceValue(func() int {
		cancel()
		return <-done
	})
	t.Cleanup(func() { stop() })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(ready); err == nil {
			return strings.TrimSpace(string(b)), func() (int, string, string) {
				code := stop()
				if _, err := os.Stat(ready); !os.IsNotExist(err) {
					t.Errorf("the ready file is still there after exit: %v", err)
				}
				return code, out.String(), errOut.String()
			}
		}
		select {
		case code := <-done:
			t.Fatalf("ferry serve exited with %d before it was ready: %s", code, errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ferry serve not ready after 30s: %s", errOut.String())
		}
	}
}

func TestServeCommand(t *testing.T) {
	path, digests := pushTestBundle(t)
	get := func(t *testing.T, c *http.Client, u string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	t.Run("plain http", func(t *testing.T) {
		url, stop := startServe(t, "serve", path, "--plain-http", "--listen", "127.0.0.1:0")
		resp := get(t, &http.Client{Transport: &http.Transport{}}, url+"/v2/library/multi/manifests/1")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Content-Digest") != digests["multi"].String() {
			t.Errorf("GET multi:1: %s %s", resp.Status, resp.Header.Get("Docker-Content-Digest"))
		}
		code, stdout, stderr := stop()
		if code != exitOK {
			t.Errorf("exit %d after cancel: %s", code, stderr)
		}
		if want := "serving 2 images on " + url + "\n"; !strings.HasPrefix(url, "http://127.0.0.1:") || stdout != want {
			t.Errorf("stdout %q, want %q", stdout, want)
		}
		if !strings.Contains(stderr, "GET /v2/library/multi/manifests/1 200") {
			t.Errorf("no access line in the log:\n%s", stderr)
		}
	})

	t.Run("read-only unless asked", func(t *testing.T) {
		for _, tc := range []struct {
			flags  []string
			refuse bool
		}{
			{nil, true},
			{[]string{"--writable", "--verify", "full"}, false},
			{[]string{"--data-dir", t.TempDir()}, false},
		} {
			url, stop := startServe(t, append([]string{"serve", path, "--plain-http", "--listen", "127.0.0.1:0"}, tc.flags...)...)
			ref, err := name.ParseReference(strings.TrimPrefix(url, "http://")+"/pushed/image:1", name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			img, err := random.Image(512, 1)
			if err != nil {
				t.Fatal(err)
			}
			err = remote.Write(ref, img)
			if refused := err != nil && strings.Contains(err.Error(), "UNSUPPORTED"); refused != tc.refuse || (!tc.refuse && err != nil) {
				t.Errorf("serve %v: push %v, want refused=%v", tc.flags, err, tc.refuse)
			}
			stop()
		}
	})

	t.Run("self-signed", func(t *testing.T) {
		ca := filepath.Join(t.TempDir(), "ca.crt")
		url, stop := startServe(t, "serve", path, "--tls-self-signed", "--hostname", "localhost", "--ca-out", ca, "--listen", "127.0.0.1:0", "-o", "json")
		pem, err := os.ReadFile(ca)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		if !strings.HasPrefix(url, "https://localhost:") {
			t.Errorf("URL %s, want https://localhost:PORT", url)
		}
		_, port, _ := strings.Cut(strings.TrimPrefix(url, "https://"), ":")
		for _, u := range []string{url, "https://127.0.0.1:" + port} {
			if resp := get(t, c, u+"/v2/library/list/manifests/1"); resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s: %s", u, resp.Status)
			}
		}
		code, stdout, stderr := stop()
		var ready struct {
			URL    string
			Images int
		}
		if err := json.Unmarshal([]byte(stdout), &ready); err != nil || ready.URL != url || ready.Images != 2 || code != exitOK {
			t.Errorf("exit %d, -o json %q (%v): %s", code, stdout, err, stderr)
		}
	})
}

func TestServeCommandErrors(t *testing.T) {
	path, _ := pushTestBundle(t)
	dir := t.TempDir()
	notBundle := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notBundle, []byte("not a tar file at all\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	certs := testenv.NewTestCerts(t)
	listen := []string{"--listen", "127.0.0.1:0"}
	for _, tc := range []struct {
		name    string
		args    []string
		code    int
		mention []string
	}{
		{"no transport", []string{"serve", path}, exitUsage, []string{"--plain-http"}},
		{"two transports", []string{"serve", path, "--plain-http", "--tls-self-signed", "--ca-out", "x"}, exitUsage, []string{"choose one"}},
		{"cert without key", []string{"serve", path, "--tls-cert", certs.CertFile}, exitUsage, []string{"--tls-key"}},
		{"self-signed without ca-out", []string{"serve", path, "--tls-self-signed"}, exitUsage, []string{"--ca-out"}},
		{"ca-out without self-signed", []string{"serve", path, "--plain-http", "--ca-out", "x"}, exitUsage, []string{"--ca-out"}},
		{"read-only data dir", []string{"serve", path, "--plain-http", "--read-only", "--data-dir", dir}, exitUsage, []string{"--data-dir"}},
		{"read-only writable", []string{"serve", path, "--plain-http", "--read-only", "--writable"}, exitUsage, []string{"--writable"}},
		{"writable off loopback without htpasswd", []string{"serve", path, "--plain-http", "--writable", "--listen", "0.0.0.0:0"}, exitUsage, []string{"htpasswd"}},
		{"no upload", []string{"serve", path, "--plain-http", "--writable", "--max-upload", "0"}, exitUsage, []string{"--max-upload"}},
		{"no bundle", []string{"serve", "--plain-http"}, exitUsage, []string{"arg"}},
		{"not a bundle", append([]string{"serve", notBundle, "--plain-http"}, listen...), exitFailure, []string{"not an OCI layout tarball", notBundle}},
		{"missing bundle", append([]string{"serve", filepath.Join(dir, "nope.tar"), "--plain-http"}, listen...), exitFailure, []string{"no such file"}},
		{"port in use", []string{"serve", path, "--plain-http", "--listen", busy.Addr().String()}, exitFailure, []string{busy.Addr().String(), "address already in use"}},
		{"missing certificate", append([]string{"serve", path, "--tls-cert", filepath.Join(dir, "srv.crt"), "--tls-key", certs.KeyFile}, listen...), exitFailure, []string{"srv.crt", "no such file"}},
		{"missing htpasswd", append([]string{"serve", path, "--plain-http", "--htpasswd", filepath.Join(dir, "users")}, listen...), exitFailure, []string{"htpasswd", "users", "no such file"}},
		{"bad prefix", append([]string{"serve", path, "--plain-http", "--prefix", "UP"}, listen...), exitUsage, []string{"prefix", "UP"}},
		{"bad verify", []string{"serve", path, "--plain-http", "--verify", "half"}, exitUsage, []string{"--verify"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runFerry(t, "", tc.args...)
			if code != tc.code || stdout != "" {
				t.Errorf("exit %d (want %d), stdout %q, stderr %s", code, tc.code, stdout, stderr)
			}
			for _, m := range tc.mention {
				if !strings.Contains(stderr, m) {
					t.Errorf("stderr does not mention %q: %s", m, stderr)
				}
			}
		})
	}
}
