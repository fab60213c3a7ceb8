package testenv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// skopeoTimeout bounds one skopeo run.
const skopeoTimeout = 10 * time.Minute

// Skopeo runs `skopeo --insecure-policy args...` and returns its stdout; it
// fails the test with stderr when skopeo fails. TMPDIR is a test temp dir and
// no credentials of the machine are used (REGISTRY_AUTH_FILE points to an
// empty temp file); pass --creds or RegistryServer.SkopeoFlags for auth.
func Skopeo(t testing.TB, args ...string) string {
	t.Helper()
	out, err := SkopeoErr(t, args...)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return out
}

// SkopeoErr is Skopeo for negative tests: it returns stdout and an error that
// holds stderr instead of failing the test.
func SkopeoErr(t testing.TB, args ...string) (string, error) {
	t.Helper()
	bin := RequireBinary(t, "skopeo")
	tmp := t.TempDir()
	authFile := filepath.Join(tmp, "auth.json")
	if err := os.WriteFile(authFile, []byte("{}"), 0o600); err != nil {
		t.Fatalf("testenv: skopeo: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), skopeoTimeout)
	defer cancel()
	full := append([]string{"--insecure-policy"}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "REGISTRY_AUTH_FILE="+authFile)
	return output(cmd, "skopeo", full)
}
