package testimages_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
)

// discover runs `oras discover --format json` on ref and returns the
// referrers tree.
func discover(t *testing.T, reg *testenv.RegistryServer, ref string) []referrer {
	t.Helper()
	out := testimages.Oras(t, "", testimages.OrasFlags(reg, "discover", "--format", "json", ref)...)
	var res struct {
		Referrers []referrer `json:"referrers"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("oras discover %s: %v\n%s", ref, err, out)
	}
	return res.Referrers
}

type referrer struct {
	Digest       digest.Digest `json:"digest"`
	ArtifactType string        `json:"artifactType"`
	Referrers    []referrer    `json:"referrers"`
}

// TestFillSigned checks the trust fixture with the independent clients:
// cosign verifies every signature with the fixture key and none with the
// other key, oras discovers the SBOM and its signature, and the artifacts
// carry the media types they were pushed with.
func TestFillSigned(t *testing.T) {
	reg := testenv.Registry(t)
	f := testimages.FillSigned(t, reg)

	for _, s := range []struct {
		ref  string
		mode testimages.SignMode
	}{
		{reg.Ref("library/signed@" + f.Index.String()), testimages.TagScheme},
		{reg.Ref("library/signed@" + f.Amd64.String()), testimages.Referrer},
		{reg.Ref("library/single@" + f.Single.String()), testimages.Referrer},
		{reg.Ref("library/single@" + f.SBOM.String()), testimages.Referrer},
	} {
		if err := testimages.CosignVerify(t, reg, f.Key.Pub, s.ref, s.mode); err != nil {
			t.Errorf("cosign verify %s with the fixture key: %v", s.ref, err)
		}
		if err := testimages.CosignVerify(t, reg, f.Other.Pub, s.ref, s.mode); err == nil {
			t.Errorf("cosign verify %s with the other key passed", s.ref)
		}
	}
	if err := testimages.CosignVerify(t, reg, f.Key.Pub, reg.Ref("library/unsigned@"+f.Unsigned.String()), testimages.TagScheme); err == nil {
		t.Errorf("cosign verify of the unsigned image passed")
	}

	refs := discover(t, reg, reg.Ref("library/single@"+f.Single.String()))
	var sbom *referrer
	for i := range refs {
		if refs[i].Digest == f.SBOM {
			sbom = &refs[i]
		}
	}
	if len(refs) != 2 || sbom == nil || sbom.ArtifactType != testimages.ArtifactTypeSPDX {
		t.Fatalf("referrers of the single image = %+v, want a signature and the SBOM %s", refs, f.SBOM)
	}
	if len(sbom.Referrers) != 1 || sbom.Referrers[0].ArtifactType != testimages.ArtifactTypeCosign {
		t.Errorf("referrers of the SBOM = %+v, want one cosign signature", sbom.Referrers)
	}
	if refs := discover(t, reg, reg.Ref("library/signed@"+f.Amd64.String())); len(refs) != 1 {
		t.Errorf("referrers of the amd64 manifest = %+v, want one signature", refs)
	}

	tags := testimages.Oras(t, "", testimages.OrasFlags(reg, "repo", "tags", reg.Ref("library/signed"))...)
	for _, suffix := range []string{".sig", ".att"} {
		want := "sha256-" + f.Index.Encoded() + suffix
		if !containsLine(tags, want) {
			t.Errorf("library/signed tags %q lack %s", tags, want)
		}
	}

	for _, a := range []struct {
		ref                    string
		dgst                   digest.Digest
		artifactType, configMT string
	}{
		{testimages.ChartRef, f.Chart, "", testimages.MediaTypeHelmConfig},
		{testimages.WasmRef, f.Wasm, testimages.ArtifactTypeWasm, ocispec.MediaTypeEmptyJSON},
	} {
		out := testimages.Oras(t, "", testimages.OrasFlags(reg, "manifest", "fetch", reg.Ref(a.ref))...)
		var m ocispec.Manifest
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("%s: %v", a.ref, err)
		}
		if digest.FromString(out) != a.dgst || m.ArtifactType != a.artifactType || m.Config.MediaType != a.configMT {
			t.Errorf("%s: digest %s artifactType %q config %q, want %s %q %q", a.ref, digest.FromString(out), m.ArtifactType, m.Config.MediaType, a.dgst, a.artifactType, a.configMT)
		}
	}
}

func containsLine(s, line string) bool {
	for _, l := range strings.Split(s, "\n") {
		if l == line {
			return true
		}
	}
	return false
}
