package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBundleFlag: -o/--output is the output format in build and merge as
// everywhere; the bundle path is -b/--bundle, and a name ferry would not
// write (x.tar.gz, json) is refused before any work, writing nothing.
func TestBundleFlag(t *testing.T) {
	src, digests := pushTestBundle(t)
	dir := t.TempDir()
	image := "oci-archive:" + src
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"-o json without a bundle", []string{"build", "--image", image, "-o", "json"}, exitUsage, "-b/--bundle BUNDLE.tar is required"},
		{"gzip name", []string{"build", "--image", image, "-b", filepath.Join(dir, "x.tar.gz")}, exitUsage, "ferry writes a .tar, or a .tar.zst"},
		{"gzip name the old way", []string{"build", "--image", image, "-o", filepath.Join(dir, "x.tar.gz")}, exitUsage, "ferry writes a .tar, or a .tar.zst"},
		{"no extension", []string{"build", "--image", image, "-b", filepath.Join(dir, "release")}, exitUsage, "ferry writes a .tar, or a .tar.zst"},
		{"format where a path goes", []string{"build", "--image", image, "-b", filepath.Join(dir, "a.tar"), "-o", "yaml"}, exitUsage, "the bundle path is -b/--bundle"},
		{"merge gzip name", []string{"merge", src, src, "-b", filepath.Join(dir, "m.tgz")}, exitUsage, "ferry writes a .tar, or a .tar.zst"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runFerry(t, "", tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d, want %d; stderr lacks %q:\n%s\n%s", code, tc.code, tc.stderr, stdout, stderr)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) > 0 {
				t.Errorf("refused, yet wrote %v", left)
			}
			if _, err := os.Stat("json"); err == nil {
				t.Error("wrote a file named json")
			}
		})
	}

	t.Run("-o json prints the result", func(t *testing.T) {
		out := filepath.Join(dir, "release.tar")
		code, stdout, stderr := runFerry(t, "", "build", "--image", image, "-b", out, "-o", "json")
		var s buildSummary
		if err := json.Unmarshal([]byte(stdout), &s); code != exitOK || err != nil {
			t.Fatalf("exit %d, %v:\n%s\n%s", code, err, stdout, stderr)
		}
		if s.Bundle != out || len(s.Images) != 2 || s.Blobs == 0 {
			t.Errorf("summary %+v", s)
		}
		for _, img := range s.Images {
			name := strings.TrimSuffix(strings.TrimPrefix(img.Name, "docker.io/library/"), ":1")
			if img.Digest != digests[name] {
				t.Errorf("%s: %s, want %s", img.Name, img.Digest, digests[name])
			}
		}
	})
	t.Run("-o FILE.tar still works, with a warning", func(t *testing.T) {
		out := filepath.Join(dir, "old.tar")
		code, stdout, stderr := runFerry(t, "", "build", "--image", image, "-o", out)
		if code != exitOK || !strings.Contains(stderr, "give the bundle path with -b/--bundle") || !strings.Contains(stdout, "wrote "+out) {
			t.Fatalf("exit %d:\n%s\n%s", code, stdout, stderr)
		}
		if _, err := os.Stat(out); err != nil {
			t.Error(err)
		}
	})
}
