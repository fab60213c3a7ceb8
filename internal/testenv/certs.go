package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCerts is a throw-away certificate authority and a server certificate it
// signed for 127.0.0.1, ::1 and localhost, written as PEM files.
type TestCerts struct {
	// CAFile is the CA certificate (PEM).
	CAFile string
	// CertDir holds the CA as ca.crt; it is usable as skopeo's --cert-dir
	// and as a containerd certs.d host directory's CA.
	CertDir string
	// CertFile and KeyFile are the server certificate and its key (PEM).
	CertFile, KeyFile string
	// CAPool trusts only the CA.
	CAPool *x509.CertPool
}

// NewTestCerts generates a CA and a server certificate for 127.0.0.1, ::1
// and localhost into a t.TempDir().
func NewTestCerts(t testing.TB) *TestCerts {
	t.Helper()
	dir := t.TempDir()
	fail := func(what string, err error) {
		t.Helper()
		t.Fatalf("testenv: test certificates: %s: %v", what, err)
	}

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		fail("CA key", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ferry test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		fail("CA certificate", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		fail("parse CA certificate", err)
	}

	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		fail("server key", err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		fail("server certificate", err)
	}
	srvKeyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		fail("marshal server key", err)
	}

	c := &TestCerts{
		CAFile:   filepath.Join(dir, "ca.pem"),
		CertDir:  filepath.Join(dir, "certs.d"),
		CertFile: filepath.Join(dir, "server.pem"),
		KeyFile:  filepath.Join(dir, "server-key.pem"),
		CAPool:   x509.NewCertPool(),
	}
	c.CAPool.AddCert(caCert)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	if err := os.MkdirAll(c.CertDir, 0o755); err != nil {
		fail("mkdir", err)
	}
	for path, data := range map[string][]byte{
		c.CAFile:                           caPEM,
		filepath.Join(c.CertDir, "ca.crt"): caPEM,
		c.CertFile:                         pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}),
		c.KeyFile:                          pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: srvKeyDER}),
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			fail("write", err)
		}
	}
	return c
}
