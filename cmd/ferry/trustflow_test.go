package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
)

// TestSignedFlow runs the README's signed-image flow: build cosign-signed
// images (with an oras SBOM) into a bundle, install it with --verify-key
// pushing into a docker-registry, then cosign verify (tag scheme and OCI
// 1.1 signatures) and oras discover against that registry.
func TestSignedFlow(t *testing.T) {
	src := testenv.Registry(t)
	f := testimages.FillSigned(t, src)
	path := filepath.Join(t.TempDir(), "release.tar")
	code, out, errOut := runFerry(t, "", "build", "--image", src.Ref(testimages.SignedIndexRef), "--image", src.Ref(testimages.SingleRef),
		"--insecure-registry", src.Host, "-b", path)
	if code != exitOK {
		t.Fatalf("build: exit %d\n%s\n%s", code, out, errOut)
	}

	target := testenv.Registry(t)
	code, out, errOut = runFerry(t, "", "install", path, "--verify-key", f.Key.Pub,
		"--push-to", target.Host+"/tke", "--push-plain-http", "--no-serve")
	if code != exitOK || !strings.Contains(out+errOut, "2 images signed by the key") {
		t.Fatalf("install --verify-key: exit %d\n%s\n%s", code, out, errOut)
	}
	if err := testimages.CosignVerify(t, target, f.Key.Pub, target.Ref("tke/library/signed:1"), testimages.TagScheme); err != nil {
		t.Errorf("cosign verify of the pushed index (tag scheme): %v", err)
	}
	if err := testimages.CosignVerify(t, target, f.Key.Pub, target.Ref("tke/library/single:1"), testimages.Referrer); err != nil {
		t.Errorf("cosign verify of the pushed image (OCI 1.1 referrer): %v", err)
	}
	if err := testimages.CosignVerify(t, target, f.Other.Pub, target.Ref("tke/library/signed:1"), testimages.TagScheme); err == nil {
		t.Errorf("cosign verify with another key passed")
	}
	discovered := testimages.Oras(t, "", testimages.OrasFlags(target, "discover", "--format", "json", target.Ref("tke/library/single:1"))...)
	if !strings.Contains(discovered, f.SBOM.String()) || !strings.Contains(discovered, testimages.ArtifactTypeSPDX) {
		t.Errorf("oras discover in the target lacks the SBOM %s:\n%s", f.SBOM, discovered)
	}
}
