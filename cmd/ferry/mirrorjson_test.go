package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMirrorConfigJSON: mirror-config -o json prints the files as JSON,
// whether it prints them or writes them.
func TestMirrorConfigJSON(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"mirror-config", "-o", "json", "--server", "https://10.0.0.5:5000", "--ca", ca, "--mirror", "docker.io", "--mirror", "quay.io"}
	for _, tc := range []struct {
		name    string
		args    []string
		written bool
	}{
		{"printed", args, false},
		{"written", append(args, "--dir", filepath.Join(dir, "certs.d")), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runFerry(t, "", tc.args...)
			var files []mirrorFile
			if err := json.Unmarshal([]byte(stdout), &files); err != nil || code != exitOK {
				t.Fatalf("exit %d, %v:\n%s\n%s", code, err, stdout, stderr)
			}
			configs := 0
			for _, f := range files {
				if f.Written != tc.written {
					t.Errorf("%s: written %v", f.Path, f.Written)
				}
				if f.CA {
					continue
				}
				configs++
				if !strings.HasSuffix(f.Path, "/hosts.toml") || !strings.Contains(f.Content, `[host."https://10.0.0.5:5000"]`) {
					t.Errorf("%s:\n%s", f.Path, f.Content)
				}
				if tc.written {
					if onDisk, err := os.ReadFile(f.Path); err != nil || string(onDisk) != f.Content {
						t.Errorf("%s on disk differs: %v", f.Path, err)
					}
				}
			}
			if configs != 2 {
				t.Errorf("%d hosts.toml files, want 2: %+v", configs, files)
			}
		})
	}
}
