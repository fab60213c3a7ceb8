package build_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-oci/ferry/bundle/build"
	"github.com/ferry-oci/ferry/manifests/imagelist"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/internal/remote"
	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
	"github.com/ferry-oci/ferry/manifests"
)

// buildFixture is a real registry filled with the kinds of images a
// release holds.
type buildFixture struct {
	reg     *testenv.RegistryServer
	digests map[string]string // repo:tag in reg -> pushed digest
}

func newBuildFixture(t *testing.T) *buildFixture {
	t.Helper()
	reg := testenv.Registry(t)
	base := testimages.BusyboxLayer(t)
	f := &buildFixture{reg: reg, digests: map[string]string{}}
	f.digests["library/multi:1"] = testimages.Push(t, reg, "library/multi:1",
		testimages.Index(t, []string{"linux/amd64", "linux/arm64"}, testimages.WithSharedBase(base), testimages.WithRandomLayers(1, 4096))).String()
	f.digests["library/dlist:1"] = testimages.Push(t, reg, "library/dlist:1",
		testimages.Index(t, []string{"linux/amd64", "linux/arm64"}, testimages.Docker())).String()
	f.digests["library/single:1"] = testimages.Push(t, reg, "library/single:1", testimages.Image(t, "linux/amd64")).String()
	f.digests["tke/gw-amd64:1"] = testimages.Push(t, reg, "tke/gw-amd64:1", testimages.Image(t, "linux/amd64", testimages.WithRandomLayers(1, 2048))).String()
	f.digests["tke/gw-arm64:1"] = testimages.Push(t, reg, "tke/gw-arm64:1", testimages.Image(t, "linux/arm64", testimages.WithRandomLayers(1, 2048))).String()
	return f
}

// build writes list (an image list in any form, with HOST standing for
// the registry) and builds it into dir/name.
func (f *buildFixture) build(ctx context.Context, t *testing.T, dir, name, list string, mutate ...func(*build.Options)) (string, *build.Result, error) {
	t.Helper()
	listPath := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(listPath, []byte(strings.ReplaceAll(list, "HOST", f.reg.Host)), 0o644); err != nil {
		t.Fatal(err)
	}
	parsed, err := imagelist.Load(listPath)
	if err != nil {
		t.Fatal(err)
	}
	opts := build.Options{
		List:     parsed,
		Output:   filepath.Join(dir, name),
		Registry: remote.Options{PlainHTTP: true},
	}
	for _, m := range mutate {
		m(&opts)
	}
	res, err := build.Build(ctx, opts)
	return opts.Output, res, err
}

const releaseList = `
images:
  - HOST/library/multi:1
  - HOST/library/dlist:1
  - HOST/library/single:1
  - ref: HOST/library/multi:1
    name: example.com/filtered/multi:1
    platforms: [linux/arm64]
  - name: example.com/tke/gw:1
    combine:
      linux/amd64: HOST/tke/gw-amd64:1
      linux/arm64: HOST/tke/gw-arm64:1
`

func TestBuildFromRegistry(t *testing.T) {
	ctx := context.Background()
	f := newBuildFixture(t)
	dir := t.TempDir()
	path, res, err := f.build(ctx, t, dir, "release.tar", releaseList)
	if err != nil {
		t.Fatal(err)
	}
	r, err := bundle.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := len(r.Images()); got != 5 || res.Images != 5 {
		t.Fatalf("images: reader %d, result %d, want 5", got, res.Images)
	}
	if len(r.Digests()) != res.Blobs {
		t.Errorf("bundle holds %d blobs, build says %d", len(r.Digests()), res.Blobs)
	}
	if res.SharedBytes == 0 {
		t.Error("the filtered copy of multi shares blobs with multi, yet SharedBytes is 0")
	}
	img := func(name string) bundle.Image {
		t.Helper()
		i, err := r.Image(name)
		if err != nil {
			t.Fatal(err)
		}
		return i
	}

	t.Run("upstream digests preserved", func(t *testing.T) {
		for _, repo := range []string{"library/multi:1", "library/dlist:1", "library/single:1"} {
			if got := img(f.reg.Ref(repo)).Descriptor.Digest.String(); got != f.digests[repo] {
				t.Errorf("%s: bundle has %s, registry %s", repo, got, f.digests[repo])
			}
		}
		if mt := img(f.reg.Ref("library/dlist:1")).Descriptor.MediaType; mt != manifests.MediaTypeDockerManifestList {
			t.Errorf("docker manifest list became %s", mt)
		}
	})

	t.Run("platform filter rewrites the index", func(t *testing.T) {
		filtered := img("example.com/filtered/multi:1")
		if filtered.Descriptor.Digest.String() == f.digests["library/multi:1"] {
			t.Fatal("filtered index kept the upstream digest")
		}
		idx := testbundle.ReadIndex(t, r, filtered.Descriptor)
		if got := manifests.IndexPlatforms(idx); len(got) != 1 || got[0] != "linux/arm64" {
			t.Errorf("filtered platforms %v, want [linux/arm64]", got)
		}
	})

	t.Run("combine makes an OCI index checked against configs", func(t *testing.T) {
		gw := img("example.com/tke/gw:1")
		if gw.Descriptor.MediaType != ocispec.MediaTypeImageIndex {
			t.Fatalf("combined media type %s", gw.Descriptor.MediaType)
		}
		idx := testbundle.ReadIndex(t, r, gw.Descriptor)
		got := map[string]string{}
		for _, m := range idx.Manifests {
			got[manifests.FormatPlatform(*m.Platform)] = m.Digest.String()
		}
		if got["linux/amd64"] != f.digests["tke/gw-amd64:1"] || got["linux/arm64"] != f.digests["tke/gw-arm64:1"] {
			t.Errorf("combined entries %v do not point at the per-arch images", got)
		}
	})

	t.Run("skopeo reads OCI-typed images by name", func(t *testing.T) {
		for _, name := range []string{f.reg.Ref("library/multi:1"), f.reg.Ref("library/single:1"), "example.com/filtered/multi:1", "example.com/tke/gw:1"} {
			raw := testenv.Skopeo(t, "inspect", "--raw", "oci-archive:"+path+":"+name)
			if got := sha256Hex(raw); "sha256:"+got != img(name).Descriptor.Digest.String() {
				t.Errorf("%s: skopeo sees sha256:%s, ferry %s", name, got, img(name).Descriptor.Digest)
			}
		}
	})

	t.Run("go-containerregistry layout reads the docker list", func(t *testing.T) {
		extracted := t.TempDir()
		if out, err := exec.Command("tar", "-xf", path, "-C", extracted).CombinedOutput(); err != nil {
			t.Fatalf("tar -x: %v: %s", err, out)
		}
		ii, err := layout.ImageIndexFromPath(extracted)
		if err != nil {
			t.Fatal(err)
		}
		im, err := ii.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, d := range im.Manifests {
			if d.Annotations[bundle.AnnotationRefName] == f.reg.Ref("library/dlist:1") {
				found = d.Digest.String() == f.digests["library/dlist:1"]
				child, err := ii.ImageIndex(d.Digest)
				if err != nil {
					t.Fatal(err)
				}
				if cm, _ := child.IndexManifest(); len(cm.Manifests) != 2 {
					t.Errorf("docker list has %d entries in the layout, want 2", len(cm.Manifests))
				}
			}
		}
		if !found {
			t.Error("ggcr layout does not find the docker list with its upstream digest")
		}
	})

	t.Run("ctr imports every image", func(t *testing.T) {
		ctd := testenv.Containerd(t)
		ctd.Ctr(t, "-n", "ferry", "images", "import", "--all-platforms", "--no-unpack", path)
		listed := ctd.Ctr(t, "-n", "ferry", "images", "ls")
		for _, i := range r.Images() {
			if !containsLine(listed, i.Name, i.Descriptor.Digest.String()) {
				t.Errorf("ctr images ls lacks %s %s:\n%s", i.Name, i.Descriptor.Digest, listed)
			}
		}
	})

	t.Run("deterministic", func(t *testing.T) {
		again, _, err := f.build(ctx, t, dir, "again.tar", releaseList)
		if err != nil {
			t.Fatal(err)
		}
		if !sameFile(t, path, again) {
			t.Fatal("two builds of the same list differ")
		}
		epoch := time.Unix(1700000000, 0)
		dated, _, err := f.build(ctx, t, dir, "dated.tar", releaseList, func(o *build.Options) { o.ModTime = epoch })
		if err != nil {
			t.Fatal(err)
		}
		if sameFile(t, path, dated) {
			t.Error("SOURCE_DATE_EPOCH did not change the entries' time")
		}
		out, _ := exec.Command("tar", "--full-time", "-tvf", dated).CombinedOutput()
		if !strings.Contains(string(out), "2023-11-14 22:13:20") {
			t.Errorf("entries do not carry the epoch time:\n%.300s", out)
		}
	})

	t.Run("zstd transport form", func(t *testing.T) {
		zpath, _, err := f.build(ctx, t, dir, "release.tar.zst", releaseList)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := bundle.Open(t.Context(), zpath)
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		if len(zr.Images()) != 5 || len(zr.Digests()) != len(r.Digests()) {
			t.Errorf("zstd bundle has %d images and %d blobs", len(zr.Images()), len(zr.Digests()))
		}
		zf, err := os.Open(zpath)
		if err != nil {
			t.Fatal(err)
		}
		defer zf.Close()
		dec, err := zstd.NewReader(zf)
		if err != nil {
			t.Fatal(err)
		}
		defer dec.Close()
		tarBytes, err := io.ReadAll(dec)
		if err != nil {
			t.Fatal(err)
		}
		if plain, _ := os.ReadFile(path); !bytes.Equal(tarBytes, plain) {
			t.Error("the .tar.zst does not decompress to the same tar")
		}
	})
}

func TestBuildErrors(t *testing.T) {
	ctx := context.Background()
	f := newBuildFixture(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadHost := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name    string
		list    string
		mutate  func(*build.Options)
		want    error
		message string
	}{
		{name: "unknown tag", list: "HOST/library/multi:nope\n", want: build.ErrImageNotFound, message: "library/multi:nope"},
		{name: "unknown repository", list: "HOST/nobody/here:1\n", want: build.ErrImageNotFound, message: "nobody/here:1"},
		{name: "unreachable registry", list: deadHost + "/library/x:1\n", want: manifests.ErrUnreachable, message: deadHost},
		{name: "plain HTTP not asked for", list: "HOST/library/multi:1\n", want: manifests.ErrPlainHTTP, message: "--plain-http",
			mutate: func(o *build.Options) { o.Registry.PlainHTTP = false }},
		{name: "missing platform", list: "platforms: [linux/s390x]\nimages: [HOST/library/multi:1]\n", want: manifests.ErrPlatformMissing, message: "linux/amd64, linux/arm64"},
		{name: "single image of another platform", list: "platforms: [linux/arm64]\nimages: [HOST/library/single:1]\n", want: manifests.ErrPlatformMissing, message: "linux/amd64"},
		{name: "combine platform mismatch", list: `
images:
  - name: example.com/bad:1
    combine:
      linux/arm64: HOST/tke/gw-amd64:1
`, want: manifests.ErrPlatformMismatch, message: "linux/amd64"},
		{name: "same name, different content", list: `
images:
  - ref: HOST/library/multi:1
    name: example.com/x:1
  - ref: HOST/library/single:1
    name: example.com/x:1
`, want: manifests.ErrInvalidImageList},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var mutate []func(*build.Options)
			if tt.mutate != nil {
				mutate = append(mutate, tt.mutate)
			}
			out, _, err := f.buildOrListError(ctx, t, dir, tt.list, mutate...)
			if err == nil {
				t.Fatal("build succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v is not %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error %q does not name %q", err, tt.message)
			}
			assertNothingWritten(t, dir, out)
		})
	}

	t.Run("allow missing platforms", func(t *testing.T) {
		dir := t.TempDir()
		list := "platforms: [linux/arm64, linux/s390x]\nimages: [HOST/library/multi:1]\n"
		path, _, err := f.build(ctx, t, dir, "b.tar", list, func(o *build.Options) { o.AllowMissingPlatforms = true })
		if err != nil {
			t.Fatal(err)
		}
		r, err := bundle.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		idx := testbundle.ReadIndex(t, r, r.Images()[0].Descriptor)
		if got := manifests.IndexPlatforms(idx); len(got) != 1 {
			t.Errorf("platforms %v, want just linux/arm64", got)
		}
	})

	t.Run("cancelled build leaves nothing", func(t *testing.T) {
		dir := t.TempDir()
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		out, _, err := f.build(cctx, t, dir, "b.tar", releaseList)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
		assertNothingWritten(t, dir, out)
	})
}

// buildOrListError builds list, returning a list parse error as a build error.
func (f *buildFixture) buildOrListError(ctx context.Context, t *testing.T, dir, list string, mutate ...func(*build.Options)) (string, *build.Result, error) {
	listPath := filepath.Join(dir, "list.yaml")
	os.WriteFile(listPath, []byte(strings.ReplaceAll(list, "HOST", f.reg.Host)), 0o644)
	parsed, err := imagelist.Load(listPath)
	out := filepath.Join(dir, "b.tar")
	if err != nil {
		return out, nil, err
	}
	opts := build.Options{List: parsed, Output: out, Registry: remote.Options{PlainHTTP: true}}
	for _, m := range mutate {
		m(&opts)
	}
	res, err := build.Build(ctx, opts)
	return out, res, err
}

func TestBuildAuthenticatedRegistry(t *testing.T) {
	ctx := context.Background()
	reg := testenv.Registry(t, testenv.WithTLS(), testenv.WithHtpasswd("ferry", "s3cret"))
	want := testimages.Push(t, reg, "library/private:1", testimages.Index(t, []string{"linux/amd64", "linux/arm64"})).String()
	list := &imagelist.List{}
	if err := list.AddRefs([]string{reg.Ref("library/private:1")}); err != nil {
		t.Fatal(err)
	}
	buildIt := func(t *testing.T) (string, error) {
		out := filepath.Join(t.TempDir(), "b.tar")
		_, err := build.Build(ctx, build.Options{List: list, Output: out, Registry: remote.Options{CAFile: reg.CAFile}})
		return out, err
	}

	t.Run("no credentials", func(t *testing.T) {
		t.Setenv("DOCKER_CONFIG", t.TempDir())
		out, err := buildIt(t)
		if !errors.Is(err, manifests.ErrUnauthorized) || !strings.Contains(err.Error(), "library/private:1") {
			t.Fatalf("error %v should name the image and say it is unauthorized", err)
		}
		assertNothingWritten(t, filepath.Dir(out), out)
	})

	t.Run("credentials from DOCKER_CONFIG", func(t *testing.T) {
		cfg := t.TempDir()
		auth := base64.StdEncoding.EncodeToString([]byte("ferry:s3cret"))
		os.WriteFile(filepath.Join(cfg, "config.json"), []byte(`{"auths":{"`+reg.Host+`":{"auth":"`+auth+`"}}}`), 0o600)
		t.Setenv("DOCKER_CONFIG", cfg)
		out, err := buildIt(t)
		if err != nil {
			t.Fatal(err)
		}
		r, err := bundle.Open(t.Context(), out)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if got := r.Images()[0].Descriptor.Digest.String(); got != want {
			t.Errorf("digest %s, want %s", got, want)
		}
	})
}

func TestBuildLocalSources(t *testing.T) {
	ctx := context.Background()
	f := newBuildFixture(t)
	dir := t.TempDir()
	src := f.reg.SkopeoFlags("src-")
	layoutDir := filepath.Join(dir, "app-layout")
	testenv.Skopeo(t, append(append([]string{"copy", "--all"}, src...), "docker://"+f.reg.Ref("library/multi:1"), "oci:"+layoutDir+":app:2.0")...)
	dockerArchive := filepath.Join(dir, "bbox.tar")
	testenv.Skopeo(t, append(append([]string{"copy"}, src...), "docker://"+f.reg.Ref("library/single:1"), "docker-archive:"+dockerArchive+":example.com/saved/bbox:1.0")...)
	other, _, err := f.build(ctx, t, dir, "other.tar", "HOST/library/dlist:1\n")
	if err != nil {
		t.Fatal(err)
	}

	list := fmt.Sprintf(`
images:
  - ref: oci:%s:app:2.0
  - ref: docker-archive:%s
    name: registry.example.com/library/bbox:1.35
  - ref: docker-archive:%s
  - ref: oci-archive:%s
`, layoutDir, dockerArchive, dockerArchive, other)
	path, _, err := f.build(ctx, t, dir, "local.tar", list)
	if err != nil {
		t.Fatal(err)
	}
	r, err := bundle.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	names := map[string]bundle.Image{}
	for _, i := range r.Images() {
		names[i.Name] = i
	}
	if got := names["docker.io/library/app:2.0"].Descriptor.Digest.String(); got != f.digests["library/multi:1"] {
		t.Errorf("oci layout image: %s, want upstream %s", got, f.digests["library/multi:1"])
	}
	if got := names[f.reg.Ref("library/dlist:1")].Descriptor.Digest.String(); got != f.digests["library/dlist:1"] {
		t.Errorf("image from another bundle: %s, want %s", got, f.digests["library/dlist:1"])
	}
	for _, name := range []string{"registry.example.com/library/bbox:1.35", "example.com/saved/bbox:1.0"} {
		conv, ok := names[name]
		if !ok {
			t.Fatalf("no %s in %v", name, names)
		}
		m := testbundle.ReadManifest(t, r, conv.Descriptor)
		for _, l := range m.Layers {
			if l.MediaType != ocispec.MediaTypeImageLayerGzip {
				t.Errorf("%s: converted layer is %s", name, l.MediaType)
			}
		}
		testenv.Skopeo(t, "inspect", "oci-archive:"+path+":"+name)
	}

	t.Run("bad local sources", func(t *testing.T) {
		truncated := filepath.Join(dir, "truncated.tar")
		b, _ := os.ReadFile(dockerArchive)
		os.WriteFile(truncated, b[:len(b)/2], 0o644)

		corruptLayout := filepath.Join(dir, "corrupt-layout")
		exec.Command("cp", "-a", layoutDir, corruptLayout).Run()
		flipLargestBlob(t, filepath.Join(corruptLayout, "blobs", "sha256"))

		bigLayout := filepath.Join(dir, "big-layout")
		writeLayoutWithHugeManifest(t, bigLayout)

		bareTag := filepath.Join(dir, "bare-tag-layout")
		testenv.Skopeo(t, append(append([]string{"copy"}, src...), "docker://"+f.reg.Ref("library/single:1"), "oci:"+bareTag+":1.36")...)

		evil := filepath.Join(dir, "evil.tar")
		body := []byte(`[{"Config":"../../etc/passwd","RepoTags":["x:1"],"Layers":[]}]`)
		testbundle.WriteTar(t, evil, []testbundle.TarEntry{{Hdr: &tar.Header{Name: "manifest.json", Typeflag: tar.TypeReg, Mode: 0o644}, Body: body}})

		for _, tt := range []struct {
			name, list string
			want       error
		}{
			{"truncated docker archive", "docker-archive:" + truncated + "\n", build.ErrInvalidSource},
			{"layout blob does not match its digest", "oci:" + corruptLayout + ":app:2.0\n", manifests.ErrDigestMismatch},
			{"manifest over 4 MiB", "oci:" + bigLayout + "\n", manifests.ErrManifestTooLarge},
			{"path out of the archive", "docker-archive:" + evil + "\n", build.ErrInvalidSource},
			{"not a docker archive", "docker-archive:" + path + "\n", build.ErrInvalidSource},
			{"layout image named by a bare tag", "oci:" + bareTag + ":1.36\n", build.ErrNoName},
		} {
			t.Run(tt.name, func(t *testing.T) {
				sub := t.TempDir()
				out, _, err := f.buildOrListError(ctx, t, sub, tt.list)
				if !errors.Is(err, tt.want) {
					t.Fatalf("error %v, want %v", err, tt.want)
				}
				assertNothingWritten(t, sub, out)
			})
		}
	})
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func containsLine(out string, words ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			return true
		}
	}
	return false
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	ab, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ab, bb)
}

// assertNothingWritten checks that a failed build left no bundle and no temp file.
func assertNothingWritten(t *testing.T, dir, out string) {
	t.Helper()
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists after a failed build", out)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") || strings.Contains(e.Name(), ".zst-") {
			t.Errorf("temp file %s left behind", e.Name())
		}
	}
}

func flipLargestBlob(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	var largest string
	var size int64
	for _, e := range entries {
		if fi, _ := e.Info(); fi.Size() > size {
			largest, size = filepath.Join(dir, e.Name()), fi.Size()
		}
	}
	b, err := os.ReadFile(largest)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	os.WriteFile(largest, b, 0o644)
}

func writeLayoutWithHugeManifest(t *testing.T, dir string) {
	t.Helper()
	huge := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"x":"` + strings.Repeat("a", manifests.MaxManifestSize) + `"}}`)
	d := digest.FromBytes(huge)
	os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755)
	os.WriteFile(filepath.Join(dir, "blobs", "sha256", d.Encoded()), huge, 0o644)
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	idx := fmt.Sprintf(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"example.com/huge:1"}}]}`, d, len(huge))
	os.WriteFile(filepath.Join(dir, "index.json"), []byte(idx), 0o644)
}

// TestBuildCorruptRegistryBlob: a registry that sends a layer whose bytes
// are not its digest fails the build with ErrDigestMismatch naming the
// blob, and writes nothing. ferry fetches blob bytes unhashed and checks
// them once, in the copy engine.
func TestBuildCorruptRegistryBlob(t *testing.T) {
	reg := testenv.Registry(t)
	img := testimages.Image(t, "linux/amd64", testimages.WithRandomLayers(1, 64<<10))
	testimages.Push(t, reg, "library/bad:1", img)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	ld, err := layers[len(layers)-1].Digest()
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(reg.Dir, "docker/registry/v2/blobs/sha256", ld.Hex[:2], ld.Hex, "data")
	b, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(data, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f := &buildFixture{reg: reg}
	dir := t.TempDir()
	out, _, err := f.buildOrListError(context.Background(), t, dir, "HOST/library/bad:1\n")
	if !errors.Is(err, manifests.ErrDigestMismatch) || !strings.Contains(err.Error(), ld.String()) {
		t.Errorf("build from a registry sending a corrupt layer: %v, want %v naming %s", err, manifests.ErrDigestMismatch, ld)
	}
	assertNothingWritten(t, dir, out)
}
