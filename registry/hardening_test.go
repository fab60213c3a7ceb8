package registry

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"
)

// TestDefaultIsReadOnly pushes with go-containerregistry into a registry
// made with the zero Options: refused, and the bundle's tag unchanged.
func TestDefaultIsReadOnly(t *testing.T) {
	f := testBundle(t)
	s := serveBundle(t, f.path, Options{})
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(s.host+"/library/multi:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	err = remote.Write(ref, img)
	if err == nil || !strings.Contains(err.Error(), "UNSUPPORTED") {
		t.Errorf("push into the default registry: %v, want UNSUPPORTED", err)
	}
	resp, _ := call(t, httpClient(nil), http.MethodHead, s.url+"/v2/library/multi/manifests/1", http.Header{"Accept": {acceptAll}}, nil)
	if got := resp.Header.Get("Docker-Content-Digest"); got != f.digestOf(t, refMulti).String() {
		t.Errorf("library/multi:1 is %s after the push, want %s", got, f.digestOf(t, refMulti))
	}
}

// TestWritableNeedsAuthOffLoopback refuses a writable registry without
// htpasswd on an address other than loopback.
func TestWritableNeedsAuthOffLoopback(t *testing.T) {
	wide := &net.TCPAddr{IP: net.IPv4zero, Port: 5000}
	for _, tc := range []struct {
		opts Options
		addr net.Addr
		ok   bool
	}{
		{Options{Writable: true}, wide, false},
		{Options{Writable: true}, &net.TCPAddr{IP: net.ParseIP("10.0.0.5"), Port: 5000}, false},
		{Options{Writable: true, Htpasswd: "users"}, wide, true},
		{Options{Writable: true}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}, true},
		{Options{}, wide, true},
	} {
		err := tc.opts.CheckAddress(tc.addr)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidOptions)) {
			t.Errorf("CheckAddress(%+v, %s) = %v, want ok=%v", tc.opts, tc.addr, err, tc.ok)
		}
	}
}

// startUpload begins an upload in repo and returns its location.
func startUpload(t testing.TB, c *http.Client, base, repo string) string {
	t.Helper()
	resp, body := call(t, c, http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST upload: %s %s", resp.Status, body)
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	return loc.String()
}

// TestUploadLimits caps an upload (one body, or several PATCHes together)
// at MaxUpload and stops uploads short of MinFreeSpace; no answer names a
// server path.
func TestUploadLimits(t *testing.T) {
	f := testBundle(t)
	dataDir := t.TempDir()
	s := serveBundle(t, f.path, Options{DataDir: dataDir, Writable: true, MaxUpload: 1 << 20})
	c := httpClient(nil)
	octets := http.Header{"Content-Type": {"application/octet-stream"}}
	check := func(what string, resp *http.Response, body []byte, status int) {
		t.Helper()
		if resp.StatusCode != status || bytes.Contains(body, []byte(dataDir)) {
			t.Errorf("%s: %s %s, want %d without the data dir", what, resp.Status, body, status)
		}
	}

	resp, body := call(t, c, http.MethodPatch, startUpload(t, c, s.url, "big/one"), octets, make([]byte, 2<<20))
	check("a 2 MiB PATCH", resp, body, http.StatusRequestEntityTooLarge)

	// Without a Content-Length, the cap holds as the bytes arrive.
	req, _ := http.NewRequest(http.MethodPatch, startUpload(t, c, s.url, "big/chunked"), io.MultiReader(bytes.NewReader(make([]byte, 2<<20))))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.ContentLength = -1
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	check("a chunked 2 MiB PATCH", resp, body, http.StatusRequestEntityTooLarge)

	// Several PATCHes add up.
	loc := startUpload(t, c, s.url, "big/several")
	resp, body = call(t, c, http.MethodPatch, loc, octets, make([]byte, 700<<10))
	check("the first 700 KiB", resp, body, http.StatusAccepted)
	next, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	resp, body = call(t, c, http.MethodPatch, next.String(), octets, make([]byte, 700<<10))
	check("the next 700 KiB", resp, body, http.StatusRequestEntityTooLarge)

	// A small push still works.
	pushBlob(t, c, s.url, "small/one", "application/octet-stream", []byte("small"))

	full := serveBundle(t, f.path, Options{DataDir: t.TempDir(), Writable: true, MinFreeSpace: 1 << 62})
	resp, body = call(t, c, http.MethodPost, full.url+"/v2/any/thing/blobs/uploads/", nil, nil)
	check("an upload on a full disk", resp, body, http.StatusInsufficientStorage)
}

// TestServerErrorsHidePaths breaks the data directory under an upload:
// distribution's 5xx answer would name the file; the client's does not,
// and the log keeps it.
func TestServerErrorsHidePaths(t *testing.T) {
	f := testBundle(t)
	dataDir := t.TempDir()
	s := serveBundle(t, f.path, Options{DataDir: dataDir, Writable: true})
	c := httpClient(nil)
	loc := startUpload(t, c, s.url, "broken/repo")
	uploads := filepath.Join(dataDir, "docker/registry/v2/repositories/broken/repo/_uploads")
	if err := os.RemoveAll(uploads); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(uploads, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	resp, body := call(t, c, http.MethodPatch, loc, http.Header{"Content-Type": {"application/octet-stream"}}, []byte("data"))
	if resp.StatusCode < 500 || bytes.Contains(body, []byte(dataDir)) || errorCode(body) != "UNKNOWN" {
		t.Errorf("PATCH into a broken data dir: %s %s, want a 5xx UNKNOWN without the data dir", resp.Status, body)
	}
	if len(s.log.grep("error", "PATCH", dataDir)) == 0 {
		t.Errorf("the log does not keep the hidden error")
	}
}

// TestSlowBodies sends 20 upload bodies a byte at a time: the server
// closes them all, while a normal push goes on.
func TestSlowBodies(t *testing.T) {
	f := testBundle(t)
	s := serveBundle(t, f.path, Options{DataDir: t.TempDir(), Writable: true, BodyTimeout: 300 * time.Millisecond})
	c := httpClient(nil)
	const slow = 20
	closed := make(chan time.Duration, slow)
	for i := 0; i < slow; i++ {
		loc := startUpload(t, c, s.url, fmt.Sprintf("slow/n%d", i))
		go func() { closed <- slowPatch(t, s.host, loc) }()
	}
	pushBlob(t, c, s.url, "fast/one", "application/octet-stream", bytes.Repeat([]byte("fast"), 1<<16))
	for i := 0; i < slow; i++ {
		select {
		case d := <-closed:
			if d > 5*time.Second {
				t.Errorf("a slow body stayed open %v", d)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%d slow bodies still open after 20s", slow-i)
		}
	}
}

// slowPatch sends a PATCH of 1 MiB announced, one byte every 50 ms, and
// returns how long the server kept the connection.
func slowPatch(t *testing.T, host, loc string) time.Duration {
	start := time.Now()
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Error(err)
		return 0
	}
	defer conn.Close()
	path := strings.TrimPrefix(loc, "http://"+host)
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: 1048576\r\n\r\n", path, host)
	go func() {
		for i := 0; i < 1<<20; i++ {
			if _, err := conn.Write([]byte{'x'}); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, _ = io.Copy(io.Discard, bufio.NewReader(conn))
	return time.Since(start)
}

// TestUploadExpiry purges an upload nobody finishes.
func TestUploadExpiry(t *testing.T) {
	f := testBundle(t)
	dataDir := t.TempDir()
	s := serveBundle(t, f.path, Options{DataDir: dataDir, Writable: true, UploadExpiry: 200 * time.Millisecond})
	c := httpClient(nil)
	loc := startUpload(t, c, s.url, "left/behind")
	uploads := filepath.Join(dataDir, "docker/registry/v2/repositories/left/behind/_uploads")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		entries, err := os.ReadDir(uploads)
		if err == nil && len(entries) == 0 || errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the unfinished upload is still in %s after 30s: %v %v", uploads, entries, err)
		}
	}
	resp, body := call(t, c, http.MethodGet, loc, nil, nil)
	if resp.StatusCode != http.StatusNotFound || errorCode(body) != "BLOB_UPLOAD_UNKNOWN" {
		t.Errorf("GET the purged upload: %s %s, want 404 BLOB_UPLOAD_UNKNOWN", resp.Status, body)
	}
}

// TestAuthUnderAttack has 200 connections send wrong passwords (bcrypt at
// its default cost), one every 100 ms each, while a valid client pulls a
// manifest 20 times: its median stays under 500 ms. Wrong passwords that
// repeat are checked once; new ones every time, which a client that was
// already let in never waits for.
func TestAuthUnderAttack(t *testing.T) {
	f := testBundle(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("right-pass"), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(file, []byte("ferry:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		password func(conn, n int) string
		warm     bool // the valid client was let in before the attack
	}{
		{"the same wrong password", func(int, int) string { return "wrong" }, false},
		{"new wrong passwords", func(conn, n int) string { return fmt.Sprintf("wrong-%d-%d", conn, n) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := serveBundle(t, f.path, Options{Htpasswd: file})
			valid := func() time.Duration {
				t.Helper()
				req, _ := http.NewRequest(http.MethodGet, s.url+"/v2/library/multi/manifests/1", nil)
				req.Header.Set("Accept", acceptAll)
				req.SetBasicAuth("ferry", "right-pass")
				start := time.Now()
				resp, body := do(t, httpClient(nil), req)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("valid client: %s %s", resp.Status, body)
				}
				return time.Since(start)
			}
			if tc.warm {
				valid()
			}
			stop := attack(s.url, 200, tc.password)
			defer stop()
			var took []time.Duration
			for i := 0; i < 20; i++ {
				took = append(took, valid())
			}
			sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
			if median := took[len(took)/2]; median > 500*time.Millisecond {
				t.Errorf("valid client's median under attack: %v, want under 500ms (all: %v)", median, took)
			}
			t.Logf("valid client under attack: median %v, fastest %v, slowest %v; %d attempts refused",
				took[len(took)/2], took[0], took[len(took)-1], len(s.log.grep("GET /v2/ 401")))
		})
	}
}

// attack has conns connections send GET /v2/ with a wrong password, one
// every 100 ms each, until the returned stop is called.
func attack(base string, conns int, password func(conn, n int) string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := httpClient(nil)
			for n := 0; ctx.Err() == nil; n++ {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v2/", nil)
				req.SetBasicAuth("ferry", password(i, n))
				if resp, err := c.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond) // the attack is on
	return func() { cancel(); wg.Wait() }
}

// do makes one request and returns the response with its whole body.
func do(t testing.TB, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}
