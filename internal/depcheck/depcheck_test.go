// Package depcheck keeps the CLI's dependencies out of ferry's library
// packages, as go-containerregistry's pkg/registry/depcheck_test.go does.
package depcheck

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// libraries are the packages other programs may import.
var libraries = []string{
	"manifests", "manifests/imagelist", "internal/transfer", "internal/remote",
	"bundle", "bundle/build", "registry", "installer", "installer/containerd",
}

// cliOnly are the modules only cmd/ferry may import directly.
var cliOnly = []string{"github.com/spf13/cobra", "github.com/spf13/pflag", "github.com/sirupsen/logrus", "github.com/vbauerster/mpb"}

func TestLibrariesDoNotImportTheCLI(t *testing.T) {
	for _, lib := range libraries {
		t.Run(lib, func(t *testing.T) {
			pkg := listPackage(t, "github.com/ferry-oci/ferry/"+lib)
			for _, imp := range pkg.Imports {
				for _, bad := range cliOnly {
					if strings.HasPrefix(imp, bad) {
						t.Errorf("%s imports %s: only cmd/ferry may", lib, imp)
					}
				}
			}
			// logrus comes in through distribution; cobra must never.
			if slices.ContainsFunc(pkg.Deps, func(d string) bool { return strings.HasPrefix(d, "github.com/spf13/cobra") }) {
				t.Errorf("%s depends on cobra", lib)
			}
		})
	}
}

type goPackage struct {
	Imports, Deps []string
}

func listPackage(t *testing.T, path string) goPackage {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", path).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", path, err)
	}
	var p goPackage
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	return p
}
