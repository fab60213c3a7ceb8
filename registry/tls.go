package registry

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"
)

// LoadTLS returns a server TLS configuration with the PEM certificate (and
// chain) in certFile and the key in keyFile.
func LoadTLS(certFile, keyFile string) (*tls.Config, error) {
	for _, f := range []string{certFile, keyFile} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("%w: TLS: %w", ErrInvalidOptions, err)
		}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: TLS certificate %s and key %s: %w", ErrInvalidOptions, certFile, keyFile, err)
	}
	return serverTLS(cert), nil
}

// SelfSignedTLS makes a certificate authority and a server certificate it
// signs for hosts (DNS names and IP addresses), both valid for validity
// (from an hour ago, for clocks that lag). It returns the server's TLS
// configuration and the CA certificate (PEM) that clients must trust. The
// CA's key is not kept: each call makes a new CA (see LoadOrCreateCA).
func SelfSignedTLS(hosts []string, validity time.Duration) (*tls.Config, []byte, error) {
	ca, err := NewCA(validity)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := ca.ServerTLS(hosts, validity)
	if err != nil {
		return nil, nil, err
	}
	return cfg, ca.CertPEM(), nil
}

// CA is a certificate authority that issues server certificates.
type CA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// NewCA makes a certificate authority valid for validity, kept in memory
// only.
func NewCA(validity time.Duration) (*CA, error) {
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "ferry serve CA"},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, key, err := issue(tmpl, nil, nil, time.Now(), validity)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("self-signed CA: %w", err)
	}
	return &CA{cert: cert, key: key}, nil
}

// CertPEM is the CA certificate in PEM, for clients to trust.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
}

// ServerTLS issues a server certificate for hosts (DNS names and IP
// addresses), valid for validity but not past the CA's own end, and
// returns the server's TLS configuration (the chain includes the CA).
func (ca *CA) ServerTLS(hosts []string, validity time.Duration) (*tls.Config, error) {
	if len(hosts) == 0 {
		return nil, fmt.Errorf("%w: a self-signed certificate needs at least one host name", ErrInvalidOptions)
	}
	now := time.Now()
	if left := ca.cert.NotAfter.Sub(now); left < validity {
		validity = left
	}
	leaf := &x509.Certificate{
		Subject:     pkix.Name{CommonName: hosts[0]},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			leaf.IPAddresses = append(leaf.IPAddresses, ip)
		} else {
			leaf.DNSNames = append(leaf.DNSNames, h)
		}
	}
	leafDER, leafKey, err := issue(leaf, ca.cert, ca.key, now, validity)
	if err != nil {
		return nil, err
	}
	return serverTLS(tls.Certificate{Certificate: [][]byte{leafDER, ca.cert.Raw}, PrivateKey: leafKey}), nil
}

// issue makes a key and a certificate from tmpl, signed by parent (or
// self-signed when parent is nil).
func issue(tmpl, parent *x509.Certificate, parentKey crypto.Signer, now time.Time, validity time.Duration) ([]byte, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("certificate serial: %w", err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(validity)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate %s: %w", tmpl.Subject.CommonName, err)
	}
	return der, key, nil
}

func serverTLS(cert tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}
