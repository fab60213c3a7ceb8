package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// toolTimeout bounds one cosign or oras run.
const toolTimeout = 5 * time.Minute

// ToolsBin is the directory where scripts/install-deps.sh builds cosign and
// oras: $FERRY_TOOLS_BIN, or ${XDG_CACHE_HOME:-~/.cache}/ferry/tools/bin.
func ToolsBin() string {
	if d := os.Getenv("FERRY_TOOLS_BIN"); d != "" {
		return d
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "ferry", "tools", "bin")
}

// RequireTool returns the path of a program that scripts/install-deps.sh
// builds into ToolsBin (cosign, oras), and fails the test naming the script
// when it is absent.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(ToolsBin(), name)
	if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		t.Fatalf("testenv: %s not found in %s: run scripts/install-deps.sh (or make deps), which builds it there", name, ToolsBin())
	}
	return p
}

// Tool runs a ToolsBin program (cosign, oras) with args in dir, with the
// extra environment variables env ("K=V"), and returns its stdout; it fails
// the test with stderr when the program fails. HOME and DOCKER_CONFIG point to
// a temp dir, so the machine's credentials are never used.
func Tool(t testing.TB, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := ToolErr(t, dir, env, name, args...)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return out
}

// ToolErr is Tool for negative tests: it returns stdout and an error that
// holds stderr instead of failing the test.
func ToolErr(t testing.TB, dir string, env []string, name string, args ...string) (string, error) {
	t.Helper()
	bin := RequireTool(t, name)
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+home, "DOCKER_CONFIG="+home, "TMPDIR="+home,
		"NO_PROXY=127.0.0.1", "no_proxy=127.0.0.1", "HTTPS_PROXY=", "HTTP_PROXY=", "https_proxy=", "http_proxy=")
	cmd.Env = append(cmd.Env, env...)
	return output(cmd, name, args)
}

// output runs cmd and returns its stdout; when it fails, the error names
// the program and args and holds its stderr.
func output(cmd *exec.Cmd, name string, args []string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
