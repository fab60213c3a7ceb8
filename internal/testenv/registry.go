package testenv

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// DockerRegistryBinary is where Debian's docker-registry package installs
// distribution 2.8's registry.
const DockerRegistryBinary = "/usr/bin/docker-registry"

// registryStartTimeout bounds how long Start waits for the listening line and
// for GET /v2/ to answer.
const registryStartTimeout = 15 * time.Second

// listenRE matches distribution 2.8's log line for the bound address, e.g.
// `level=info msg="listening on 127.0.0.1:35141"` (", tls" follows with TLS).
var listenRE = regexp.MustCompile(`listening on 127\.0\.0\.1:([0-9]+)`)

// RegistryOption configures Registry.
type RegistryOption func(*registryOptions)

type registryOptions struct {
	tls        bool
	user, pass string
}

// WithTLS serves the registry over HTTPS with a certificate from a fresh
// test CA (see RegistryServer.CAFile, CertDir and CAPool).
func WithTLS() RegistryOption {
	return func(o *registryOptions) { o.tls = true }
}

// WithHtpasswd requires HTTP basic authentication with user and pass
// (a bcrypt htpasswd file).
func WithHtpasswd(user, pass string) RegistryOption {
	return func(o *registryOptions) { o.user, o.pass = user, pass }
}

// RegistryServer is a running docker-registry (distribution 2.8) process.
//
// Host and URL change when the server is restarted with Start: the new process
// binds a new port chosen by the kernel. Dir, the storage root, stays the same,
// so content survives a Stop/Start cycle.
type RegistryServer struct {
	// Host is "127.0.0.1:PORT".
	Host string
	// URL is "http://Host" or "https://Host" (WithTLS).
	URL string
	// Dir is the filesystem storage root.
	Dir string
	// User and Password are the basic-auth credentials (WithHtpasswd), or empty.
	User, Password string
	// CAFile is the PEM CA certificate that signed the server certificate (WithTLS).
	CAFile string
	// CertDir is a directory holding the CA as ca.crt, usable as skopeo --cert-dir (WithTLS).
	CertDir string
	// CAPool trusts the test CA (WithTLS), or is nil.
	CAPool *x509.CertPool

	t          testing.TB
	dir        string
	configPath string
	starts     int

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
}

// Registry starts /usr/bin/docker-registry on 127.0.0.1 (port chosen by the
// registry) with filesystem storage in a temp dir and deletes enabled. It is
// killed when the test ends; on failure its log is printed.
func Registry(t testing.TB, opts ...RegistryOption) *RegistryServer {
	t.Helper()
	var o registryOptions
	for _, opt := range opts {
		opt(&o)
	}
	requireFile(t, DockerRegistryBinary)

	dir := t.TempDir()
	r := &RegistryServer{
		t:          t,
		dir:        dir,
		Dir:        filepath.Join(dir, "storage"),
		configPath: filepath.Join(dir, "config.yml"),
		User:       o.user,
		Password:   o.pass,
	}
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		t.Fatalf("testenv: registry: %v", err)
	}

	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	// JSON is YAML, and distribution reads its config with a YAML parser.
	cfg := map[string]any{
		"version": "0.1",
		"log":     map[string]any{"level": "info", "formatter": "text"},
		"storage": map[string]any{
			"filesystem":  map[string]any{"rootdirectory": r.Dir},
			"delete":      map[string]any{"enabled": true},
			"maintenance": map[string]any{"uploadpurging": map[string]any{"enabled": false}},
		},
	}
	httpCfg := map[string]any{
		"addr":   "127.0.0.1:0",
		"secret": hex.EncodeToString(secret),
	}
	scheme := "http"
	if o.tls {
		c := NewTestCerts(t)
		r.CAFile, r.CertDir, r.CAPool = c.CAFile, c.CertDir, c.CAPool
		httpCfg["tls"] = map[string]any{"certificate": c.CertFile, "key": c.KeyFile}
		scheme = "https"
	}
	cfg["http"] = httpCfg
	if o.user != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(o.pass), bcrypt.MinCost) // test-only: fast checks on every request
		if err != nil {
			t.Fatalf("testenv: registry: htpasswd: %v", err)
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(o.user+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatalf("testenv: registry: %v", err)
		}
		cfg["auth"] = map[string]any{"htpasswd": map[string]any{"realm": "ferry-test", "path": htpasswd}}
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatalf("testenv: registry: config: %v", err)
	}
	if err := os.WriteFile(r.configPath, data, 0o600); err != nil {
		t.Fatalf("testenv: registry: %v", err)
	}
	r.URL = scheme + "://" // completed by Start

	t.Cleanup(func() {
		r.Stop()
		if t.Failed() {
			t.Logf("docker-registry log (%s), last 50 lines:\n%s", r.logPath, tailFile(r.logPath, 50))
		}
	})
	r.Start()
	return r
}

// Start starts the registry again on the same storage and config after Stop.
// The new process listens on a new port: Host and URL are updated. Start on a
// running server does nothing. It must be called from the test goroutine.
func (r *RegistryServer) Start() {
	t := r.t
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		return
	}
	r.starts++
	r.logPath = filepath.Join(r.dir, fmt.Sprintf("registry-%d.log", r.starts))
	logf, err := os.Create(r.logPath)
	if err != nil {
		t.Fatalf("testenv: registry: %v", err)
	}
	defer logf.Close()

	cmd := exec.Command(DockerRegistryBinary, "serve", r.configPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = r.dir
	// If the test binary dies (go test -timeout), do not leave a server behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: registry: start %s: %v", DockerRegistryBinary, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	r.cmd, r.done = cmd, done

	fail := func(format string, args ...any) {
		t.Helper()
		r.stopLocked()
		t.Fatalf("testenv: registry: "+format+"\nlog %s:\n%s", append(args, r.logPath, tailFile(r.logPath, 50))...)
	}

	var port string
	exited := false
	poll(registryStartTimeout, 20*time.Millisecond, func() bool {
		select {
		case <-done:
			exited = true
			return true
		default:
		}
		b, _ := os.ReadFile(r.logPath)
		if m := listenRE.FindSubmatch(b); m != nil {
			port = string(m[1])
			return true
		}
		return false
	})
	switch {
	case exited:
		fail("docker-registry exited during start (%v)", cmd.ProcessState)
	case port == "":
		fail("no %q line in the log after %v", "listening on 127.0.0.1:PORT", registryStartTimeout)
	}
	r.Host = "127.0.0.1:" + port
	scheme := "http"
	if r.CAPool != nil {
		scheme = "https"
	}
	r.URL = scheme + "://" + r.Host

	if err := r.waitServing(); err != nil {
		fail("%v", err)
	}
}

// waitServing polls GET /v2/ until the registry answers it.
func (r *RegistryServer) waitServing() error {
	client := &http.Client{Transport: r.Transport(), Timeout: 2 * time.Second}
	var lastErr error
	ok := poll(registryStartTimeout, 20*time.Millisecond, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.URL+"/v2/", nil)
		resp, err := client.Do(req)
		if err != nil {
			lastErr = err
			return false
		}
		resp.Body.Close()
		// 200, or 401 when authentication is on: either way it serves.
		return resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized
	})
	if !ok {
		return fmt.Errorf("GET %s/v2/ did not answer within %v: %v", r.URL, registryStartTimeout, lastErr)
	}
	return nil
}

// Stop kills the registry process (SIGKILL, as a crash or power loss would)
// and waits for it to exit. It is idempotent; Start brings it back.
func (r *RegistryServer) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopLocked()
}

func (r *RegistryServer) stopLocked() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.done
	r.cmd, r.done = nil, nil
}

// Running reports whether the registry process is running.
func (r *RegistryServer) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return false
	}
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// LogPath is the log file of the current (or last) registry process.
func (r *RegistryServer) LogPath() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.logPath
}

// Transport returns an HTTP transport that trusts the test CA (WithTLS). It
// does not add credentials.
func (r *RegistryServer) Transport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // never send test traffic through a proxy
	if r.CAPool != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: r.CAPool, MinVersion: tls.VersionTLS12}
	}
	return tr
}

// Ref returns Host + "/" + path, e.g. r.Ref("library/busybox:1") is
// "127.0.0.1:PORT/library/busybox:1".
func (r *RegistryServer) Ref(path string) string {
	return r.Host + "/" + path
}

// SkopeoFlags returns the skopeo flags that reach this registry: TLS
// verification off for plain HTTP, --cert-dir for TLS, and --creds when
// authentication is on. prefix is "" for inspect-like commands and "src-" or
// "dest-" for copy, e.g. SkopeoFlags("dest-") gives --dest-tls-verify=false.
func (r *RegistryServer) SkopeoFlags(prefix string) []string {
	var f []string
	if r.CAPool == nil {
		f = append(f, "--"+prefix+"tls-verify=false")
	} else {
		f = append(f, "--"+prefix+"cert-dir", r.CertDir)
	}
	if r.User != "" {
		f = append(f, "--"+prefix+"creds", r.User+":"+r.Password)
	}
	return f
}
