package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/internal/testbundle"
)

// Names pushTestBundle gives its images.
const (
	multiName = "docker.io/library/multi:1"
	listName  = "docker.io/library/list:1"
)

func TestInspectCommand(t *testing.T) {
	path, digests := pushTestBundle(t)

	code, stdout, stderr := runFerry(t, "", "inspect", "-o", "json", path)
	if code != exitOK {
		t.Fatalf("inspect -o json: exit %d: %s", code, stderr)
	}
	var rep bundle.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("inspect -o json: %v:\n%s", err, stdout)
	}
	want := []bundle.ImageReport{
		{Name: listName, Digest: digests["list"], MediaType: "application/vnd.docker.distribution.manifest.list.v2+json", Platforms: []string{"linux/amd64", "linux/arm64"}},
		{Name: multiName, Digest: digests["multi"], MediaType: "application/vnd.oci.image.index.v1+json", Platforms: []string{"linux/amd64", "linux/arm64"}},
	}
	if len(rep.Images) != len(want) {
		t.Fatalf("images %+v, want %+v", rep.Images, want)
	}
	for i, w := range want {
		got := rep.Images[i]
		if got.Name != w.Name || got.Digest != w.Digest || got.MediaType != w.MediaType || !slices.Equal(got.Platforms, w.Platforms) || got.Size <= 0 {
			t.Errorf("image %d: %+v, want %+v with a size", i, got, w)
		}
	}
	// The busybox layer is in all four platform images: stored once.
	if rep.Blobs == 0 || rep.SharedBytes <= 0 || rep.Bytes != rep.Images[0].Size+rep.Images[1].Size-rep.SharedBytes {
		t.Errorf("blobs %d bytes %d shared %d do not add up", rep.Blobs, rep.Bytes, rep.SharedBytes)
	}

	code, stdout, stderr = runFerry(t, "", "inspect", path)
	if code != exitOK {
		t.Fatalf("inspect: exit %d: %s", code, stderr)
	}
	for _, s := range []string{"NAME", listName, multiName, digests["list"].String(), "docker list", "oci index", "linux/amd64,linux/arm64", "MiB", "2 images", "saved by sharing"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("inspect output lacks %q:\n%s", s, stdout)
		}
	}
}

func TestVerifyCommand(t *testing.T) {
	good, _ := pushTestBundle(t)
	bad := filepath.Join(t.TempDir(), "bad.tar")
	layer := corruptLargestBlob(t, good, bad)

	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		problems int    // with -o json
		output   string // in stdout
	}{
		{"good", []string{"verify", good}, exitOK, 0, "0 problem(s)"},
		{"good json", []string{"verify", "-o", "json", good}, exitOK, 0, `"full": true`},
		{"good fast", []string{"verify", "--fast", "-o", "json", good}, exitOK, 0, `"full": false`},
		{"bad layer", []string{"verify", "--jobs", "1", bad}, exitFailure, 1, "BAD " + layer.String()},
		{"bad layer json", []string{"verify", "-o", "json", bad}, exitFailure, 1, `"digest": "` + layer.String()},
		{"bad layer, fast", []string{"verify", "--fast", bad}, exitOK, 0, "sizes and graph checked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runFerry(t, "", tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
			if !strings.Contains(stdout, tc.output) {
				t.Errorf("stdout lacks %q:\n%s", tc.output, stdout)
			}
			if code != exitOK {
				// Each problem is printed once: on stdout, with the data.
				for _, s := range []string{layer.String(), listName, multiName, "digest mismatch"} {
					if strings.Count(stdout+stderr, s) != 1 {
						t.Errorf("%s is not printed once:\nstdout:\n%s\nstderr:\n%s", s, stdout, stderr)
					}
				}
				if !strings.Contains(stderr, "Error: bundle verification failed: 1 problem(s)") {
					t.Errorf("stderr does not sum up the problems:\n%s", stderr)
				}
			}
			if slices.Contains(tc.args, "json") {
				var rep bundle.VerifyReport
				if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
					t.Fatalf("%v:\n%s", err, stdout)
				}
				if len(rep.Problems) != tc.problems || rep.Images != 2 {
					t.Errorf("report: %d images, problems %+v; want 2 and %d", rep.Images, rep.Problems, tc.problems)
				}
			}
		})
	}
}

// corruptLargestBlob copies the bundle src to dst with the first byte of
// its largest blob changed, and returns that blob's digest.
func corruptLargestBlob(t *testing.T, src, dst string) digest.Digest {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	r := testbundle.Open(t, src)
	var largest digest.Digest
	var max int64
	for _, d := range r.Digests() {
		if size, _ := r.Size(d); size > max {
			largest, max = d, size
		}
	}
	sr, err := r.Blob(largest)
	if err != nil {
		t.Fatal(err)
	}
	_, off, _ := sr.Outer()
	b[off] ^= 0xff
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return largest
}

func TestInspectVerifyUsage(t *testing.T) {
	path, _ := pushTestBundle(t)
	notTar := filepath.Join(t.TempDir(), "not.tar")
	if err := os.WriteFile(notTar, []byte("not a tar"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "none.tar")
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"inspect without bundle", []string{"inspect"}, exitUsage},
		{"inspect two bundles", []string{"inspect", path, path}, exitUsage},
		{"inspect bad output", []string{"inspect", "-o", "yaml", path}, exitUsage},
		{"verify without bundle", []string{"verify"}, exitUsage},
		{"verify bad jobs", []string{"verify", "--jobs", "x", path}, exitUsage},
		{"verify unknown flag", []string{"verify", "--full", path}, exitUsage},
		{"inspect missing file", []string{"inspect", missing}, exitFailure},
		{"verify missing file", []string{"verify", missing}, exitFailure},
		{"inspect not a tar", []string{"inspect", notTar}, exitFailure},
		{"verify not a tar", []string{"verify", notTar}, exitFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runFerry(t, "", tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
		})
	}
}
