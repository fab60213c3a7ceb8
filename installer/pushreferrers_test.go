package installer_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/installer"
	"github.com/ferry-oci/ferry/internal/remote"
	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
	"github.com/ferry-oci/ferry/manifests"
)

// tags lists the tags of repo in reg with skopeo.
func tags(t *testing.T, reg *testenv.RegistryServer, repo string) []string {
	t.Helper()
	out := testenv.Skopeo(t, append(append([]string{"list-tags"}, reg.SkopeoFlags("")...), "docker://"+reg.Ref(repo))...)
	var list struct{ Tags []string }
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("skopeo list-tags %s: %v", repo, err)
	}
	return list.Tags
}

// TestPushReferrers pushes a bundle that ferry build made from cosign-signed
// images with an oras SBOM. Into a docker-registry (no referrers API):
// --referrers=none leaves them all out; then they follow their subjects
// with digests unchanged, the referrers tag schema index of a subject
// keeps the entry someone else put there, cosign's tag-scheme tags are
// pushed as tags, and cosign verify and oras discover (through the tag
// schema) find them. Into ferry serve (referrers API): the same through
// the API, and no referrers tag is written.
func TestPushReferrers(t *testing.T) {
	sb := testbundle.BuildSigned(t)
	fix := sb.Fixture
	r := testbundle.Open(t, sb.Path)
	single := sb.Name(testimages.SingleRef)

	t.Run("docker-registry", func(t *testing.T) {
		reg := testenv.Registry(t)
		o := pushOptions(reg, reg.Host, "mirror")
		o.Referrers = manifests.ReferrersNone
		res := mustPush(t, r, o)
		if img := image(t, res, single); img.Referrers != 0 {
			t.Errorf("--referrers=none: %d referrers of %s pushed", img.Referrers, single)
		}
		if found := testimages.Discover(t, reg, reg.Ref("mirror/library/single@"+fix.Single.String()), false); len(found) != 0 {
			t.Errorf("--referrers=none: the target lists referrers %v", found)
		}
		if got := tags(t, reg, "mirror/library/signed"); !slices.Equal(got, []string{"1"}) {
			t.Errorf("--referrers=none: tags of library/signed %v, want only 1", got)
		}

		// Someone else's referrer, in the referrers tag schema index.
		foreign := testimages.Attach(t, reg, "mirror/library/single", fix.Single, "application/vnd.example.foreign",
			testimages.File{Name: "note.txt", MediaType: "text/plain", Content: []byte("attached in the target")})
		o.Referrers = manifests.ReferrersAll
		res = mustPush(t, r, o)
		for ref, want := range map[string]int{single: 3, sb.Name(testimages.SignedIndexRef): 3, sb.Name(testimages.UnsignedRef): 0} {
			if img := image(t, res, ref); img.Referrers != want || img.DigestChanged() {
				t.Errorf("%s: %d referrers pushed (want %d), digest %s from %s", ref, img.Referrers, want, img.Digest, img.SourceDigest)
			}
		}
		found := testimages.Discover(t, reg, reg.Ref("mirror/library/single@"+fix.Single.String()), false)
		if found[fix.SBOM] != testimages.ArtifactTypeSPDX || found[foreign] == "" || len(found) != 4 {
			t.Errorf("oras discover in the target: %v, want the SBOM %s, its signature, the image's and %s", found, fix.SBOM, foreign)
		}
		schema, err := manifests.ParseIndex(inspectRaw(t, reg, "mirror/library/single:"+manifests.ReferrersTag(fix.Single)))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(schema.Manifests, func(d ocispec.Descriptor) bool { return d.Digest == foreign }) || len(schema.Manifests) != 3 {
			t.Errorf("referrers tag schema index of %s: %v, want the foreign entry and ferry's two", fix.Single, schema.Manifests)
		}
		sigTag := manifests.CosignTag(fix.Index, manifests.CosignSignatureSuffix)
		if got := tags(t, reg, "mirror/library/signed"); !slices.Contains(got, sigTag) {
			t.Errorf("tags of library/signed %v, want cosign's %s", got, sigTag)
		}
		fix.CheckSigned(t, reg, "mirror")
		if res := mustPush(t, r, o); res.Stats.Copied != 0 {
			t.Errorf("second push sent %d blobs, want none", res.Stats.Copied)
		}
	})

	t.Run("ferry serve", func(t *testing.T) {
		reg := &testenv.RegistryServer{Host: serveWritable(t)}
		o := installer.PushOptions{To: reg.Host + "/mirror", Options: remote.Options{PlainHTTP: true, Keychain: authn.NewMultiKeychain()}}
		mustPush(t, r, o)
		found := testimages.Discover(t, reg, reg.Ref("mirror/library/single@"+fix.Single.String()), true)
		if found[fix.SBOM] != testimages.ArtifactTypeSPDX || len(found) != 3 {
			t.Errorf("oras discover through ferry serve's referrers API: %v, want the SBOM %s and two signatures", found, fix.SBOM)
		}
		for _, tag := range tags(t, reg, "mirror/library/single") {
			if strings.HasPrefix(tag, "sha256-") {
				t.Errorf("referrers tag %s written into a registry with the referrers API", tag)
			}
		}
		fix.CheckSigned(t, reg, "mirror")
	})
}
