// Package testenv starts the real outside programs that ferry's tests talk to:
// a distribution registry (docker-registry from Debian), a containerd daemon,
// and skopeo as an independent reader.
//
// Every helper takes a testing.TB, registers its cleanup with t.Cleanup, and
// fails the test (never skips it) when a program is missing: in CI nothing
// may skip. scripts/install-deps.sh installs the programs.
//
// Servers listen on 127.0.0.1 only, on ports the server itself picks (port 0),
// and are stopped by the test that started them.
package testenv

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// installHint is appended to every "program missing" failure.
const installHint = "run scripts/install-deps.sh (or make deps) to install the test dependencies"

// RequireBinary returns the path of the program name found on PATH, and fails
// the test when it is absent.
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("testenv: %s not found: %v; %s", name, err, installHint)
	}
	return p
}

// requireFile fails the test when the file at path does not exist.
func requireFile(t testing.TB, path string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("testenv: %s not found: %v; %s", path, err, installHint)
	}
	return path
}

// tailFile returns the last n lines of the file at path, or a note saying why
// it could not be read.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(cannot read " + path + ": " + err.Error() + ")"
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// poll calls cond every interval until it returns true or timeout passes; it
// reports whether cond succeeded.
func poll(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}
