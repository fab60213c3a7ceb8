package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeCADir: with --ca-dir the CA survives a restart, so clients that
// trust the first ca.crt trust the server again, under its new --hostname
// list; without it the log says the CA is temporary.
func TestServeCADir(t *testing.T) {
	path, _ := pushTestBundle(t)
	caDir := filepath.Join(t.TempDir(), "ca")
	serve := func(t *testing.T, args ...string) (string, string) {
		t.Helper()
		url, stop := startServe(t, append([]string{"serve", path, "--listen", "127.0.0.1:0", "--read-only", "--tls-self-signed"}, args...)...)
		return url, stopOK(t, stop)
	}

	_, log := serve(t, "--ca-dir", caDir, "--hostname", "node1.example")
	if !strings.Contains(log, "ca.crt created") {
		t.Errorf("first start does not say it made the CA:\n%s", log)
	}
	firstCA, err := os.ReadFile(filepath.Join(caDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(caDir, "ca.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("ca.key: %v %v", err, fi)
	}

	caOut := filepath.Join(t.TempDir(), "out.crt")
	url, stop := startServe(t, "serve", path, "--listen", "127.0.0.1:0", "--read-only", "--tls-self-signed",
		"--ca-dir", caDir, "--ca-out", caOut, "--hostname", "node2.example")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(firstCA)
	_, port, _ := strings.Cut(strings.TrimPrefix(url, "https://"), ":")
	conn, err := tls.Dial("tcp", "127.0.0.1:"+port, &tls.Config{RootCAs: pool, ServerName: "node2.example"})
	if err != nil {
		t.Errorf("a client trusting the first ca.crt does not trust the restarted server as node2.example: %v", err)
	} else {
		conn.Close()
	}
	if log := stopOK(t, stop); !strings.Contains(log, "ca.crt reused") {
		t.Errorf("restart does not say it reused the CA:\n%s", log)
	}
	if out, _ := os.ReadFile(caOut); !bytes.Equal(out, firstCA) {
		t.Error("--ca-out is not the kept CA")
	}

	certsDir := t.TempDir()
	if code, out, stderr := runFerry(t, "", "install", path, "--serve", "127.0.0.1:0", "--tls-self-signed", "--ca-dir", caDir,
		"--mirror", "docker.io", "--containerd-config-dir", certsDir, "--no-serve"); code != exitOK || !strings.Contains(stderr, "ca.crt reused") {
		t.Errorf("install with --ca-dir: exit %d\n%s\n%s", code, out, stderr)
	}
	if mirrorCA, err := os.ReadFile(filepath.Join(certsDir, "docker.io", "ferry-ca.crt")); err != nil || !bytes.Equal(mirrorCA, firstCA) {
		t.Errorf("install's mirror config does not name the kept CA: %v", err)
	}

	if _, log := serve(t, "--ca-out", caOut); !strings.Contains(log, "the CA is temporary") {
		t.Errorf("without --ca-dir the log does not say the CA is temporary:\n%s", log)
	}
}

// stopOK stops a serve started by startServe, checks it exited 0 and
// returns its log.
func stopOK(t *testing.T, stop func() (int, string, string)) string {
	t.Helper()
	code, _, stderr := stop()
	if code != exitOK {
		t.Fatalf("serve exited %d:\n%s", code, stderr)
	}
	return stderr
}
