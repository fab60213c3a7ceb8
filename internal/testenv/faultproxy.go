package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
)

// Faults a FaultProxy injects, each as likely as the others.
const (
	Fault500       = "500"
	Fault503       = "503"
	Fault429       = "429"   // with Retry-After: 1
	FaultReset     = "reset" // the connection is reset before the request reaches the registry
	FaultLostReply = "lost"  // the registry handles the request, then the connection is reset
)

var faultKinds = []string{Fault500, Fault503, Fault429, FaultReset, FaultLostReply}

// FaultProxy is a plain-HTTP reverse proxy on 127.0.0.1 in front of a
// registry that fails a share of the requests it gets, of every kind
// (GET /v2/, HEAD, GET, POST, PATCH, PUT), at random from a seed: the
// same seed and the same sequence of requests give the same faults.
type FaultProxy struct {
	// Host is "127.0.0.1:PORT", to push to with plain HTTP.
	Host string

	rate float64
	mu   sync.Mutex
	rng  *rand.Rand
	// requests and faults count by request kind ("GET /v2/", "PATCH"...),
	// faults also by fault.
	requests, faults map[string]int
	byFault          map[string]int
}

// StartFaultProxy starts a FaultProxy in front of reg (plain HTTP or TLS;
// the proxy itself speaks plain HTTP) failing rate (0..1) of the requests,
// drawn from seed. It stops when the test ends.
func StartFaultProxy(t testing.TB, reg *RegistryServer, rate float64, seed uint64) *FaultProxy {
	t.Helper()
	target, err := url.Parse(reg.URL)
	if err != nil {
		t.Fatalf("testenv: fault proxy: %v", err)
	}
	p := &FaultProxy{
		rate: rate, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		requests: map[string]int{}, faults: map[string]int{}, byFault: map[string]int{},
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // the registry's Location headers point back here
		},
		Transport: reg.Transport(),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: fault proxy: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.serve(w, r, rp)
	})}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	p.Host = ln.Addr().String()
	return p
}

// draw counts the request and says which fault it gets ("" for none).
func (p *FaultProxy) draw(kind string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests[kind]++
	if p.rng.Float64() >= p.rate {
		return ""
	}
	fault := faultKinds[p.rng.IntN(len(faultKinds))]
	p.faults[kind]++
	p.byFault[fault]++
	return fault
}

func (p *FaultProxy) serve(w http.ResponseWriter, r *http.Request, rp *httputil.ReverseProxy) {
	kind := r.Method
	if r.URL.Path == "/v2/" {
		kind += " /v2/"
	}
	switch p.draw(kind) {
	case Fault500:
		http.Error(w, "injected fault", http.StatusInternalServerError)
	case Fault503:
		http.Error(w, "injected fault", http.StatusServiceUnavailable)
	case Fault429:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "injected fault", http.StatusTooManyRequests)
	case FaultReset:
		reset(w)
	case FaultLostReply:
		rp.ServeHTTP(discard{header: http.Header{}}, r)
		reset(w)
	default:
		rp.ServeHTTP(w, r)
	}
}

// reset closes the client's connection with a TCP RST.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // the server drops the connection
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0) //nolint:errcheck // best effort: a plain close is a fault too
	}
	conn.Close()
}

// discard is a ResponseWriter that drops the registry's answer.
type discard struct{ header http.Header }

func (d discard) Header() http.Header         { return d.header }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}

// Injected returns the number of faults injected.
func (p *FaultProxy) Injected() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.faults {
		n += c
	}
	return n
}

// Requests returns how many requests of kind ("GET /v2/", "HEAD",
// "PATCH"...) the proxy got, and how many of them it failed.
func (p *FaultProxy) Requests(kind string) (got, failed int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests[kind], p.faults[kind]
}

// Report says how many requests of each kind the proxy got and failed,
// and how many faults of each sort it injected.
func (p *FaultProxy) Report() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var kinds []string
	for k := range p.requests {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var b strings.Builder
	for _, k := range kinds {
		fmt.Fprintf(&b, "%s %d/%d, ", k, p.faults[k], p.requests[k])
	}
	fmt.Fprintf(&b, "faults:")
	for _, f := range faultKinds {
		fmt.Fprintf(&b, " %s=%d", f, p.byFault[f])
	}
	return b.String()
}
