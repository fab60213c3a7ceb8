package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
)

// TestPushClash: two images that would go to one destination are refused
// before anything is sent, both named, with the way out; --keep-host
// keeps them apart.
func TestPushClash(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	path := testbundle.Write(t, filepath.Join(t.TempDir(), "clash.tar"), map[string]testbundle.Image{
		"docker.io/ferrydemo/busybox:1.36": testimages.Index(t, []string{"linux/amd64"}),
		"quay.io/ferrydemo/busybox:1.36":   testimages.Index(t, []string{"linux/arm64"}),
	})
	reg := testenv.Registry(t)
	code, stdout, stderr := runFerry(t, "", "push", path, "--to", reg.Host+"/p", "--plain-http")
	if code != exitUsage {
		t.Errorf("exit %d, want %d", code, exitUsage)
	}
	for _, want := range []string{"docker.io/ferrydemo/busybox:1.36 and quay.io/ferrydemo/busybox:1.36 both go to " + reg.Host + "/p/ferrydemo/busybox:1.36", "--keep-host", "name:"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s\n%s", want, stdout, stderr)
		}
	}
	if repos := catalog(t, reg); len(repos) > 0 {
		t.Errorf("a refused push sent something: %s", repos)
	}
	if code, stdout, stderr := runFerry(t, "", "push", path, "--to", reg.Host+"/p", "--plain-http", "--keep-host"); code != exitOK {
		t.Errorf("--keep-host: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// TestPushExistingTag: --on-existing-tag overwrite (the default) moves a
// tag that points elsewhere and says so; skip leaves it and the image;
// fail fails the image.
func TestPushExistingTag(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	dir := t.TempDir()
	v1, v2 := testimages.Index(t, []string{"linux/amd64"}), testimages.Index(t, []string{"linux/arm64"})
	first := testbundle.Write(t, filepath.Join(dir, "v1.tar"), map[string]testbundle.Image{"docker.io/library/app:1": v1})
	second := testbundle.Write(t, filepath.Join(dir, "v2.tar"), map[string]testbundle.Image{"docker.io/library/app:1": v2})
	raw1, _ := v1.RawManifest()
	raw2, _ := v2.RawManifest()
	d1, d2 := digest.FromBytes(raw1), digest.FromBytes(raw2)
	reg := testenv.Registry(t)
	push := func(path string, args ...string) (int, pushSummary, string) {
		code, stdout, stderr := runFerry(t, "", append([]string{"push", path, "--to", reg.Host, "--plain-http", "-o", "json"}, args...)...)
		var s pushSummary
		if code != exitUsage {
			if err := json.Unmarshal([]byte(stdout), &s); err != nil {
				t.Fatalf("%v:\n%s\n%s", err, stdout, stderr)
			}
		}
		return code, s, stderr
	}
	tagged := func() digest.Digest {
		return digest.FromBytes([]byte(testenv.Skopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+reg.Ref("library/app:1"))))
	}

	if code, s, _ := push(first); code != exitOK || s.TagsMoved != 0 {
		t.Fatalf("first push: exit %d, %+v", code, s)
	}
	code, s, stderr := push(second)
	if code != exitOK || s.TagsMoved != 1 || s.Images[0].MovedFrom != d1.String() || !strings.Contains(stderr, "moved tag "+reg.Host+"/library/app:1 from "+d1.String()) || tagged() != d2 {
		t.Errorf("overwrite: exit %d, %+v\n%s", code, s, stderr)
	}
	code, s, _ = push(first, "--on-existing-tag", "skip")
	if code != exitOK || s.Skipped != 1 || s.Pushed != 0 || !strings.Contains(s.Images[0].Skipped, "already points at "+d2.String()) || tagged() != d2 {
		t.Errorf("skip: exit %d, %+v", code, s)
	}
	code, s, stderr = push(first, "--on-existing-tag", "fail")
	if code != exitFailure || s.Failed != 1 || !strings.Contains(s.Images[0].Error, "already exists") || tagged() != d2 {
		t.Errorf("fail: exit %d, %+v\n%s", code, s, stderr)
	}
	if code, _, stderr := push(first, "--on-existing-tag", "maybe"); code != exitUsage || !strings.Contains(stderr, "overwrite, skip or fail") {
		t.Errorf("bad value: exit %d\n%s", code, stderr)
	}
}
