package build_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/bundle/build"
	"github.com/ferry-oci/ferry/bundle/signature"
	"github.com/ferry-oci/ferry/internal/remote"
	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
	"github.com/ferry-oci/ferry/manifests"
	"github.com/ferry-oci/ferry/manifests/imagelist"
)

// signedBuild is a registry filled by testimages.FillSigned and a way to
// build bundles from it.
type signedBuild struct {
	reg *testenv.RegistryServer
	fix *testimages.SignedFixture
}

func newSignedBuild(t *testing.T) *signedBuild {
	reg := testenv.Registry(t)
	return &signedBuild{reg: reg, fix: testimages.FillSigned(t, reg)}
}

// name is the bundle name of a fixture ref ("library/signed:1").
func (s *signedBuild) name(ref string) string { return s.reg.Ref(ref) }

// build builds the fixture refs into a bundle in a temp dir.
func (s *signedBuild) build(t *testing.T, refs []string, mutate ...func(*build.Options)) (string, error) {
	t.Helper()
	list := &imagelist.List{}
	var full []string
	for _, r := range refs {
		full = append(full, s.name(r))
	}
	if err := list.AddRefs(full); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "bundle.tar")
	opts := build.Options{List: list, Output: out, Registry: remote.Options{PlainHTTP: true}}
	for _, m := range mutate {
		m(&opts)
	}
	_, err := build.Build(context.Background(), opts)
	return out, err
}

var allFixtureRefs = []string{testimages.SignedIndexRef, testimages.SingleRef, testimages.ChartRef, testimages.WasmRef, testimages.UnsignedRef}

// referrerSet maps a bundle's referrers by digest.
func referrerSet(r *bundle.Reader) map[digest.Digest]bundle.Referrer {
	out := map[digest.Digest]bundle.Referrer{}
	for _, ref := range r.Referrers() {
		out[ref.Descriptor.Digest] = ref
	}
	return out
}

// TestBuildCarriesReferrers builds signed images, an SBOM and its
// signature, a Helm chart and an artifact from a docker-registry
// (distribution 2.8: no referrers API) and checks the bundle: every
// referrer is there under its image with its subject, artifacts keep
// their digests, verify and inspect see them, oras discovers them in the
// extracted layout, containerd's import still takes the bundle, a rebuild
// from the bundle is byte-identical, and cosign signatures verify offline.
func TestBuildCarriesReferrers(t *testing.T) {
	ctx := context.Background()
	s := newSignedBuild(t)
	f := s.fix
	path, err := s.build(t, allFixtureRefs)
	if err != nil {
		t.Fatal(err)
	}
	r := testbundle.Open(t, path)

	for ref, want := range map[string]digest.Digest{
		testimages.SignedIndexRef: f.Index, testimages.SingleRef: f.Single,
		testimages.ChartRef: f.Chart, testimages.WasmRef: f.Wasm, testimages.UnsignedRef: f.Unsigned,
	} {
		img, err := r.Image(s.name(ref))
		if err != nil || img.Descriptor.Digest != want {
			t.Errorf("%s: %v %v, want digest %s", ref, img.Descriptor.Digest, err, want)
		}
	}

	refs := r.Referrers()
	byImage := map[string][]string{}
	for _, ref := range refs {
		kind := "referrer"
		if ref.Tag != "" {
			kind = ref.Tag[len(ref.Tag)-4:]
		}
		byImage[ref.Image] = append(byImage[ref.Image], kind+" of "+ref.Subject.String()+" "+ref.Descriptor.ArtifactType)
	}
	sig := manifests.ArtifactTypeCosignSignature
	for ref, want := range map[string][]string{
		testimages.SignedIndexRef: {
			".sig of " + f.Index.String() + " " + sig,
			".att of " + f.Index.String() + " application/vnd.dsse.envelope.v1+json",
			"referrer of " + f.Amd64.String() + " " + sig,
		},
		testimages.SingleRef: {
			"referrer of " + f.Single.String() + " " + sig,
			"referrer of " + f.Single.String() + " " + testimages.ArtifactTypeSPDX,
			"referrer of " + f.SBOM.String() + " " + sig,
		},
	} {
		got := byImage[s.name(ref)]
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("referrers of %s:\n got %q\nwant %q", ref, got, want)
		}
	}
	if len(refs) != 6 {
		t.Errorf("bundle has %d referrers, want 6: %+v", len(refs), refs)
	}

	if _, err := bundle.Verify(ctx, r, bundle.VerifyOptions{Full: true}); err != nil {
		t.Errorf("verify: %v", err)
	}
	rep, err := bundle.Inspect(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range rep.Images {
		if want := len(r.ReferrersOf(img.Name)); len(img.Referrers) != want {
			t.Errorf("inspect %s: %d referrers, want %d", img.Name, len(img.Referrers), want)
		}
	}

	t.Run("oras discover in the layout", func(t *testing.T) {
		dir := testbundle.Untar(t, path)
		out := testimages.Oras(t, "", "discover", "--format", "json", "--oci-layout", dir+"@"+f.Single.String())
		var tree struct {
			Referrers []struct {
				Digest       digest.Digest `json:"digest"`
				ArtifactType string        `json:"artifactType"`
				Referrers    []struct {
					ArtifactType string `json:"artifactType"`
				} `json:"referrers"`
			} `json:"referrers"`
		}
		if err := json.Unmarshal([]byte(out), &tree); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		var sbomSigs []string
		for _, ref := range tree.Referrers {
			if ref.Digest == f.SBOM {
				for _, rr := range ref.Referrers {
					sbomSigs = append(sbomSigs, rr.ArtifactType)
				}
			}
		}
		if len(tree.Referrers) != 2 || !slices.Equal(sbomSigs, []string{sig}) {
			t.Errorf("oras discover --oci-layout: %s", out)
		}
	})

	t.Run("containerd import skips the referrers", func(t *testing.T) {
		// images only: containerd cannot unpack a Helm chart
		images := []string{testimages.SignedIndexRef, testimages.SingleRef, testimages.UnsignedRef}
		path, err := s.build(t, images)
		check(t, err)
		c := testenv.Containerd(t)
		c.Ctr(t, "-n", "ferry", "images", "import", "--all-platforms", path)
		listed := c.Ctr(t, "-n", "ferry", "images", "ls", "-q")
		for _, ref := range images {
			if !strings.Contains(listed, s.name(ref)) {
				t.Errorf("ctr images ls lacks %s:\n%s", ref, listed)
			}
		}
		if strings.Contains(listed, "sha256-") {
			t.Errorf("ctr imported a cosign tag as an image:\n%s", listed)
		}
	})

	t.Run("rebuild from the bundle is byte-identical", func(t *testing.T) {
		list := &imagelist.List{Images: []imagelist.Spec{{Source: manifests.Source{Kind: manifests.SourceOCIArchive, Path: path}}}}
		out := filepath.Join(t.TempDir(), "again.tar")
		if _, err := build.Build(ctx, build.Options{List: list, Output: out}); err != nil {
			t.Fatal(err)
		}
		if !sameFile(t, path, out) {
			t.Errorf("a bundle rebuilt from %s differs", path)
		}
	})

	t.Run("a delta merged with its base keeps the referrers", func(t *testing.T) {
		dir := t.TempDir()
		sources := func(names ...string) []bundle.Source {
			var out []bundle.Source
			for _, n := range names {
				img, err := r.Image(s.name(n))
				check(t, err)
				out = append(out, bundle.Source{Name: img.Name, Root: img.Descriptor, Fetcher: r, Referrers: r.ReferrersOf(img.Name)})
			}
			return out
		}
		basePath := filepath.Join(dir, "base.tar")
		_, err := bundle.Write(ctx, basePath, sources(testimages.SingleRef), bundle.WriteOptions{})
		check(t, err)
		base := testbundle.Open(t, basePath)
		deltaPath := filepath.Join(dir, "delta.tar")
		_, err = bundle.Write(ctx, deltaPath, sources(allFixtureRefs...), bundle.WriteOptions{Base: base})
		check(t, err)
		merged := filepath.Join(dir, "merged.tar")
		_, err = bundle.Merge(ctx, merged, base, testbundle.Open(t, deltaPath), bundle.WriteOptions{})
		check(t, err)
		if !sameFile(t, path, merged) {
			t.Errorf("merged %s differs from the full build %s", merged, path)
		}
	})

	t.Run("offline signature check", func(t *testing.T) {
		key, err := signature.LoadKeyFile(f.Key.Pub)
		if err != nil {
			t.Fatal(err)
		}
		signed := []bundle.Image{}
		for _, ref := range []string{testimages.SignedIndexRef, testimages.SingleRef} {
			img, _ := r.Image(s.name(ref))
			signed = append(signed, img)
		}
		if _, err := signature.VerifyBundle(ctx, r, key, signed); err != nil {
			t.Errorf("signed images: %v", err)
		}
		rep, err := signature.VerifyBundle(ctx, r, key, r.Images())
		if !errors.Is(err, signature.ErrUnsigned) {
			t.Fatalf("all images: %v, want ErrUnsigned", err)
		}
		for _, res := range rep.Images {
			wantSigned := res.Name == s.name(testimages.SignedIndexRef) || res.Name == s.name(testimages.SingleRef)
			if res.Verified != wantSigned || (!wantSigned && !strings.Contains(err.Error(), res.Name)) {
				t.Errorf("%s: verified=%v (error %v)", res.Name, res.Verified, err)
			}
		}
		other, err := signature.LoadKeyFile(f.Other.Pub)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := signature.VerifyBundle(ctx, r, other, signed); !errors.Is(err, signature.ErrBadSignature) || !strings.Contains(err.Error(), signed[0].Name) {
			t.Errorf("another key: %v, want ErrBadSignature naming %s", err, signed[0].Name)
		}
	})
}

// TestBuildReferrerSelection checks --referrers=none and --artifact-type,
// and that a platform filter keeps OCI artifacts (no platform) as they are.
func TestBuildReferrerSelection(t *testing.T) {
	s := newSignedBuild(t)
	t.Run("combined image brings its parts' referrers", func(t *testing.T) {
		list := &imagelist.List{Images: []imagelist.Spec{{Name: "example.com/combined:1", Combine: map[string]manifests.Source{
			"linux/amd64": registrySource(s.name(testimages.SingleRef)), "linux/arm64": registrySource(s.name(testimages.UnsignedRef))}}}}
		out := filepath.Join(t.TempDir(), "combined.tar")
		_, err := build.Build(context.Background(), build.Options{List: list, Output: out, Registry: remote.Options{PlainHTTP: true}})
		check(t, err)
		r := testbundle.Open(t, out)
		refs := r.ReferrersOf("example.com/combined:1")
		if len(refs) != 3 {
			t.Errorf("combined image has %d referrers, want the amd64 part's 3: %+v", len(refs), refs)
		}
		if _, err := bundle.Verify(context.Background(), r, bundle.VerifyOptions{}); err != nil {
			t.Errorf("verify: %v", err)
		}
	})
	t.Run("platform filter keeps artifacts", func(t *testing.T) {
		amd64, err := manifests.ParsePlatforms([]string{"linux/amd64"})
		check(t, err)
		path, err := s.build(t, []string{testimages.ChartRef, testimages.WasmRef}, func(o *build.Options) { o.Platforms = amd64 })
		check(t, err)
		r := testbundle.Open(t, path)
		for ref, want := range map[string]digest.Digest{testimages.ChartRef: s.fix.Chart, testimages.WasmRef: s.fix.Wasm} {
			if img, err := r.Image(s.name(ref)); err != nil || img.Descriptor.Digest != want {
				t.Errorf("%s: %s %v, want %s", ref, img.Descriptor.Digest, err, want)
			}
		}
	})
	refs := []string{testimages.SingleRef, testimages.SignedIndexRef}
	for _, tc := range []struct {
		name   string
		mutate func(*build.Options)
		want   []digest.Digest
	}{
		{"none", func(o *build.Options) { o.Referrers = manifests.ReferrersNone }, nil},
		{"spdx only", func(o *build.Options) { o.ArtifactTypes = []string{testimages.ArtifactTypeSPDX} }, []digest.Digest{s.fix.SBOM}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, err := s.build(t, refs, tc.mutate)
			if err != nil {
				t.Fatal(err)
			}
			var got []digest.Digest
			for d := range referrerSet(testbundle.Open(t, path)) {
				got = append(got, d)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("referrers %v, want %v", got, tc.want)
			}
		})
	}
}

// orasPushManifest pushes content as a manifest of mediaType to ref (in
// reg) with `oras manifest push`.
func orasPushManifest(t *testing.T, reg *testenv.RegistryServer, ref, mediaType string, content []byte) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "manifest.json")
	check(t, os.WriteFile(file, content, 0o600))
	testimages.Oras(t, "", testimages.OrasFlags(reg, "manifest", "push", "--media-type", mediaType, reg.Ref(ref), file)...)
}

// deleteManifest deletes repo@d in reg with a plain DELETE request, as an
// operator might, without touching the referrers tag index.
func deleteManifest(t *testing.T, reg *testenv.RegistryServer, repo string, d digest.Digest) {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, reg.URL+"/v2/"+repo+"/manifests/"+d.String(), nil)
	check(t, err)
	resp, err := (&http.Client{Transport: reg.Transport()}).Do(req)
	check(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE %s@%s: %s", repo, d, resp.Status)
	}
}

// TestBuildFromLayoutWithReferrers builds from an OCI layout directory
// that `oras cp -r` filled with an image and its referrers: they travel
// with it as from the registry.
func TestBuildFromLayoutWithReferrers(t *testing.T) {
	s := newSignedBuild(t)
	dir := filepath.Join(t.TempDir(), "layout")
	testimages.Oras(t, "", "cp", "-r", "--from-plain-http", s.reg.Ref(testimages.SingleRef), "--to-oci-layout", dir+":1")
	list := &imagelist.List{Images: []imagelist.Spec{{Source: manifests.Source{Kind: manifests.SourceOCILayout, Path: dir, Name: "1"}, Name: "example.com/single:1"}}}
	out := filepath.Join(t.TempDir(), "layout.tar")
	_, err := build.Build(context.Background(), build.Options{List: list, Output: out})
	check(t, err)
	got := map[digest.Digest]digest.Digest{} // referrer -> subject
	for _, ref := range testbundle.Open(t, out).ReferrersOf("example.com/single:1") {
		got[ref.Descriptor.Digest] = ref.Subject
	}
	if len(got) != 3 || got[s.fix.SBOM] != s.fix.Single {
		t.Errorf("referrers from the layout: %v, want 3 with the SBOM %s on %s", got, s.fix.SBOM, s.fix.Single)
	}
}

// TestBuildReferrerErrors: a referrers tag index that lists a missing
// manifest fails the build naming the image and the referrer; a cosign
// signature whose payload names another image, or whose annotation is
// truncated, is refused offline naming the image; a referrer whose subject
// is not in its image fails verify naming the image.
func TestBuildReferrerErrors(t *testing.T) {
	ctx := context.Background()
	s := newSignedBuild(t)
	f := s.fix
	key, err := signature.LoadKeyFile(f.Key.Pub)
	check(t, err)

	t.Run("referrers tag index lists a missing manifest", func(t *testing.T) {
		// oras attach lists the SBOM in the referrers tag index; deleting
		// the SBOM's manifest by hand leaves the index listing it.
		missing := testimages.Attach(t, s.reg, "library/unsigned", f.Unsigned, testimages.ArtifactTypeSPDX,
			testimages.File{Name: "sbom.json", MediaType: testimages.ArtifactTypeSPDX, Content: []byte(`{"spdxVersion":"SPDX-2.3"}`)})
		deleteManifest(t, s.reg, "library/unsigned", missing)
		_, err := s.build(t, []string{testimages.UnsignedRef})
		if err == nil || !strings.Contains(err.Error(), s.name(testimages.UnsignedRef)) || !strings.Contains(err.Error(), missing.String()) {
			t.Errorf("build: %v, want an error naming the image and %s", err, missing)
		}
	})

	t.Run("payload names another digest", func(t *testing.T) {
		victim := testimages.Push(t, s.reg, "library/victim:1", testimages.Image(t, "linux/arm64", testimages.WithRandomLayers(1, 128)))
		src := s.reg.Ref("library/signed:" + manifests.CosignTag(f.Index, manifests.CosignSignatureSuffix))
		dst := s.reg.Ref("library/victim:" + manifests.CosignTag(digest.Digest(victim.String()), manifests.CosignSignatureSuffix))
		testimages.Oras(t, "", "cp", "--from-plain-http", "--to-plain-http", src, dst)
		path, err := s.build(t, []string{"library/victim:1"})
		check(t, err)
		r := testbundle.Open(t, path)
		_, err = signature.VerifyBundle(ctx, r, key, r.Images())
		if !errors.Is(err, signature.ErrBadSignature) || !strings.Contains(err.Error(), s.name("library/victim:1")) || !strings.Contains(err.Error(), "payload names") {
			t.Errorf("verify: %v, want ErrBadSignature naming the image and the payload's digest", err)
		}
	})

	t.Run("truncated signature annotation", func(t *testing.T) {
		victim := digest.Digest(testimages.Push(t, s.reg, "library/victim2:1", testimages.Image(t, "linux/arm64", testimages.WithRandomLayers(1, 64))).String())
		f.Key.Sign(t, s.reg, "library/victim2", victim, testimages.TagScheme)
		tag := "library/victim2:" + manifests.CosignTag(victim, manifests.CosignSignatureSuffix)
		raw := testimages.Oras(t, "", testimages.OrasFlags(s.reg, "manifest", "fetch", s.reg.Ref(tag))...)
		var m ocispec.Manifest
		check(t, json.Unmarshal([]byte(raw), &m))
		sig := m.Layers[0].Annotations[manifests.AnnotationCosignSignature]
		m.Layers[0].Annotations[manifests.AnnotationCosignSignature] = sig[:len(sig)-5]
		edited, err := json.Marshal(m)
		check(t, err)
		orasPushManifest(t, s.reg, tag, m.MediaType, edited)
		path, err := s.build(t, []string{"library/victim2:1"})
		check(t, err)
		r := testbundle.Open(t, path)
		_, err = signature.VerifyBundle(ctx, r, key, r.Images())
		if !errors.Is(err, signature.ErrBadSignature) || !strings.Contains(err.Error(), s.name("library/victim2:1")) {
			t.Errorf("verify: %v, want ErrBadSignature naming the image", err)
		}
	})

	t.Run("referrer whose subject is not in the bundle", func(t *testing.T) {
		path, err := s.build(t, []string{testimages.SingleRef})
		check(t, err)
		stranger := digest.FromString("not in the bundle")
		entries := testbundle.ReadTar(t, path)
		for i, e := range entries {
			if e.Hdr.Name != "index.json" {
				continue
			}
			var idx ocispec.Index
			check(t, json.Unmarshal(e.Body, &idx))
			for j, d := range idx.Manifests {
				if d.Digest == f.SBOM {
					idx.Manifests[j].Annotations[bundle.AnnotationReferrerSubject] = stranger.String()
				}
			}
			entries[i].Body, err = json.Marshal(idx)
			check(t, err)
		}
		bad := testbundle.WriteTar(t, filepath.Join(t.TempDir(), "bad.tar"), entries)
		_, err = bundle.Verify(ctx, testbundle.Open(t, bad), bundle.VerifyOptions{})
		if !errors.Is(err, bundle.ErrInvalidBundle) || !strings.Contains(err.Error(), s.name(testimages.SingleRef)) || !strings.Contains(err.Error(), stranger.String()) {
			t.Errorf("verify: %v, want ErrInvalidBundle naming the image and the subject", err)
		}
	})
}

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// registrySource is the source of a registry reference, which must parse.
func registrySource(ref string) manifests.Source {
	src, err := manifests.ParseSource(ref)
	if err != nil {
		panic(err)
	}
	return src
}
