package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-oci/ferry/internal/testenv"
)

// TestInstallFailedVerifyOnce: a failed verify stops install, and its
// problem is printed once (the log line of the step), with the step named
// in the table and in the Error line.
func TestInstallFailedVerifyOnce(t *testing.T) {
	good, _ := pushTestBundle(t)
	bad := filepath.Join(t.TempDir(), "bad.tar")
	layer := corruptLargestBlob(t, good, bad)
	code, stdout, stderr := runFerry(t, "", "install", bad, "--verify", "full", "--serve", "127.0.0.1:0", "--plain-http", "--no-serve")
	if code != exitFailure {
		t.Fatalf("exit %d", code)
	}
	if n := strings.Count(stdout+stderr, layer.String()); n != 1 {
		t.Errorf("the bad blob is printed %d times, want once:\nstdout:\n%s\nstderr:\n%s", n, stdout, stderr)
	}
	if !strings.Contains(stdout, "FAILED") || !strings.Contains(stderr, "Error: install: verify failed\n") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
}

// TestInstallTerminalServing: on a terminal, install ends its progress
// bars once the steps are done, says it serves until interrupted, and
// then prints nothing more until ^C, which stops it with exit 0.
func TestInstallTerminalServing(t *testing.T) {
	path, _ := pushTestBundle(t)
	reg := testenv.Registry(t)
	ready := filepath.Join(t.TempDir(), "ready")
	run := startPTY(t, "install", path, "--serve", "127.0.0.1:0", "--plain-http", "--ready-file", ready,
		"--push-to", reg.Host+"/seed", "--push-plain-http")
	run.waitFor(t, "ready file", func() bool { _, err := os.Stat(ready); return err == nil })
	time.Sleep(300 * time.Millisecond) // the last frame of the bars
	settled := run.out.String()
	if !strings.Contains(settled, "until interrupted") {
		t.Errorf("install does not say it serves until interrupted:\n%s", settled)
	}
	time.Sleep(time.Second)
	if more := strings.TrimPrefix(run.out.String(), settled); more != "" {
		t.Errorf("install keeps drawing while it serves: %q", more)
	}
	run.ctrlC(t)
	if code, out := run.waitExit(t, stopWithin); code != exitOK {
		t.Errorf("exit %d after ^C while serving:\n%s", code, out)
	}
}
