package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
)

// runFerry runs ferry with args and stdin, and returns the exit code,
// stdout and stderr.
func runFerry(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		w.WriteString(stdin) //nolint:errcheck
		w.Close()
	}()
	saved := os.Stdin
	os.Stdin = r
	defer func() { os.Stdin = saved; r.Close() }()
	var out, errOut bytes.Buffer
	code := execute(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// pushTestBundle writes a bundle of an OCI index and a docker manifest
// list and returns its path and the images' digests.
func pushTestBundle(t *testing.T) (string, map[string]digest.Digest) {
	t.Helper()
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials of the machine
	multi := testimages.Index(t, []string{"linux/amd64", "linux/arm64"})
	list := testimages.Index(t, []string{"linux/amd64", "linux/arm64"}, testimages.Docker())
	path := testbundle.Write(t, filepath.Join(t.TempDir(), "bundle.tar"), map[string]testbundle.Image{
		"docker.io/library/multi:1": multi,
		"docker.io/library/list:1":  list,
	})
	digests := map[string]digest.Digest{}
	for name, idx := range map[string]testbundle.Image{"multi": multi, "list": list} {
		raw, err := idx.RawManifest()
		if err != nil {
			t.Fatal(err)
		}
		digests[name] = digest.FromBytes(raw)
	}
	return path, digests
}

func TestPushCommandUsage(t *testing.T) {
	path, _ := pushTestBundle(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"no bundle", []string{"push", "--to", "reg.invalid"}, exitUsage},
		{"no --to", []string{"push", path}, exitUsage},
		{"scheme in --to", []string{"push", path, "--to", "https://reg.invalid"}, exitUsage},
		{"username without password", []string{"push", path, "--to", "reg.invalid", "--username", "u"}, exitUsage},
		{"password without username", []string{"push", path, "--to", "reg.invalid", "--password-stdin"}, exitUsage},
		{"bad platform", []string{"push", path, "--to", "reg.invalid", "--platform", "linux"}, exitUsage},
		{"empty pattern", []string{"push", path, "--to", "reg.invalid", "--only", ""}, exitUsage},
		{"negative jobs", []string{"push", path, "--to", "reg.invalid", "--jobs", "-1"}, exitUsage},
		{"missing bundle", []string{"push", filepath.Join(t.TempDir(), "none.tar"), "--to", "reg.invalid"}, exitFailure},
		{"no image matches", []string{"push", path, "--to", "reg.invalid", "--only", "nothing", "--dry-run"}, exitFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runFerry(t, "", tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
		})
	}
}

func TestPushCommand(t *testing.T) {
	path, digests := pushTestBundle(t)
	reg := testenv.Registry(t)
	to := reg.Host + "/mirror"

	t.Run("dry run", func(t *testing.T) {
		code, out, stderr := runFerry(t, "", "push", path, "--to", to, "--plain-http", "--dry-run")
		want := "would push docker.io/library/multi:1 -> " + to + "/library/multi:1@" + digests["multi"].String()
		if code != exitOK || !strings.Contains(out, want) {
			t.Fatalf("exit %d, stdout:\n%s\nwant %q; stderr:\n%s", code, out, want, stderr)
		}
	})

	for _, run := range []string{"push", "re-push"} {
		t.Run(run, func(t *testing.T) {
			code, out, stderr := runFerry(t, "", "push", path, "--to", to, "--plain-http", "-o", "json")
			var s pushSummary
			if err := json.Unmarshal([]byte(out), &s); err != nil || code != exitOK {
				t.Fatalf("exit %d, %v; stdout:\n%s\nstderr:\n%s", code, err, out, stderr)
			}
			if s.Pushed != 2 || s.Failed != 0 {
				t.Errorf("summary %+v", s)
			}
			for _, img := range s.Images {
				name := strings.TrimSuffix(strings.TrimPrefix(img.Name, "docker.io/library/"), ":1")
				if img.Digest != digests[name].String() || img.DigestChanged {
					t.Errorf("%s: digest %s, want %s", img.Name, img.Digest, digests[name])
				}
			}
			if run == "push" {
				if s.BytesSent == 0 {
					t.Error("nothing sent")
				}
			} else if s.BytesSent != 0 || s.BlobsSent != 0 || s.BlobsSkipped != 2 {
				t.Errorf("re-push %+v: want nothing sent, the two indexes found", s)
			}
		})
	}
	raw := testenv.Skopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+reg.Ref("mirror/library/list:1"))
	if got := digest.FromBytes([]byte(raw)); got != digests["list"] {
		t.Errorf("skopeo reads %s, want %s", got, digests["list"])
	}

	t.Run("missing platform fails with exit 1", func(t *testing.T) {
		code, out, stderr := runFerry(t, "", "push", path, "--to", to, "--plain-http", "--platform", "linux/s390x")
		if code != exitFailure || !strings.Contains(out, "FAILED docker.io/library/multi:1") ||
			!strings.Contains(out, "linux/s390x") || !strings.Contains(stderr, "images failed") {
			t.Errorf("exit %d; stdout:\n%s\nstderr:\n%s", code, out, stderr)
		}
	})
}

func TestPushCommandPasswordStdin(t *testing.T) {
	const user, password = "ferry", "s3cret-pass"
	path, digests := pushTestBundle(t)
	reg := testenv.Registry(t, testenv.WithTLS(), testenv.WithHtpasswd(user, password))
	args := []string{"push", path, "--to", reg.Host, "--ca-file", reg.CAFile, "--username", user, "--password-stdin"}

	code, out, stderr := runFerry(t, "wrong-pass\n", args...)
	if code != exitFailure || !strings.Contains(stderr, "authentication failed") || strings.Contains(stderr+out, "wrong-pass") {
		t.Errorf("wrong password: exit %d; stdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	code, out, stderr = runFerry(t, password+"\n", args...)
	if code != exitOK {
		t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	skopeo := append([]string{"inspect", "--raw"}, reg.SkopeoFlags("")...)
	raw := testenv.Skopeo(t, append(skopeo, "docker://"+reg.Ref("library/multi:1"))...)
	if got := digest.FromBytes([]byte(raw)); got != digests["multi"] {
		t.Errorf("skopeo reads %s, want %s", got, digests["multi"])
	}
}
