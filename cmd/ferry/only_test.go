package main

import (
	"strings"
	"testing"
)

// TestOnlyFlag: push's image filter is --only (build's --image is a
// source); its glob's * crosses /, a pattern that matches nothing is named
// with the images there are, and the old --image still works, with a
// deprecation notice.
func TestOnlyFlag(t *testing.T) {
	path, _ := pushTestBundle(t)
	push := []string{"push", path, "--to", "reg.invalid/mirror", "--dry-run"}
	for _, tc := range []struct {
		name           string
		args           []string
		code           int
		stdout, stderr []string
	}{
		{"* crosses /", []string{"--only", "docker.io/*"}, exitOK, []string{"would push docker.io/library/list:1", "would push docker.io/library/multi:1"}, nil},
		{"short form", []string{"--only", "multi"}, exitOK, []string{"would push docker.io/library/multi:1", "1 images would be pushed"}, nil},
		{"unmatched pattern named", []string{"--only", "multi", "--only", "quay.io/*"}, exitFailure, nil,
			[]string{"quay.io/*", "docker.io/library/list:1"}},
		{"old spelling", []string{"--image", "multi"}, exitOK, []string{"1 images would be pushed"}, []string{"--image is deprecated here: use --only"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runFerry(t, "", append(push, tc.args...)...)
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			for _, s := range tc.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q", s)
				}
			}
			for _, s := range tc.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q", s)
				}
			}
			if t.Failed() {
				t.Logf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
			}
		})
	}
}
