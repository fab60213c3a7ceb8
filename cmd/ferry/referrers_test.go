package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
)

// TestReferrersCommands pushes and imports a bundle of signed images: push
// counts the referrers that went with each image (-o json) and refuses a
// bad --referrers; import says which referrers it left out of containerd.
func TestReferrersCommands(t *testing.T) {
	sb := testbundle.BuildSigned(t)
	reg := testenv.Registry(t)
	push := []string{"push", sb.Path, "--to", reg.Host + "/mirror", "--plain-http", "--image", "library/*"}

	if code, _, stderr := runFerry(t, "", append(push, "--referrers", "some")...); code != exitUsage || !strings.Contains(stderr, "--referrers") {
		t.Errorf("--referrers some: exit %d, stderr %q; want a usage error", code, stderr)
	}
	code, stdout, stderr := runFerry(t, "", append(push, "-o", "json")...)
	if code != exitOK {
		t.Fatalf("push: exit %d: %s", code, stderr)
	}
	var res pushSummary
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("push -o json: %v: %s", err, stdout)
	}
	want := map[string]int{sb.Name(testimages.SignedIndexRef): 3, sb.Name(testimages.SingleRef): 3, sb.Name(testimages.UnsignedRef): 0}
	for _, img := range res.Images {
		if n, ok := want[img.Name]; !ok || img.Referrers != n {
			t.Errorf("push %s: %d referrers, want %d", img.Name, img.Referrers, n)
		}
	}

	ctd := testenv.Containerd(t)
	code, stdout, stderr = runFerry(t, "", "import", sb.Path, "--address", ctd.Address, "--namespace", "refs", "--no-unpack", "--image", "library/s*")
	if code != exitOK || !strings.Contains(stdout, "6 referrers (signatures, SBOMs, attestations) left out") {
		t.Errorf("import: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
}
