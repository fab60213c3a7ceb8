package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/bundle/signature"
	"github.com/ferry-oci/ferry/installer/containerd"
	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
)

// TestTrustCommands drives the signed-image flow through the CLI: build
// from a registry of cosign-signed images carries their referrers, inspect
// lists them, verify --key passes for the signed images and fails naming
// the unsigned one, import says it leaves the referrers out, and install
// --verify-key stops before any step when an image is unsigned.
func TestTrustCommands(t *testing.T) {
	reg := testenv.Registry(t)
	f := testimages.FillSigned(t, reg)
	signed, single, unsigned := reg.Ref(testimages.SignedIndexRef), reg.Ref(testimages.SingleRef), reg.Ref(testimages.UnsignedRef)
	path := filepath.Join(t.TempDir(), "signed.tar")
	code, out, errOut := runFerry(t, "", "build", "--image", signed, "--image", single, "--image", unsigned,
		"--plain-http", "-b", path)
	if code != exitOK {
		t.Fatalf("build: exit %d\n%s\n%s", code, out, errOut)
	}

	code, out, errOut = runFerry(t, "", "inspect", "-o", "json", path)
	if code != exitOK {
		t.Fatalf("inspect: exit %d: %s", code, errOut)
	}
	var rep bundle.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, img := range rep.Images {
		counts[img.Name] = len(img.Referrers)
	}
	if counts[signed] != 3 || counts[single] != 3 || counts[unsigned] != 0 {
		t.Errorf("inspect -o json referrers per image: %v", counts)
	}
	_, out, _ = runFerry(t, "", "inspect", path)
	if !strings.Contains(out, "referrer application/spdx+json") || !strings.Contains(out, f.SBOM.String()) {
		t.Errorf("inspect text lacks the SBOM:\n%s", out)
	}

	code, out, errOut = runFerry(t, "", "verify", path, "--key", f.Key.Pub, "--only", "*/library/signed:1", "--only", "*/library/single:1")
	if code != exitOK || !strings.Contains(out, "2 of 2 image(s) signed by the key") {
		t.Errorf("verify --key of the signed images: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runFerry(t, "", "verify", path, "--key", f.Key.Pub, "-o", "json")
	var res struct {
		Signatures signature.Report `json:"signatures"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("verify --key -o json: %v\n%s", err, out)
	}
	if code != exitFailure || len(res.Signatures.Images) != 3 || !strings.Contains(errOut+out, unsigned) {
		t.Errorf("verify --key with an unsigned image: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runFerry(t, "", "verify", path, "--key", f.Other.Pub, "--only", "*/library/signed:1")
	if code != exitFailure || !strings.Contains(out, "NOT SIGNED image "+signed) || !strings.Contains(out, "does not verify") {
		t.Errorf("verify with another key: exit %d\n%s\n%s", code, out, errOut)
	}

	ctd := testenv.Containerd(t)
	code, out, errOut = runFerry(t, "", "import", path, "--address", ctd.Address, "--namespace", "trust", "--all-platforms", "--no-unpack", "-o", "json")
	var imp containerd.ImportResult
	if err := json.Unmarshal([]byte(out), &imp); code != exitOK || err != nil || imp.ReferrersLeftOut != 6 {
		t.Errorf("import: exit %d, %v, referrers left out %d, want 6\n%s\n%s", code, err, imp.ReferrersLeftOut, out, errOut)
	}

	code, out, errOut = runFerry(t, "", "install", path, "--verify-key", f.Key.Pub,
		"--import", "--address", ctd.Address, "--namespace", "trust2", "--all-platforms", "--no-unpack", "--no-serve")
	if code != exitFailure || !strings.Contains(out+errOut, unsigned) {
		t.Errorf("install --verify-key with an unsigned image: exit %d\n%s\n%s", code, out, errOut)
	}
	if listed := ctd.Ctr(t, "-n", "trust2", "images", "ls", "-q"); strings.TrimSpace(listed) != "" {
		t.Errorf("install imported despite the failed signature check:\n%s", listed)
	}
}
