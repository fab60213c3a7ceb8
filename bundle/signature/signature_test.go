package signature_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/bundle/signature"
	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
	"github.com/ferry-oci/ferry/manifests"
)

// blobs is a content store of blobs copied from the test registry; it
// checks digests as bundle.Reader does.
type blobs map[digest.Digest][]byte

func (b blobs) ReadAll(_ context.Context, desc ocispec.Descriptor) ([]byte, error) {
	c, ok := b[desc.Digest]
	if !ok {
		return nil, fmt.Errorf("%s: not found", desc.Digest)
	}
	if digest.FromBytes(c) != desc.Digest || int64(len(c)) != desc.Size {
		return nil, fmt.Errorf("%s: digest or size mismatch", desc.Digest)
	}
	return c, nil
}

// add stores content and returns its descriptor.
func (b blobs) add(mediaType string, content []byte) ocispec.Descriptor {
	d := digest.FromBytes(content)
	b[d] = content
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(content))}
}

// copySignature copies the signature manifest ref (tag or digest in repo)
// and its payload layers from reg into b.
func (b blobs) copySignature(t *testing.T, reg *testenv.RegistryServer, ref string) ocispec.Descriptor {
	t.Helper()
	r := testimages.Ref(t, reg, ref)
	opts := testimages.RemoteOptions(reg)
	desc, err := remote.Get(r, opts...)
	if err != nil {
		t.Fatalf("get %s: %v", ref, err)
	}
	m, err := manifests.ParseManifest(desc.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range m.Layers {
		layer, err := remote.Layer(r.Context().Digest(l.Digest.String()), opts...)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := layer.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		content, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		b[l.Digest] = content
	}
	return b.add(string(desc.MediaType), desc.Manifest)
}

// referrerSignatures copies the cosign signature referrers of repo@subject
// (found through the referrers tag schema) into b.
func (b blobs) referrerSignatures(t *testing.T, reg *testenv.RegistryServer, repo string, subject digest.Digest) []ocispec.Descriptor {
	t.Helper()
	r := testimages.Ref(t, reg, repo+"@"+subject.String())
	idx, err := remote.Referrers(r.(name.Digest), testimages.RemoteOptions(reg)...)
	if err != nil {
		t.Fatalf("referrers of %s: %v", r, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var out []ocispec.Descriptor
	for _, m := range im.Manifests {
		if m.ArtifactType == manifests.ArtifactTypeCosignSignature {
			out = append(out, b.copySignature(t, reg, repo+"@"+m.Digest.String()))
		}
	}
	return out
}

func writeKey(t *testing.T, k *testimages.CosignKey) *signature.Key {
	t.Helper()
	key, err := signature.LoadKeyFile(k.Pub)
	if err != nil {
		t.Fatalf("load %s: %v", k.Pub, err)
	}
	return key
}

func pkcs8PEM(t *testing.T, priv any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// TestVerifyCosignSignatures checks signatures made by the real cosign CLI
// with ECDSA P-256, RSA and Ed25519 keys, in cosign's tag scheme and as
// OCI 1.1 referrers, and refuses the same signatures for another key,
// another image, or with a damaged annotation.
func TestVerifyCosignSignatures(t *testing.T) {
	ctx := context.Background()
	reg := testenv.Registry(t)
	img := testimages.Image(t, "linux/amd64", testimages.WithRandomLayers(1, 256))
	d := digest.Digest(testimages.Push(t, reg, "library/app:1", img).String())
	other := digest.Digest(testimages.Push(t, reg, "library/app:2", testimages.Image(t, "linux/arm64")).String())

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]*testimages.CosignKey{
		"ecdsa-p256": testimages.NewCosignKey(t),
		"rsa":        testimages.ImportCosignKey(t, pkcs8PEM(t, rsaKey)),
		"ed25519":    testimages.ImportCosignKey(t, pkcs8PEM(t, edKey)),
		"ecdsa-imp":  testimages.ImportCosignKey(t, pkcs8PEM(t, ecKey)),
	}
	store := blobs{}
	for name, k := range keys {
		k.Sign(t, reg, "library/app", d, testimages.Referrer)
		sigs := store.referrerSignatures(t, reg, "library/app", d)
		if err := writeKey(t, k).Verify(ctx, store, d, sigs); err != nil {
			t.Errorf("%s: referrer signature: %v", name, err)
		}
	}
	ec := keys["ecdsa-p256"]
	ec.Sign(t, reg, "library/app", d, testimages.TagScheme)
	tagSig := store.copySignature(t, reg, "library/app:"+manifests.CosignTag(d, manifests.CosignSignatureSuffix))
	if err := writeKey(t, ec).Verify(ctx, store, d, []ocispec.Descriptor{tagSig}); err != nil {
		t.Errorf("tag-scheme signature: %v", err)
	}

	stranger := writeKey(t, testimages.NewCosignKey(t))
	if err := stranger.Verify(ctx, store, d, []ocispec.Descriptor{tagSig}); !errors.Is(err, signature.ErrBadSignature) || !strings.Contains(err.Error(), "does not verify") {
		t.Errorf("another key: %v, want ErrBadSignature (does not verify)", err)
	}
	if err := writeKey(t, ec).Verify(ctx, store, other, []ocispec.Descriptor{tagSig}); !errors.Is(err, signature.ErrBadSignature) || !strings.Contains(err.Error(), "payload names") {
		t.Errorf("payload for another image: %v, want ErrBadSignature (payload names)", err)
	}
	truncated := store.damage(t, tagSig, func(s string) string { return s[:len(s)/2] })
	if err := writeKey(t, ec).Verify(ctx, store, d, []ocispec.Descriptor{truncated}); !errors.Is(err, signature.ErrBadSignature) || !strings.Contains(err.Error(), truncated.Digest.String()) {
		t.Errorf("truncated annotation: %v, want ErrBadSignature naming %s", err, truncated.Digest)
	}
	if err := writeKey(t, ec).Verify(ctx, store, d, nil); !errors.Is(err, signature.ErrUnsigned) || !strings.Contains(err.Error(), d.String()) {
		t.Errorf("no signatures: %v, want ErrUnsigned naming %s", err, d)
	}
}

// damage rewrites the signature annotation of every payload layer of the
// signature manifest sig and returns the new manifest's descriptor.
func (b blobs) damage(t *testing.T, sig ocispec.Descriptor, edit func(string) string) ocispec.Descriptor {
	t.Helper()
	m, err := manifests.ParseManifest(b[sig.Digest])
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.Layers {
		m.Layers[i].Annotations[manifests.AnnotationCosignSignature] = edit(m.Layers[i].Annotations[manifests.AnnotationCosignSignature])
	}
	content, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b.add(sig.MediaType, content)
}

// TestLoadKeyRefusesNonKeys names the file of a key that is not a PEM
// public key.
func TestLoadKeyRefusesNonKeys(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"empty.pub":   "",
		"private.pem": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
		"garbage.pub": "not a key",
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := signature.LoadKeyFile(p); !errors.Is(err, signature.ErrInvalidKey) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v, want ErrInvalidKey naming the file", name, err)
		}
	}
	if _, err := signature.LoadKeyFile(filepath.Join(dir, "missing.pub")); !errors.Is(err, signature.ErrInvalidKey) {
		t.Errorf("missing file: %v, want ErrInvalidKey", err)
	}
}
