// Package signature checks cosign signatures offline: a signature manifest
// (cosign's tag scheme or an OCI 1.1 referrer) holds simple-signing
// payloads that name the signed manifest's digest, each signed with a key.
// Keys and signatures are handled by sigstore's libraries.
package signature

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	sigsig "github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/ferry-oci/ferry/manifests"
)

// Sentinel errors of the signature package, wrapped with the image or key
// they concern; test them with errors.Is.
var (
	// ErrInvalidKey means a public key file is not a PEM public key that
	// sigstore can verify with.
	ErrInvalidKey = errors.New("invalid public key")
	// ErrUnsigned means an image has no cosign signature at all.
	ErrUnsigned = errors.New("no cosign signature")
	// ErrBadSignature means an image has cosign signatures but none is a
	// valid signature of its digest by the key.
	ErrBadSignature = errors.New("no valid cosign signature by the key")
)

// Key verifies signatures made with one public key.
type Key struct {
	// verifiers are tried in turn: an Ed25519 key gets Ed25519ph (what
	// cosign signs with) and pure Ed25519 (older cosign).
	verifiers []sigsig.Verifier
}

// LoadKeyFile reads a PEM public key (ECDSA, Ed25519 or RSA) from path.
func LoadKeyFile(path string) (*Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	k, err := LoadKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// LoadKey parses a PEM public key (ECDSA, Ed25519 or RSA). Signatures are
// checked as cosign makes them: ECDSA and RSA PKCS#1 v1.5 over SHA-256,
// Ed25519ph (or pure Ed25519).
func LoadKey(pemBytes []byte) (*Key, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	loads := [][]sigsig.LoadOption{{options.WithHash(crypto.SHA256)}}
	if _, ok := pub.(ed25519.PublicKey); ok {
		loads = [][]sigsig.LoadOption{{options.WithED25519ph()}, {}}
	}
	k := &Key{}
	for _, opts := range loads {
		v, err := sigsig.LoadVerifierWithOpts(pub, opts...)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
		}
		k.verifiers = append(k.verifiers, v)
	}
	return k, nil
}

// BlobReader reads a small blob (a manifest or payload), verifying its
// digest and size. bundle.Reader is one.
type BlobReader interface {
	ReadAll(ctx context.Context, desc ocispec.Descriptor) ([]byte, error)
}

// Verify checks that one of sigs (cosign signature manifests) holds a
// simple-signing payload naming subject whose signature verifies with k.
// With no sigs it returns ErrUnsigned; when none verifies, ErrBadSignature
// joined with why each signature failed.
func (k *Key) Verify(ctx context.Context, store BlobReader, subject digest.Digest, sigs []ocispec.Descriptor) error {
	if len(sigs) == 0 {
		return fmt.Errorf("%s: %w", subject, ErrUnsigned)
	}
	var errs []error
	for _, sig := range sigs {
		err := k.verifyManifest(ctx, store, subject, sig)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("signature manifest %s: %w", sig.Digest, err))
	}
	return fmt.Errorf("%s: %w: %w", subject, ErrBadSignature, errors.Join(errs...))
}

// verifyManifest checks every simple-signing layer of one signature
// manifest and returns nil as soon as one verifies.
func (k *Key) verifyManifest(ctx context.Context, store BlobReader, subject digest.Digest, desc ocispec.Descriptor) error {
	b, err := store.ReadAll(ctx, desc)
	if err != nil {
		return err
	}
	m, err := manifests.ParseManifest(b)
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range m.Layers {
		if l.MediaType != manifests.MediaTypeCosignSimpleSigning {
			continue
		}
		err := k.verifyLayer(ctx, store, subject, l)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("payload %s: %w", l.Digest, err))
	}
	if len(errs) == 0 {
		return fmt.Errorf("no %s layer", manifests.MediaTypeCosignSimpleSigning)
	}
	return errors.Join(errs...)
}

// verifyLayer checks one payload: it names subject, and its annotation
// signature verifies with k.
func (k *Key) verifyLayer(ctx context.Context, store BlobReader, subject digest.Digest, layer ocispec.Descriptor) error {
	sigB64, ok := layer.Annotations[manifests.AnnotationCosignSignature]
	if !ok {
		return fmt.Errorf("no %s annotation", manifests.AnnotationCosignSignature)
	}
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return fmt.Errorf("%s annotation is not base64: %v", manifests.AnnotationCosignSignature, err)
	}
	body, err := store.ReadAll(ctx, layer)
	if err != nil {
		return err
	}
	var p payload.SimpleContainerImage
	if err := json.Unmarshal(body, &p); err != nil {
		return fmt.Errorf("not a simple-signing payload: %v", err)
	}
	if named := p.Critical.Image.DockerManifestDigest; named != subject.String() {
		return fmt.Errorf("payload names %q, not %s", named, subject)
	}
	for _, v := range k.verifiers {
		if err = v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(body)); err == nil {
			return nil
		}
	}
	return fmt.Errorf("signature does not verify with the key: %v", err)
}
