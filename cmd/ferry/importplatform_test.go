package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
)

// TestImportPlatformMissing: import --platform imports the images that
// have the platform and names those that do not, exit 0; it fails only
// with --require-platform (importing nothing) or when no image has it.
func TestImportPlatformMissing(t *testing.T) {
	path := testbundle.Write(t, filepath.Join(t.TempDir(), "mixed.tar"), map[string]testbundle.Image{
		"docker.io/library/both:1":  testimages.Index(t, []string{"linux/amd64", "linux/arm64"}),
		"docker.io/library/amd64:1": testimages.Image(t, "linux/amd64"),
	})
	ctd := testenv.Containerd(t)
	imp := func(ns string, args ...string) (int, string, string) {
		return runFerry(t, "", append([]string{"import", path, "--address", ctd.Address, "--namespace", ns, "--no-unpack"}, args...)...)
	}
	listed := func(ns string) string { return ctd.Ctr(t, "-n", ns, "images", "ls", "-q") }

	code, stdout, stderr := imp("some", "--platform", "linux/arm64")
	if code != exitOK || !strings.Contains(stdout, "SKIPPED image docker.io/library/amd64:1 has no linux/arm64") || !strings.Contains(stdout, "1 images skipped") {
		t.Errorf("exit %d:\n%s\n%s", code, stdout, stderr)
	}
	if got := listed("some"); !strings.Contains(got, "docker.io/library/both:1") || strings.Contains(got, "amd64:1") {
		t.Errorf("imported:\n%s", got)
	}

	code, stdout, stderr = imp("strict", "--platform", "linux/arm64", "--require-platform")
	if code != exitFailure || !strings.Contains(stderr, "docker.io/library/amd64:1 has no linux/arm64") {
		t.Errorf("--require-platform: exit %d:\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = imp("none", "--platform", "linux/s390x")
	if code != exitFailure || !strings.Contains(stderr, "no image to import has linux/s390x") {
		t.Errorf("no image has it: exit %d:\n%s\n%s", code, stdout, stderr)
	}
	for _, ns := range []string{"strict", "none"} {
		if got := strings.TrimSpace(listed(ns)); got != "" {
			t.Errorf("namespace %s got images:\n%s", ns, got)
		}
	}
}
