package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestUsageErrors: a usage error exits 2 with a plain "Error: ..." line
// and where to read the usage; a failure exits 1 with a plain line; neither
// is a log line.
func TestUsageErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.tar")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr []string
	}{
		{"unknown command", []string{"biuld"}, exitUsage, []string{`Error: unknown command "biuld" for "ferry"`, "Did you mean this?\n\tbuild", "Run 'ferry --help' for usage."}},
		{"unknown flag", []string{"build", "--bogus"}, exitUsage, []string{"Error: unknown flag: --bogus", "Run 'ferry build --help' for usage."}},
		{"missing argument", []string{"inspect"}, exitUsage, []string{"Error: accepts 1 arg(s), received 0", "Run 'ferry inspect --help' for usage."}},
		{"bad flag value", []string{"verify", "x.tar", "--jobs", "many"}, exitUsage, []string{`Error: invalid argument "many"`, "Run 'ferry verify --help' for usage."}},
		{"bad log level", []string{"inspect", "x.tar", "--log-level", "loud"}, exitUsage, []string{"Error: --log-level", "Run 'ferry inspect --help' for usage."}},
		{"failure", []string{"inspect", missing}, exitFailure, []string{"Error: open bundle: ", missing}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runFerry(t, "", tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			for _, s := range tc.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q", s)
				}
			}
			if !strings.HasPrefix(stderr, "Error: ") || strings.Contains(stderr, "level=") || strings.Contains(stderr, "msg=") {
				t.Errorf("stderr is not a plain Error: line")
			}
			if tc.code == exitFailure && strings.Contains(stderr, "--help") {
				t.Errorf("a failure is not a usage error")
			}
			if t.Failed() {
				t.Logf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
			}
		})
	}
}

// TestVersion: ferry version and ferry --version print the module version,
// the VCS commit (when built with it) and the Go version.
func TestVersion(t *testing.T) {
	code, out, stderr := runFerry(t, "", "version")
	want := readVersion()
	if code != exitOK || !strings.HasPrefix(out, "ferry "+want.Version+", ") || !strings.Contains(out, runtime.Version()) {
		t.Fatalf("ferry version: exit %d, %q, %q", code, out, stderr)
	}
	if want.Commit == "" && !strings.Contains(out, "commit unknown") || want.Commit != "" && !strings.Contains(out, "commit "+want.Commit) {
		t.Errorf("ferry version %q does not say the commit %q", out, want.Commit)
	}
	code, flagOut, _ := runFerry(t, "", "--version")
	if code != exitOK || flagOut != out {
		t.Errorf("ferry --version: exit %d, %q, want %q", code, flagOut, out)
	}
	code, jsonOut, _ := runFerry(t, "", "version", "-o", "json")
	var v versionInfo
	if err := json.Unmarshal([]byte(jsonOut), &v); err != nil || code != exitOK || v != want {
		t.Errorf("ferry version -o json: exit %d, %v, %+v, want %+v", code, err, v, want)
	}
}

// TestVersionInstalled: the ferry that `make install` puts in PREFIX/bin
// names the commit it was built from when built in a git clone.
func TestVersionInstalled(t *testing.T) {
	bin, err := ferryBinary()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "version", "-o", "json").Output()
	var v versionInfo
	if err != nil || json.Unmarshal(out, &v) != nil || v.GoVersion != runtime.Version() || v.Version == "" {
		t.Fatalf("%s version -o json: %v, %s", bin, err, out)
	}
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("not in a git checkout: %v", err)
	}
	// Go stamps the commit in a clone (.git a directory), not in a git
	// worktree (.git a file).
	if fi, err := os.Stat(filepath.Join(strings.TrimSpace(string(top)), ".git")); err == nil && fi.IsDir() {
		head, err := exec.Command("git", "rev-parse", "HEAD").Output()
		if err != nil || v.Commit != strings.TrimSpace(string(head)) {
			t.Errorf("commit %q, want HEAD %s (%v)", v.Commit, head, err)
		}
	} else if v.Commit != "" {
		t.Errorf("commit %q in a worktree", v.Commit)
	}
}
