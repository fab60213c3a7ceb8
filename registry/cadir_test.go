package registry

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// verifyServer checks that cfg's certificate is valid for host under the
// CA certificate caPEM.
func verifyServer(t *testing.T, cfgCert [][]byte, caPEM []byte, host string) {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("CA PEM does not parse")
	}
	leaf, err := x509.ParseCertificate(cfgCert[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: host}); err != nil {
		t.Errorf("server certificate for %s: %v", host, err)
	}
}

// writeCA writes a CA certificate and PKCS #8 key into dir.
func writeCA(t *testing.T, dir string, cert *x509.Certificate, key any, keyMode os.FileMode) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, CACertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, CAKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), keyMode); err != nil {
		t.Fatal(err)
	}
}

// TestLoadOrCreateCA: the first start makes the CA (key 0600, dir 0700),
// the next one reuses it and issues a server certificate for a new host
// list that clients holding the first ca.crt trust.
func TestLoadOrCreateCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	first, created, err := LoadOrCreateCA(dir, 24*time.Hour)
	if err != nil || !created {
		t.Fatalf("first start: created %v, %v", created, err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, CAKeyFile): 0o600, filepath.Join(dir, CACertFile): 0o644} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, mode %v, want %v", path, err, fi.Mode().Perm(), want)
		}
	}
	onDisk, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil || !bytes.Equal(onDisk, first.CertPEM()) {
		t.Fatalf("ca.crt is not the CA: %v", err)
	}
	again, created, err := LoadOrCreateCA(dir, 24*time.Hour)
	if err != nil || created || !bytes.Equal(again.CertPEM(), first.CertPEM()) {
		t.Fatalf("restart: created %v, same CA %v, %v", created, bytes.Equal(again.CertPEM(), first.CertPEM()), err)
	}
	cfg, err := again.ServerTLS([]string{"node2.example", "10.1.2.3"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	verifyServer(t, cfg.Certificates[0].Certificate, onDisk, "node2.example")
	verifyServer(t, cfg.Certificates[0].Certificate, onDisk, "10.1.2.3")
}

// TestLoadOwnCA: an RSA CA of the user's own serves as well.
func TestLoadOwnCA(t *testing.T) {
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "site CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	writeCA(t, dir, cert, key, 0o600)
	ca, created, err := LoadOrCreateCA(dir, time.Hour)
	if err != nil || created {
		t.Fatalf("created %v, %v", created, err)
	}
	cfg, err := ca.ServerTLS([]string{"registry.site"}, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	verifyServer(t, cfg.Certificates[0].Certificate, ca.CertPEM(), "registry.site")
	leaf, _ := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
	if leaf.NotAfter.After(cert.NotAfter) {
		t.Errorf("server certificate outlives its CA: %v > %v", leaf.NotAfter, cert.NotAfter)
	}
}

// TestLoadOrCreateCAErrors: a CA directory ferry cannot use is refused,
// never replaced, with what to do.
func TestLoadOrCreateCAErrors(t *testing.T) {
	ca, err := NewCA(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCA(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := NewCA(-2 * time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		setup   func(dir string)
		mention string
	}{
		{"certificate without key", func(dir string) {
			os.WriteFile(filepath.Join(dir, CACertFile), ca.CertPEM(), 0o644) //nolint:errcheck
		}, "needs both ca.crt and ca.key"},
		{"key without certificate", func(dir string) {
			writeCA(t, dir, ca.cert, ca.key, 0o600)
			os.Remove(filepath.Join(dir, CACertFile)) //nolint:errcheck
		}, "needs both ca.crt and ca.key"},
		{"key readable by others", func(dir string) { writeCA(t, dir, ca.cert, ca.key, 0o644) }, "chmod 600"},
		{"key of another CA", func(dir string) { writeCA(t, dir, ca.cert, other.key, 0o600) }, "does not match"},
		{"expired", func(dir string) { writeCA(t, dir, expired.cert, expired.key, 0o600) }, "expired"},
		{"not PEM", func(dir string) {
			writeCA(t, dir, ca.cert, ca.key, 0o600)
			os.WriteFile(filepath.Join(dir, CACertFile), []byte("hello"), 0o644) //nolint:errcheck
		}, "no PEM CERTIFICATE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(dir)
			before, _ := os.ReadFile(filepath.Join(dir, CAKeyFile))
			_, _, err := LoadOrCreateCA(dir, time.Hour)
			if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("got %v, want ErrInvalidOptions mentioning %q", err, tc.mention)
			}
			if after, _ := os.ReadFile(filepath.Join(dir, CAKeyFile)); !bytes.Equal(before, after) {
				t.Error("the key was replaced")
			}
		})
	}
}
