package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/internal/testbundle"
)

// deltaBundles writes testbundle.Releases as full bundles v1 and v2 and
// the delta of v2 over v1, and returns their paths.
func deltaBundles(t *testing.T) (v1, v2, delta string) {
	t.Helper()
	dir := t.TempDir()
	v1Imgs, v2Imgs := testbundle.Releases(t)
	v1 = testbundle.Write(t, filepath.Join(dir, "v1.tar"), v1Imgs)
	v2 = testbundle.Write(t, filepath.Join(dir, "v2.tar"), v2Imgs)
	base, err := bundle.Open(t.Context(), v1)
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	delta = filepath.Join(dir, "delta.tar")
	testbundle.WriteOpts(t, delta, v2Imgs, bundle.WriteOptions{Base: base})
	return v1, v2, delta
}

func TestDeltaInspectVerifyMerge(t *testing.T) {
	v1, v2, delta := deltaBundles(t)
	base, err := bundle.Open(t.Context(), v1)
	if err != nil {
		t.Fatal(err)
	}
	baseDigest := base.Digest().String()
	base.Close()

	code, out, stderr := runFerry(t, "", "inspect", "-o", "json", delta)
	var rep bundle.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitOK {
		t.Fatalf("inspect: exit %d, %v:\n%s%s", code, err, out, stderr)
	}
	if rep.Delta == nil || len(rep.Delta.Bases) != 1 || rep.Delta.Bases[0].String() != baseDigest || rep.Delta.BorrowedBytes == 0 {
		t.Errorf("inspect: delta %+v, want base %s and borrowed bytes", rep.Delta, baseDigest)
	}
	code, out, stderr = runFerry(t, "", "inspect", delta)
	if code != exitOK || !strings.Contains(out, "delta of "+baseDigest) || !strings.Contains(out, "borrows") {
		t.Errorf("inspect: exit %d:\n%s%s", code, out, stderr)
	}

	code, out, stderr = runFerry(t, "", "verify", delta)
	if code != exitOK || !strings.Contains(out, "borrowed from its base "+baseDigest) {
		t.Errorf("verify delta: exit %d:\n%s%s", code, out, stderr)
	}
	code, out, stderr = runFerry(t, "", "verify", "--base", v1, delta)
	if code != exitOK || strings.Contains(out, "borrowed") || !strings.Contains(out, "0 problem(s)") {
		t.Errorf("verify --base: exit %d:\n%s%s", code, out, stderr)
	}

	full := filepath.Join(t.TempDir(), "full.tar")
	code, out, stderr = runFerry(t, "", "merge", v1, delta, "-b", full)
	if code != exitOK {
		t.Fatalf("merge: exit %d:\n%s%s", code, out, stderr)
	}
	got, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(v2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("merged bundle (%d bytes) differs from the full build (%d bytes)", len(got), len(want))
	}
}

func TestDeltaCommandErrors(t *testing.T) {
	v1, v2, delta := deltaBundles(t)
	out := filepath.Join(t.TempDir(), "full.tar")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"merge without base", []string{"merge", delta, "-b", out}, exitUsage, "give the base"},
		{"merge without -b", []string{"merge", v1, delta}, exitUsage, "-b/--bundle"},
		{"merge on the wrong base", []string{"merge", v2, delta, "-b", out}, exitFailure, "not the delta's base"},
		{"merge base after delta", []string{"merge", delta, v1, "-b", out}, exitFailure, "a delta bundle needs its base"},
		{"merge of a full bundle", []string{"merge", v1, v2, "-b", out}, exitFailure, "not a delta bundle"},
		{"verify on the wrong base", []string{"verify", "--base", v2, delta}, exitFailure, "not the delta's base"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runFerry(t, "", tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, want %d with %q; stdout:\n%s\nstderr:\n%s", code, tc.code, tc.want, stdout, stderr)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("%s written: %v", out, err)
			}
		})
	}
}
