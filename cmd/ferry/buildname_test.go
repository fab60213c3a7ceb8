package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-oci/ferry/internal/testenv"
)

// TestBuildImageName: `--image SRC --name NAME` pairs name images on the
// command line, such as an OCI layout whose image skopeo named by a bare
// tag; without --name the error says how to give one.
func TestBuildImageName(t *testing.T) {
	src, digests := pushTestBundle(t)
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout")
	testenv.Skopeo(t, "copy", "--all", "oci-archive:"+src+":docker.io/library/multi:1", "oci:"+layout+":1.36")
	out := filepath.Join(dir, "named.tar")

	code, stdout, stderr := runFerry(t, "", "build", "-b", out, "-o", "json",
		"--image", "oci:"+layout+":1.36", "--name", "docker.io/ferrydemo/busybox:1.36",
		"--image", "oci-archive:"+src)
	var s buildSummary
	if err := json.Unmarshal([]byte(stdout), &s); code != exitOK || err != nil {
		t.Fatalf("exit %d, %v:\n%s\n%s", code, err, stdout, stderr)
	}
	got := map[string]string{}
	for _, img := range s.Images {
		got[img.Name] = img.Digest.String()
	}
	if got["docker.io/ferrydemo/busybox:1.36"] != digests["multi"].String() || len(got) != 3 {
		t.Errorf("images %v; want docker.io/ferrydemo/busybox:1.36 at %s and the archive's two", got, digests["multi"])
	}

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"bare tag without --name", []string{"--image", "oci:" + layout + ":1.36"}, exitFailure, "--name after its --image"},
		{"--name first", []string{"--name", "x:1", "--image", "oci:" + layout + ":1.36"}, exitUsage, "give --name after the --image it names"},
		{"two names", []string{"--image", "oci:" + layout + ":1.36", "--name", "x:1", "--name", "y:1"}, exitUsage, "already named"},
		{"digest name", []string{"--image", "oci:" + layout + ":1.36", "--name", "x@" + digests["multi"].String()}, exitUsage, "a name must be a tag"},
		{"one name twice", []string{"--image", "oci:" + layout + ":1.36", "--name", "x:1", "--image", "oci-archive:" + src, "--name", "x:1"}, exitUsage, "given twice"},
		{"docker:// image", []string{"--image", "docker://nginx:1"}, exitUsage, `"docker://nginx:1": write registry references without docker://`},
		{"archive with a name", []string{"--image", "oci-archive:" + src + ":x:1"}, exitUsage, "oci-archive: takes a file and no image name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runFerry(t, "", append([]string{"build", "-b", filepath.Join(t.TempDir(), "b.tar")}, tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d, want %d; stderr lacks %q:\n%s\n%s", code, tc.code, tc.stderr, stdout, stderr)
			}
		})
	}
}
