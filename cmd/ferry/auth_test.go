package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
)

// TestCredentials: a registry that wants credentials gets an error that
// says how to give them without docker (REGISTRY_AUTH_FILE, --username
// and --password-stdin) and never suggests docker login; the containers
// auth file in REGISTRY_AUTH_FILE then works for build and push.
func TestCredentials(t *testing.T) {
	path, _ := pushTestBundle(t)
	t.Setenv("HOME", t.TempDir()) // no ~/.docker/config.json of the machine
	t.Setenv("XDG_RUNTIME_DIR", "")
	reg := testenv.Registry(t, testenv.WithHtpasswd("ferry", "s3cret"))
	testimages.Push(t, reg, "library/private:1", testimages.Index(t, []string{"linux/amd64"}))
	out := filepath.Join(t.TempDir(), "private.tar")
	build := []string{"build", "--image", reg.Ref("library/private:1"), "--plain-http", "-b", out}
	push := []string{"push", path, "--to", reg.Host + "/seed", "--plain-http"}

	for _, args := range [][]string{build, push} {
		code, stdout, stderr := runFerry(t, "", args...)
		if code != exitFailure || !strings.Contains(stderr, "REGISTRY_AUTH_FILE") || strings.Contains(stdout+stderr, "docker login") {
			t.Errorf("ferry %s without credentials: exit %d\n%s\n%s", args[0], code, stdout, stderr)
		}
		if !strings.Contains(stderr, "--username and --password-stdin") {
			t.Errorf("%s does not name --username and --password-stdin:\n%s", args[0], stderr)
		}
	}
	withUser := []string{"--username", "ferry", "--password-stdin"}
	buildUser := []string{"build", "--image", reg.Ref("library/private:1"), "--plain-http", "-b", filepath.Join(t.TempDir(), "user.tar")}
	for _, args := range [][]string{append(buildUser, withUser...), append(push, withUser...)} {
		if code, stdout, stderr := runFerry(t, "s3cret\n", args...); code != exitOK {
			t.Errorf("ferry %s with --username and --password-stdin: exit %d\n%s\n%s", args[0], code, stdout, stderr)
		}
	}

	auth := filepath.Join(t.TempDir(), "auth.json")
	token := base64.StdEncoding.EncodeToString([]byte("ferry:s3cret"))
	if err := os.WriteFile(auth, []byte(`{"auths": {"`+reg.Host+`": {"auth": "`+token+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REGISTRY_AUTH_FILE", auth)
	for _, args := range [][]string{build, push} {
		if code, stdout, stderr := runFerry(t, "", args...); code != exitOK {
			t.Errorf("ferry %s with REGISTRY_AUTH_FILE: exit %d\n%s\n%s", args[0], code, stdout, stderr)
		}
	}
}
