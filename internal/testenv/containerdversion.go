package testenv

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ContainerdVersion is a containerd release line the tests run against.
type ContainerdVersion int

const (
	// Containerd1 is Debian's containerd 1.6 (containerd, ctr and the shim
	// on PATH), the oldest still in use; its config is version 2.
	Containerd1 ContainerdVersion = 1
	// Containerd2 is the containerd 2.x that scripts/install-deps.sh builds
	// into Containerd2Dir; its config is version 3.
	Containerd2 ContainerdVersion = 2
)

// ContainerdVersions are the release lines a containerd test runs on.
var ContainerdVersions = []ContainerdVersion{Containerd1, Containerd2}

// String names the version for subtests: "containerd1", "containerd2".
func (v ContainerdVersion) String() string { return fmt.Sprintf("containerd%d", int(v)) }

// containerd2Version is the containerd 2.x module version that
// scripts/install-deps.sh builds (it reads the same file).
//
//go:embed containerd2.version
var containerd2Version string

// Containerd2Dir returns the directory holding the containerd 2.x binaries
// that scripts/install-deps.sh builds:
// ${XDG_CACHE_HOME:-$HOME/.cache}/ferry/containerd-VERSION/bin.
func Containerd2Dir() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	v := strings.TrimPrefix(strings.TrimSpace(containerd2Version), "v")
	return filepath.Join(cache, "ferry", "containerd-"+v, "bin"), nil
}

// ContainerdBins are the programs of one containerd release line.
type ContainerdBins struct {
	Containerd, Ctr, Shim string
}

// ContainerdBinaries returns the programs of version v, failing the test
// (naming scripts/install-deps.sh) when one is missing. This is the one
// place the tests find containerd.
func ContainerdBinaries(t testing.TB, v ContainerdVersion) ContainerdBins {
	t.Helper()
	switch v {
	case Containerd1:
		return ContainerdBins{
			Containerd: RequireBinary(t, "containerd"),
			Ctr:        RequireBinary(t, "ctr"),
			Shim:       RequireBinary(t, "containerd-shim-runc-v2"),
		}
	case Containerd2:
		dir, err := Containerd2Dir()
		if err != nil {
			t.Fatalf("testenv: containerd 2.x: %v", err)
		}
		return ContainerdBins{
			Containerd: requireFile(t, filepath.Join(dir, "containerd")),
			Ctr:        requireFile(t, filepath.Join(dir, "ctr")),
			Shim:       requireFile(t, filepath.Join(dir, "containerd-shim-runc-v2")),
		}
	}
	t.Fatalf("testenv: no containerd release line %d", int(v))
	return ContainerdBins{}
}
