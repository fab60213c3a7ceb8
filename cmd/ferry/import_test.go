package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-oci/ferry/installer/containerd"
	"github.com/ferry-oci/ferry/internal/testenv"
)

func TestImportCommand(t *testing.T) {
	path, digests := pushTestBundle(t)
	ctd := testenv.Containerd(t)
	missing := filepath.Join(t.TempDir(), "containerd.sock")
	at := func(ns string, args ...string) []string {
		return append([]string{"import", path, "--address", ctd.Address, "--namespace", ns}, args...)
	}

	for _, tc := range []struct {
		name           string
		args           []string
		code           int
		stdout, stderr []string // substrings
		check          func(t *testing.T, stdout string)
	}{
		{name: "no bundle", args: []string{"import"}, code: exitUsage},
		{name: "bad platform", args: at("cli", "--platform", "linux"), code: exitUsage, stderr: []string{"invalid platform"}},
		{name: "empty pattern", args: at("cli", "--only", ""), code: exitUsage},
		{name: "no containerd", args: []string{"import", path, "--address", missing}, code: exitFailure,
			stderr: []string{missing, "is containerd running?"}},
		{name: "unknown snapshotter", args: at("cli", "--snapshotter", "nosuch"), code: exitFailure,
			stderr: []string{"nosuch", "--snapshotter"}},
		{name: "glob matches nothing", args: at("cli", "--only", "nosuch/*"), code: exitFailure, stderr: []string{"nosuch/*"}},
		{name: "json", args: at("cli", "-o", "json"), code: exitOK, check: func(t *testing.T, stdout string) {
			var res containerd.ImportResult
			if err := json.Unmarshal([]byte(stdout), &res); err != nil {
				t.Fatalf("-o json: %v:\n%s", err, stdout)
			}
			if len(res.Images) != 2 || res.BlobsWritten == 0 || res.BytesWritten == 0 || res.Namespace != "cli" || res.Snapshotter != "overlayfs" {
				t.Fatalf("summary %+v", res)
			}
			for _, img := range res.Images {
				key := strings.TrimSuffix(strings.TrimPrefix(img.Name, "docker.io/library/"), ":1")
				if img.Digest != digests[key] || img.Record != containerd.RecordCreated || !img.Unpacked || strings.Join(img.Platforms, ",") != "linux/amd64" {
					t.Errorf("image %+v", img)
				}
			}
		}},
		{name: "text re-import", args: at("cli"), code: exitOK,
			stdout: []string{multiName, listName, digests["multi"].String(), "unchanged unpacked", "2 images", "0 blobs written", "linux/amd64 unpacked into overlayfs"}},
		{name: "all platforms no unpack one image", args: at("cli2", "--all-platforms", "--no-unpack", "--only", "library/multi"), code: exitOK,
			stdout: []string{multiName + " " + digests["multi"].String() + " linux/amd64,linux/arm64 created not unpacked", "1 images", "platform all"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runFerry(t, "", tc.args...)
			if code != tc.code {
				t.Fatalf("ferry %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(tc.args, " "), code, tc.code, stdout, stderr)
			}
			for _, s := range tc.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			for _, s := range tc.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
			if tc.check != nil {
				tc.check(t, stdout)
			}
		})
	}
}
