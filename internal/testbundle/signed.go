package testbundle

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ferry-oci/ferry/bundle/build"
	"github.com/ferry-oci/ferry/internal/remote"
	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
	"github.com/ferry-oci/ferry/manifests/imagelist"
)

// Signed is a bundle that ferry build made from a docker-registry filled
// by testimages.FillSigned: signed images with their signatures,
// attestation and SBOM, a Helm chart, an artifact and an unsigned image.
type Signed struct {
	// Path is the bundle.
	Path string
	// Source is the registry it was built from; Fixture what is in it.
	Source  *testenv.RegistryServer
	Fixture *testimages.SignedFixture
}

// SignedRefs are the fixture references (repository:tag) in a Signed bundle.
var SignedRefs = []string{testimages.SignedIndexRef, testimages.SingleRef, testimages.ChartRef, testimages.WasmRef, testimages.UnsignedRef}

// BuildSigned fills a new docker-registry with the trust fixtures and
// builds every one of them, referrers included, into a bundle.
func BuildSigned(t testing.TB) *Signed {
	t.Helper()
	reg := testenv.Registry(t)
	s := &Signed{Path: filepath.Join(t.TempDir(), "signed.tar"), Source: reg, Fixture: testimages.FillSigned(t, reg)}
	list := &imagelist.List{}
	var refs []string
	for _, r := range SignedRefs {
		refs = append(refs, s.Name(r))
	}
	if err := list.AddRefs(refs); err != nil {
		t.Fatalf("testbundle: %v", err)
	}
	opts := build.Options{List: list, Output: s.Path, Registry: remote.Options{PlainHTTP: true}}
	if _, err := build.Build(context.Background(), opts); err != nil {
		t.Fatalf("testbundle: build the signed fixtures: %v", err)
	}
	return s
}

// Name is the bundle's name of a fixture reference ("library/signed:1"):
// the source registry's host, then the reference.
func (s *Signed) Name(ref string) string { return s.Source.Ref(ref) }
