package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
)

// TestBuildReportsEveryFailure: build resolves every image before it reads
// a layer, and names every entry that fails, with FILE:LINE, at once;
// --keep-going writes the bundle without them, names them, and exits 1.
func TestBuildReportsEveryFailure(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	reg := testenv.Registry(t)
	testimages.Push(t, reg, "library/good:1", testimages.Index(t, []string{"linux/amd64", "linux/arm64"}))
	dir := t.TempDir()
	list := filepath.Join(dir, "images.txt")
	content := "# release\n" + reg.Ref("library/good:1") + "\n" + reg.Ref("library/good:2") + "\n" + reg.Ref("library/absent:1") + "\n"
	if err := os.WriteFile(list, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "release.tar")
	args := []string{"build", "-f", list, "-b", out, "--plain-http"}

	code, stdout, stderr := runFerry(t, "", args...)
	if code != exitFailure {
		t.Fatalf("exit %d:\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"2 of 3 images failed", list + ":3: image " + reg.Ref("library/good:2"), list + ":4: image " + reg.Ref("library/absent:1")} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed build wrote %s: %v", out, err)
	}
	if layers := layerGets(t, reg); len(layers) > 0 {
		t.Errorf("the build read layers before it knew every image: %v", layers)
	}

	code, stdout, stderr = runFerry(t, "", append(args, "--keep-going", "-o", "json")...)
	var s buildSummary
	if err := json.Unmarshal([]byte(stdout), &s); code != exitFailure || err != nil {
		t.Fatalf("--keep-going: exit %d, %v:\n%s\n%s", code, err, stdout, stderr)
	}
	if len(s.Images) != 1 || s.Images[0].Name != reg.Ref("library/good:1") || len(s.Failed) != 2 ||
		s.Failed[0].Line != 3 || s.Failed[1].Line != 4 || s.Failed[0].File != list {
		t.Errorf("summary %+v", s)
	}
	if !strings.Contains(stderr, "Error: build: 2 of 3 images failed and were left out of "+out) {
		t.Errorf("stderr:\n%s", stderr)
	}
	if imgs := testbundle.Open(t, out).Images(); len(imgs) != 1 || imgs[0].Name != reg.Ref("library/good:1") {
		t.Errorf("the bundle holds %+v", imgs)
	}
}

var blobGet = regexp.MustCompile(`"GET /v2/[^ ]+/blobs/(sha256:[0-9a-f]{64})`)

// layerGets returns the blobs (layers or configs) reg served.
func layerGets(t *testing.T, reg *testenv.RegistryServer) []string {
	t.Helper()
	log, err := os.ReadFile(reg.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range blobGet.FindAllStringSubmatch(string(log), -1) {
		got = append(got, m[1])
	}
	return got
}

// TestBuildPlainHTTPRule: build speaks plain HTTP only with --plain-http,
// to a 127.0.0.1 registry too (push's rule); the deprecated
// --insecure-registry still works, with a warning naming its replacement.
func TestBuildPlainHTTPRule(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	reg := testenv.Registry(t)
	testimages.Push(t, reg, "library/good:1", testimages.Index(t, []string{"linux/amd64"}))
	tests := []struct {
		name     string
		flags    []string
		code     int
		inStderr string
	}{
		{"no flag", nil, exitFailure, "--plain-http"},
		{"--plain-http", []string{"--plain-http"}, exitOK, ""},
		{"--insecure-registry", []string{"--insecure-registry", reg.Host}, exitOK, "use --plain-http"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "b.tar")
			args := append([]string{"build", "--image", reg.Ref("library/good:1"), "-b", out}, tc.flags...)
			code, stdout, stderr := runFerry(t, "", args...)
			if code != tc.code || !strings.Contains(stderr, tc.inStderr) {
				t.Errorf("exit %d (want %d), stderr should hold %q:\n%s\n%s", code, tc.code, tc.inStderr, stdout, stderr)
			}
		})
	}
}
