package registry

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ferry-oci/ferry/internal/atomicfile"
)

// The files of a CA directory (LoadOrCreateCA).
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
)

// LoadOrCreateCA keeps a certificate authority in dir, so that clients
// trust the server across restarts: dir/ca.crt (PEM) and dir/ca.key (PKCS
// #8 PEM, mode 0600) are loaded when both are there, and made (valid for
// validity, in a dir of mode 0700) when neither is. created says which.
// Any CA will do, one of ferry's or your own, if its key (ECDSA, RSA or
// Ed25519) is readable by its owner only and matches the certificate.
func LoadOrCreateCA(dir string, validity time.Duration) (ca *CA, created bool, err error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	_, certErr := os.Stat(certPath)
	_, keyErr := os.Stat(keyPath)
	switch {
	case certErr == nil && keyErr == nil:
		ca, err = loadCA(certPath, keyPath)
		return ca, false, err
	case !errors.Is(certErr, fs.ErrNotExist) || !errors.Is(keyErr, fs.ErrNotExist):
		return nil, false, fmt.Errorf("%w: CA directory %s needs both %s and %s (or neither, to make a new CA): %w",
			ErrInvalidOptions, dir, CACertFile, CAKeyFile, errors.Join(certErr, keyErr))
	}
	if ca, err = NewCA(validity); err != nil {
		return nil, false, err
	}
	key, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return nil, false, fmt.Errorf("CA key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("CA directory: %w", err)
	}
	// The key first: a crash in between leaves a key without a
	// certificate, which the next start refuses rather than replaces.
	if err := atomicfile.Write(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600); err != nil {
		return nil, false, fmt.Errorf("CA key: %w", err)
	}
	if err := atomicfile.Write(certPath, ca.CertPEM(), 0o644); err != nil {
		return nil, false, fmt.Errorf("CA certificate: %w", err)
	}
	return ca, true, nil
}

// loadCA reads a CA certificate and its key and checks that they fit.
func loadCA(certPath, keyPath string) (*CA, error) {
	fi, err := os.Stat(keyPath)
	if err != nil {
		return nil, fmt.Errorf("%w: CA key: %w", ErrInvalidOptions, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: CA key %s has mode %#o: others may read it; chmod 600 %s",
			ErrInvalidOptions, keyPath, fi.Mode().Perm(), keyPath)
	}
	cert, err := parsePEM(certPath, "CERTIFICATE", x509.ParseCertificate)
	if err != nil {
		return nil, err
	}
	key, err := parsePEM(keyPath, "PRIVATE KEY", x509.ParsePKCS8PrivateKey)
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: CA key %s cannot sign", ErrInvalidOptions, keyPath)
	}
	if pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%w: CA key %s does not match the certificate %s", ErrInvalidOptions, keyPath, certPath)
	}
	switch {
	case !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0:
		return nil, fmt.Errorf("%w: %s is not a CA certificate (it cannot sign certificates)", ErrInvalidOptions, certPath)
	case time.Now().After(cert.NotAfter):
		return nil, fmt.Errorf("%w: CA %s expired on %s: move %s and %s away to make a new CA (and give clients the new %s)",
			ErrInvalidOptions, certPath, cert.NotAfter.Format(time.DateOnly), CACertFile, CAKeyFile, CACertFile)
	}
	return &CA{cert: cert, key: signer}, nil
}

// parsePEM reads the first PEM block of file, of type typ, and parses it.
func parsePEM[T any](file, typ string, parse func([]byte) (T, error)) (T, error) {
	var zero T
	data, err := os.ReadFile(file)
	if err != nil {
		return zero, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != typ {
		return zero, fmt.Errorf("%w: %s holds no PEM %s", ErrInvalidOptions, file, typ)
	}
	v, err := parse(block.Bytes)
	if err != nil {
		return zero, fmt.Errorf("%w: %s: %w", ErrInvalidOptions, file, err)
	}
	return v, nil
}
