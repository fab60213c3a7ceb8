package testimages

import (
	"encoding/json"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-oci/ferry/internal/testenv"
)

// Discover lists the referrers of ref (a full reference into reg), at every
// depth, with `oras discover`, as digest -> artifactType. apiOnly makes
// oras use the referrers API only; otherwise it falls back to the
// referrers tag schema on a registry without the API.
func Discover(t testing.TB, reg *testenv.RegistryServer, ref string, apiOnly bool) map[digest.Digest]string {
	t.Helper()
	args := []string{"discover", "--format", "json"}
	if apiOnly {
		args = append(args, "--distribution-spec", "v1.1-referrers-api")
	}
	out := Oras(t, "", OrasFlags(reg, append(args, ref)...)...)
	var tree any
	if err := json.Unmarshal([]byte(out), &tree); err != nil {
		t.Fatalf("testimages: oras discover %s: %v: %s", ref, err, out)
	}
	found := map[digest.Digest]string{}
	var walk func(v any, top bool)
	walk = func(v any, top bool) {
		switch x := v.(type) {
		case map[string]any:
			if d, ok := x["digest"].(string); ok && !top {
				found[digest.Digest(d)], _ = x["artifactType"].(string)
			}
			for _, c := range x {
				walk(c, false)
			}
		case []any:
			for _, c := range x {
				walk(c, false)
			}
		}
	}
	walk(tree, true)
	return found
}

// CheckSigned runs cosign verify against reg, under the repository prefix
// (none when empty), on every manifest the fixture signed: with the
// signing key it must pass, with the other key fail.
func (f *SignedFixture) CheckSigned(t testing.TB, reg *testenv.RegistryServer, prefix string) {
	t.Helper()
	if prefix != "" {
		prefix += "/"
	}
	for _, tc := range []struct {
		repo string
		dgst digest.Digest
		mode SignMode
	}{
		{repoOf(SignedIndexRef), f.Index, TagScheme},
		{repoOf(SignedIndexRef), f.Amd64, Referrer},
		{repoOf(SingleRef), f.Single, Referrer},
		{repoOf(SingleRef), f.SBOM, Referrer},
	} {
		ref := reg.Ref(prefix + tc.repo + "@" + tc.dgst.String())
		if err := CosignVerify(t, reg, f.Key.Pub, ref, tc.mode); err != nil {
			t.Errorf("cosign verify %s: %v", ref, err)
		}
		if err := CosignVerify(t, reg, f.Other.Pub, ref, tc.mode); err == nil {
			t.Errorf("cosign verify %s with another key passed", ref)
		}
	}
}
