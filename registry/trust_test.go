package registry

import (
	"encoding/json"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
)

// TestReferrersCosignOras signs an image pushed into a writable server with
// the real cosign (OCI 1.1 referrers mode) and attaches an SBOM with the
// real oras; oras discover lists both through the referrers API, cosign
// verify passes with the key and fails with another, and neither client
// fell back to the referrers tag schema (they saw OCI-Subject).
func TestReferrersCosignOras(t *testing.T) {
	s := serveBundle(t, testBundle(t).path, Options{Writable: true})
	// The fixture helpers need only the address of a plain-HTTP registry.
	reg := &testenv.RegistryServer{Host: s.host, URL: s.url}
	const repo = "library/app"
	img := digest.Digest(testimages.Push(t, reg, repo+":1", testimages.Image(t, "linux/amd64", testimages.WithRandomLayers(1, 512))).String())
	key, other := testimages.NewCosignKey(t), testimages.NewCosignKey(t)
	key.Sign(t, reg, repo, img, testimages.Referrer)
	sbom := testimages.Attach(t, reg, repo, img, testimages.ArtifactTypeSPDX,
		testimages.File{Name: "sbom.spdx.json", MediaType: testimages.ArtifactTypeSPDX, Content: []byte(`{"spdxVersion":"SPDX-2.3"}`)})

	found := testimages.Discover(t, reg, reg.Ref(repo+"@"+img.String()), true)
	if found[sbom] != testimages.ArtifactTypeSPDX || len(found) != 2 {
		t.Errorf("oras discover: %v, want the SBOM %s and a signature", found, sbom)
	}
	for d, at := range found {
		if d != sbom && at != testimages.ArtifactTypeCosign {
			t.Errorf("oras discover: %s of type %q, want the cosign signature", d, at)
		}
	}
	ref := reg.Ref(repo + "@" + img.String())
	if err := testimages.CosignVerify(t, reg, key.Pub, ref, testimages.Referrer); err != nil {
		t.Errorf("cosign verify with the signing key: %v", err)
	}
	if err := testimages.CosignVerify(t, reg, other.Pub, ref, testimages.Referrer); err == nil {
		t.Errorf("cosign verify with another key passed")
	}
	resp, body := call(t, httpClient(nil), "GET", s.url+"/v2/"+repo+"/tags/list", nil, nil)
	var tags struct{ Tags []string }
	if err := json.Unmarshal(body, &tags); err != nil || resp.StatusCode != 200 || len(tags.Tags) != 1 {
		t.Errorf("tags of %s: %s %s, want only 1 (no referrers tag)", repo, resp.Status, body)
	}
}

// TestBundleReferrersCosignOras serves, read-only, a bundle that ferry
// build made from signed images: cosign verify passes against ferry serve
// for a signature stored under cosign's tag scheme and for OCI 1.1
// referrers (found through the referrers API), fails with another key,
// and oras discover lists the SBOM and the signature on it.
func TestBundleReferrersCosignOras(t *testing.T) {
	sb := testbundle.BuildSigned(t)
	fix := sb.Fixture
	s := serveBundle(t, sb.Path, Options{})
	reg := &testenv.RegistryServer{Host: s.host, URL: s.url}
	fix.CheckSigned(t, reg, "")
	found := testimages.Discover(t, reg, reg.Ref("library/single@"+fix.Single.String()), true)
	if found[fix.SBOM] != testimages.ArtifactTypeSPDX || len(found) != 3 {
		t.Errorf("oras discover library/single: %v, want the SBOM %s, its signature and the image's", found, fix.SBOM)
	}
	if found := testimages.Discover(t, reg, reg.Ref("library/single@"+fix.SBOM.String()), true); len(found) != 1 {
		t.Errorf("oras discover the SBOM: %v, want its signature", found)
	}
	if found := testimages.Discover(t, reg, reg.Ref("library/unsigned@"+fix.Unsigned.String()), true); len(found) != 0 {
		t.Errorf("oras discover library/unsigned: %v, want none", found)
	}
}
