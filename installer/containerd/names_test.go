package containerd_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-oci/ferry/installer/containerd"
	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
	"github.com/ferry-oci/ferry/manifests"
)

// TestImportRefusesInvalidName imports a bundle naming one image
// ../../../etc/passwd into a real containerd: that image is refused,
// naming it, and gets no record; the other is imported.
func TestImportRefusesInvalidName(t *testing.T) {
	const bad, good = "../../../etc/passwd", "example.com/ok:1"
	ctd := testenv.Containerd(t)
	r := testbundle.Open(t, testbundle.Write(t, filepath.Join(t.TempDir(), "b.tar"), map[string]testbundle.Image{
		bad:  testimages.Image(t, nodePlatform),
		good: testimages.Image(t, nodePlatform),
	}))
	_, err := containerd.Import(context.Background(), r, containerd.ImportOptions{Address: ctd.Address, Namespace: "names", NoUnpack: true})
	if !errors.Is(err, manifests.ErrInvalidReference) || !strings.Contains(err.Error(), bad) {
		t.Fatalf("import: %v, want ErrInvalidReference naming %s", err, bad)
	}
	recorded := ctrImages(t, ctd, "names")
	if _, ok := recorded[good]; !ok {
		t.Errorf("import did not record %s", good)
	}
	for name := range recorded {
		if !strings.HasPrefix(name, "example.com/ok") {
			t.Errorf("import recorded %q", name)
		}
	}
}
