package installer_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferry-oci/ferry/internal/testenv"
)

// regProxy is a plain-HTTP reverse proxy on 127.0.0.1 in front of a test
// registry. It counts the bytes of blob uploads and the manifest PUTs it
// forwards, and its hook can answer requests instead of the registry.
type regProxy struct {
	Host string

	blobBytes    atomic.Int64
	manifestPuts atomic.Int64
	hook         atomic.Pointer[proxyHook]
}

// proxyHook answers a request itself and returns true, or returns false to
// let the registry answer.
type proxyHook func(w http.ResponseWriter, r *http.Request) bool

func newRegProxy(t *testing.T, reg *testenv.RegistryServer) *regProxy {
	t.Helper()
	target, err := url.Parse(reg.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := &regProxy{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // the registry's Location headers point back here
		},
		Transport: reg.Transport(),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := p.hook.Load(); h != nil && (*h)(w, r) {
			return
		}
		if strings.Contains(r.URL.Path, "/blobs/uploads/") && r.Body != nil {
			r.Body = &countingBody{ReadCloser: r.Body, n: &p.blobBytes}
		}
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
			p.manifestPuts.Add(1)
		}
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	p.Host = ln.Addr().String()
	return p
}

// setHook installs h (nil removes it).
func (p *regProxy) setHook(h proxyHook) {
	if h == nil {
		p.hook.Store(nil)
		return
	}
	p.hook.Store(&h)
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(b []byte) (int, error) {
	n, err := c.ReadCloser.Read(b)
	c.n.Add(int64(n))
	return n, err
}
