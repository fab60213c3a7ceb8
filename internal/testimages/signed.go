package testimages

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/ferry-oci/ferry/internal/testenv"
)

// Media and artifact types of the artifacts the trust fixtures make.
const (
	ArtifactTypeSPDX     = "application/spdx+json"
	ArtifactTypeCosign   = "application/vnd.dev.cosign.artifact.sig.v1+json"
	MediaTypeHelmConfig  = "application/vnd.cncf.helm.config.v1+json"
	MediaTypeHelmChart   = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
	ArtifactTypeWasm     = "application/vnd.module.wasm.content.layer.v1+wasm"
	MediaTypeWasmContent = "application/wasm"
)

// cosignPassword protects the fixture keys (COSIGN_PASSWORD).
const cosignPassword = "ferry-test"

// CosignKey is a cosign key pair: Key is the encrypted private key file,
// Pub the PEM public key file.
type CosignKey struct {
	Key, Pub string
}

// NewCosignKey makes an ECDSA P-256 key pair with `cosign generate-key-pair`.
func NewCosignKey(t testing.TB) *CosignKey {
	t.Helper()
	dir := t.TempDir()
	cosign(t, dir, "generate-key-pair")
	return &CosignKey{Key: filepath.Join(dir, "cosign.key"), Pub: filepath.Join(dir, "cosign.pub")}
}

// ImportCosignKey imports a PEM private key (RSA, ECDSA or Ed25519, as
// openssl writes them) with `cosign import-key-pair`.
func ImportCosignKey(t testing.TB, privatePEM []byte) *CosignKey {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "private.pem")
	if err := os.WriteFile(in, privatePEM, 0o600); err != nil {
		t.Fatalf("testimages: %v", err)
	}
	cosign(t, dir, "import-key-pair", "--key", in, "--output-key-prefix", "imported")
	return &CosignKey{Key: filepath.Join(dir, "imported.key"), Pub: filepath.Join(dir, "imported.pub")}
}

// SignMode is where cosign stores a signature.
type SignMode int

const (
	// TagScheme is cosign's default: a manifest tagged sha256-<hex>.sig.
	TagScheme SignMode = iota
	// Referrer is --registry-referrers-mode=oci-1-1: a manifest whose
	// subject is the signed manifest, listed by the referrers tag schema on
	// registries without the referrers API.
	Referrer
)

// Sign signs the manifest repo@dgst in reg with `cosign sign --key`,
// without a transparency log.
func (k *CosignKey) Sign(t testing.TB, reg *testenv.RegistryServer, repo string, dgst digest.Digest, mode SignMode) {
	t.Helper()
	args := []string{"sign", "--key", k.Key, "--tlog-upload=false", "-y"}
	var env []string
	if mode == Referrer {
		args = append(args, "--registry-referrers-mode=oci-1-1")
		env = append(env, "COSIGN_EXPERIMENTAL=1")
	}
	cosignReg(t, reg, env, append(args, reg.Ref(repo)+"@"+dgst.String())...)
}

// Attest attaches an in-toto attestation of predicateType to repo@dgst with
// `cosign attest --key` (cosign's tag scheme: sha256-<hex>.att).
func (k *CosignKey) Attest(t testing.TB, reg *testenv.RegistryServer, repo string, dgst digest.Digest, predicateType string) {
	t.Helper()
	pred := filepath.Join(t.TempDir(), "predicate.json")
	if err := os.WriteFile(pred, []byte(`{"builder":"ferry-test"}`), 0o600); err != nil {
		t.Fatalf("testimages: %v", err)
	}
	cosignReg(t, reg, nil, "attest", "--key", k.Key, "--tlog-upload=false", "-y",
		"--type", predicateType, "--predicate", pred, reg.Ref(repo)+"@"+dgst.String())
}

// CosignVerify runs `cosign verify --key pub --insecure-ignore-tlog` on ref
// (a full reference into reg), looking for a signature stored as mode says,
// and returns its error: nil when a signature by the key verifies.
func CosignVerify(t testing.TB, reg *testenv.RegistryServer, pub, ref string, mode SignMode) error {
	t.Helper()
	args := []string{"verify", "--key", pub, "--insecure-ignore-tlog", "--insecure-ignore-sct", "--output", "json"}
	var env []string
	if mode == Referrer {
		args = append(args, "--experimental-oci11")
		env = append(env, "COSIGN_EXPERIMENTAL=1")
	}
	_, err := testenv.ToolErr(t, "", cosignEnv(reg, env), "cosign", cosignRegFlags(reg, append(args, ref)...)...)
	return err
}

// File is one file of an oras artifact: its content and layer media type.
type File struct {
	Name, MediaType string
	Content         []byte
}

// Attach attaches files to repo@subject as an artifact of artifactType with
// `oras attach` (the referrers tag schema on registries without the
// referrers API) and returns the new manifest's digest.
func Attach(t testing.TB, reg *testenv.RegistryServer, repo string, subject digest.Digest, artifactType string, files ...File) digest.Digest {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"attach", "--format", "json", "--artifact-type", artifactType,
		reg.Ref(repo) + "@" + subject.String()}, writeFiles(t, dir, files)...)
	args = OrasFlags(reg, args...)
	return orasDigest(t, Oras(t, dir, args...))
}

// PushArtifact pushes files as an OCI artifact to ref (repo:tag in reg) with
// `oras push`: with configMediaType, a config file of that media type
// ("{}"), as Helm does; without it, artifactType and the empty config.
func PushArtifact(t testing.TB, reg *testenv.RegistryServer, ref, artifactType, configMediaType string, files ...File) digest.Digest {
	t.Helper()
	dir := t.TempDir()
	args := OrasFlags(reg, "push", "--format", "json")
	if artifactType != "" {
		args = append(args, "--artifact-type", artifactType)
	}
	if configMediaType != "" {
		cfg := filepath.Join(dir, "config.json")
		if err := os.WriteFile(cfg, []byte(`{"name":"demo","version":"0.1.0","apiVersion":"v2"}`), 0o600); err != nil {
			t.Fatalf("testimages: %v", err)
		}
		args = append(args, "--config", "config.json:"+configMediaType)
	}
	args = append(args, reg.Ref(ref))
	return orasDigest(t, Oras(t, dir, append(args, writeFiles(t, dir, files)...)...))
}

// Oras runs the oras CLI in dir and returns its stdout.
func Oras(t testing.TB, dir string, args ...string) string {
	t.Helper()
	return testenv.Tool(t, dir, nil, "oras", args...)
}

// OrasFlags appends the transport flags reg needs (--plain-http, or
// --ca-file with the test CA) to an oras command line.
func OrasFlags(reg *testenv.RegistryServer, args ...string) []string {
	if reg.CAFile != "" {
		return append(args, "--ca-file", reg.CAFile)
	}
	return append(args, "--plain-http")
}

// writeFiles writes files into dir and returns oras's "name:mediaType" args.
func writeFiles(t testing.TB, dir string, files []File) []string {
	t.Helper()
	var args []string
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.Name), f.Content, 0o600); err != nil {
			t.Fatalf("testimages: %v", err)
		}
		args = append(args, f.Name+":"+f.MediaType)
	}
	return args
}

// orasDigest reads the digest of oras's --format json output.
func orasDigest(t testing.TB, out string) digest.Digest {
	t.Helper()
	var res struct {
		Digest digest.Digest `json:"digest"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Digest.Validate() != nil {
		t.Fatalf("testimages: oras output %q: no digest (%v)", out, err)
	}
	return res.Digest
}

// cosign runs the cosign CLI in dir with the fixture password.
func cosign(t testing.TB, dir string, args ...string) string {
	t.Helper()
	return testenv.Tool(t, dir, []string{"COSIGN_PASSWORD=" + cosignPassword}, "cosign", args...)
}

// cosignReg runs a cosign command that talks to reg.
func cosignReg(t testing.TB, reg *testenv.RegistryServer, env []string, args ...string) {
	t.Helper()
	testenv.Tool(t, "", cosignEnv(reg, env), "cosign", cosignRegFlags(reg, args...)...)
}

// cosignEnv is the environment of a cosign run against reg: the fixture
// password, the test CA for TLS registries, and a TUF mirror on 127.0.0.1
// with no root: cosign skips the sigstore trust root instead of reaching
// for the public TUF repository (the fixtures use keys and no tlog).
func cosignEnv(reg *testenv.RegistryServer, env []string) []string {
	env = append(env, "COSIGN_PASSWORD="+cosignPassword, "TUF_MIRROR=http://127.0.0.1:1")
	if reg.CAFile != "" {
		env = append(env, "SSL_CERT_FILE="+reg.CAFile)
	}
	return env
}

// cosignRegFlags puts the transport flags reg needs after the subcommand.
func cosignRegFlags(reg *testenv.RegistryServer, args ...string) []string {
	out := []string{args[0]}
	if reg.CAFile == "" {
		out = append(out, "--allow-http-registry")
	}
	return append(out, args[1:]...)
}

// SignedFixture is what FillSigned put into a registry.
type SignedFixture struct {
	// Key signed everything; Other is a second key that signed nothing.
	Key, Other *CosignKey
	// Index is library/signed:1, a linux/amd64+arm64 index signed and
	// attested with cosign's tag scheme; Amd64 is its linux/amd64 manifest,
	// signed as an OCI 1.1 referrer.
	Index, Amd64 digest.Digest
	// Single is library/single:1, one manifest signed as an OCI 1.1
	// referrer, with SBOM (an SPDX file attached by oras) and SBOMSig (a
	// cosign signature of the SBOM, a referrer of a referrer).
	Single, SBOM digest.Digest
	// Chart is charts/demo:0.1.0, a Helm-chart-shaped artifact; Wasm is
	// artifacts/wasm:1, an artifact with artifactType and the empty config.
	Chart, Wasm digest.Digest
	// Unsigned is library/unsigned:1, an image with no referrers.
	Unsigned digest.Digest
}

// Repositories and tags of a SignedFixture.
const (
	SignedIndexRef = "library/signed:1"
	SingleRef      = "library/single:1"
	ChartRef       = "charts/demo:0.1.0"
	WasmRef        = "artifacts/wasm:1"
	UnsignedRef    = "library/unsigned:1"
)

// FillSigned fills reg (plain HTTP or TLS) with the trust fixtures, all made
// by the real cosign and oras CLIs.
func FillSigned(t testing.TB, reg *testenv.RegistryServer) *SignedFixture {
	t.Helper()
	f := &SignedFixture{Key: NewCosignKey(t), Other: NewCosignKey(t)}
	idx := Index(t, []string{"linux/amd64", "linux/arm64"})
	f.Index = digest.Digest(Push(t, reg, SignedIndexRef, idx).String())
	f.Amd64 = platformDigest(t, idx, "amd64")
	repo := repoOf(SignedIndexRef)
	f.Key.Sign(t, reg, repo, f.Index, TagScheme)
	f.Key.Attest(t, reg, repo, f.Index, "https://slsa.dev/provenance/v0.2")
	f.Key.Sign(t, reg, repo, f.Amd64, Referrer)

	f.Single = digest.Digest(Push(t, reg, SingleRef, Image(t, "linux/amd64", WithRandomLayers(1, 512))).String())
	repo = repoOf(SingleRef)
	f.Key.Sign(t, reg, repo, f.Single, Referrer)
	f.SBOM = Attach(t, reg, repo, f.Single, ArtifactTypeSPDX,
		File{Name: "sbom.spdx.json", MediaType: ArtifactTypeSPDX, Content: []byte(`{"spdxVersion":"SPDX-2.3","name":"single"}`)})
	f.Key.Sign(t, reg, repo, f.SBOM, Referrer)

	f.Chart = PushArtifact(t, reg, ChartRef, "", MediaTypeHelmConfig,
		File{Name: "demo-0.1.0.tgz", MediaType: MediaTypeHelmChart, Content: []byte("\x1f\x8b\x08\x00chart")})
	f.Wasm = PushArtifact(t, reg, WasmRef, ArtifactTypeWasm, "",
		File{Name: "module.wasm", MediaType: MediaTypeWasmContent, Content: []byte("\x00asm\x01\x00\x00\x00")})
	f.Unsigned = digest.Digest(Push(t, reg, UnsignedRef, Image(t, "linux/arm64")).String())
	return f
}

// repoOf strips the tag of "repo:tag".
func repoOf(ref string) string { return ref[:strings.LastIndex(ref, ":")] }

// platformDigest returns the digest of idx's manifest for architecture arch.
func platformDigest(t testing.TB, idx v1.ImageIndex, arch string) digest.Digest {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatalf("testimages: %v", err)
	}
	for _, m := range im.Manifests {
		if m.Platform != nil && m.Platform.Architecture == arch {
			return digest.Digest(m.Digest.String())
		}
	}
	t.Fatalf("testimages: index has no %s manifest", arch)
	return ""
}
