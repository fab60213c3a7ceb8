package installer_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/installer"
	"github.com/ferry-oci/ferry/internal/remote"
	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
	"github.com/ferry-oci/ferry/registry"
)

var twoPlatforms = []string{"linux/amd64", "linux/arm64"}

// mixedBundle holds an OCI index, a docker manifest list and a single OCI
// image from another registry; all share the busybox layer.
func mixedBundle(t *testing.T) *bundle.Reader {
	return pushBundle(t, map[string]testbundle.Image{
		"docker.io/library/multi:1":      testimages.Index(t, twoPlatforms),
		"docker.io/library/dockerlist:1": testimages.Index(t, twoPlatforms, testimages.Docker()),
		"quay.io/org/single:2":           testimages.Image(t, "linux/arm64"),
	})
}

// pushBundle writes images into a bundle and opens it.
func pushBundle(t *testing.T, images map[string]testbundle.Image) *bundle.Reader {
	t.Helper()
	r, err := bundle.Open(t.Context(), testbundle.Write(t, filepath.Join(t.TempDir(), "bundle.tar"), images))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// pushOptions reach reg (through host, which may be a proxy) under prefix,
// with no credentials of the machine.
func pushOptions(reg *testenv.RegistryServer, host, prefix string) installer.PushOptions {
	o := installer.PushOptions{
		To: host + "/" + prefix,
		Options: remote.Options{
			PlainHTTP: reg.CAPool == nil,
			CAFile:    reg.CAFile,
			Username:  reg.User,
			Password:  reg.Password,
			Keychain:  authn.NewMultiKeychain(),
		},
	}
	return o
}

// inspectRaw returns the manifest bytes skopeo reads at ref in reg.
func inspectRaw(t *testing.T, reg *testenv.RegistryServer, ref string) []byte {
	t.Helper()
	args := append([]string{"inspect", "--raw"}, reg.SkopeoFlags("")...)
	return []byte(testenv.Skopeo(t, append(args, "docker://"+reg.Ref(ref))...))
}

// checkPushed checks with skopeo that every image of the bundle is at
// prefix in reg with the bundle's digest, its indexes listing every platform.
func checkPushed(t *testing.T, reg *testenv.RegistryServer, r *bundle.Reader, prefix string) {
	t.Helper()
	for _, img := range r.Images() {
		_, repo, tag, err := manifests.SplitReference(img.Name)
		if err != nil {
			t.Fatal(err)
		}
		raw := inspectRaw(t, reg, prefix+"/"+repo+":"+tag)
		if got := digest.FromBytes(raw); got != img.Descriptor.Digest {
			t.Errorf("%s: skopeo reads digest %s, bundle has %s", img.Name, got, img.Descriptor.Digest)
		}
		if manifests.IsIndex(img.Descriptor.MediaType) {
			want := bundlePlatforms(t, r, img.Descriptor)
			idx, err := manifests.ParseIndex(raw)
			if err != nil {
				t.Fatal(err)
			}
			if got := manifests.IndexPlatforms(idx); !slices.Equal(got, want) {
				t.Errorf("%s: index lists %v, want %v", img.Name, got, want)
			}
		}
	}
}

func bundlePlatforms(t *testing.T, r *bundle.Reader, desc ocispec.Descriptor) []string {
	t.Helper()
	idx := testbundle.ReadIndex(t, r, desc)
	return manifests.IndexPlatforms(idx)
}

func mustPush(t *testing.T, r *bundle.Reader, opts installer.PushOptions) *installer.PushResult {
	t.Helper()
	res, err := installer.Push(context.Background(), r, opts)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	return res
}

func image(t *testing.T, res *installer.PushResult, name string) installer.PushedImage {
	t.Helper()
	for _, img := range res.Images {
		if img.Name == name {
			return img
		}
	}
	t.Fatalf("no %s in the result", name)
	return installer.PushedImage{}
}

// corruptBundle returns a bundle of two images whose first one has a layer
// with a flipped byte, and that layer's digest.
func corruptBundle(t *testing.T) (*bundle.Reader, digest.Digest) {
	t.Helper()
	bad := testimages.Image(t, "linux/amd64", testimages.WithRandomLayers(1, 64<<10))
	layers, err := bad.Layers()
	if err != nil {
		t.Fatal(err)
	}
	layer := testbundle.LayerDigest(t, layers[len(layers)-1])
	path := testbundle.Write(t, filepath.Join(t.TempDir(), "bundle.tar"), map[string]testbundle.Image{
		"docker.io/library/a-bad:1":  bad,
		"docker.io/library/b-good:1": testimages.Image(t, "linux/amd64"),
	})
	return testbundle.CorruptCopy(t, path, layer), layer
}

func TestPushPlainRegistry(t *testing.T) {
	reg := testenv.Registry(t)
	proxy := newRegProxy(t, reg)
	r := mixedBundle(t)

	t.Run("every image keeps its digest", func(t *testing.T) {
		res := mustPush(t, r, pushOptions(reg, proxy.Host, "first"))
		checkPushed(t, reg, r, "first")
		multi := image(t, res, "docker.io/library/multi:1")
		if multi.Destination != proxy.Host+"/first/library/multi:1" || multi.DigestChanged() {
			t.Errorf("multi: %+v", multi)
		}
		if res.Stats.Copied == 0 || res.Stats.Mounted == 0 {
			t.Errorf("stats %+v: want blobs sent and the shared busybox layer and config mounted", res.Stats)
		}
		if got := proxy.blobBytes.Load(); got != res.Stats.BytesCopied-manifestBytes(t, r) {
			t.Errorf("registry received %d blob bytes, stats say %d sent (manifests included)", got, res.Stats.BytesCopied)
		}
	})

	t.Run("skopeo copies a platform image out and it matches", func(t *testing.T) {
		img, err := r.Image("docker.io/library/multi:1")
		if err != nil {
			t.Fatal(err)
		}
		want, _ := manifests.SelectPlatforms(testbundle.ReadIndex(t, r, img.Descriptor), []ocispec.Platform{{OS: "linux", Architecture: "arm64"}})
		desc := want[0]
		dir := filepath.Join(t.TempDir(), "out")
		args := append([]string{"copy"}, reg.SkopeoFlags("src-")...)
		testenv.Skopeo(t, append(args, "docker://"+reg.Ref("first/library/multi@"+desc.Digest.String()), "dir:"+dir)...)
		got, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		content, err := r.ReadAll(context.Background(), desc)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(content) {
			t.Fatalf("copied manifest differs from the bundle's:\n%s\n%s", got, content)
		}
		m, err := manifests.ParseManifest(content)
		if err != nil {
			t.Fatal(err)
		}
		for _, blob := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
			b, err := os.ReadFile(filepath.Join(dir, blob.Digest.Encoded()))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			if hex.EncodeToString(sum[:]) != blob.Digest.Encoded() || int64(len(b)) != blob.Size {
				t.Errorf("blob %s: copied bytes do not match", blob.Digest)
			}
		}
	})

	t.Run("second push sends no blob bytes", func(t *testing.T) {
		bytesBefore, putsBefore := proxy.blobBytes.Load(), proxy.manifestPuts.Load()
		res := mustPush(t, r, pushOptions(reg, proxy.Host, "first"))
		if res.Stats.BytesCopied != 0 || res.Stats.Copied != 0 || res.Stats.Mounted != 0 {
			t.Errorf("stats %+v: want nothing sent", res.Stats)
		}
		if got := proxy.blobBytes.Load() - bytesBefore; got != 0 {
			t.Errorf("registry received %d blob bytes", got)
		}
		if got := proxy.manifestPuts.Load() - putsBefore; got != 0 {
			t.Errorf("registry received %d manifest PUTs", got)
		}
		t.Logf("re-push of %d images: %v", len(res.Images), res.Duration)
	})

	t.Run("keep-host and image globs", func(t *testing.T) {
		o := pushOptions(reg, proxy.Host, "kh")
		o.KeepHost, o.Images = true, []string{"quay.io/*/*"}
		res := mustPush(t, r, o)
		if len(res.Images) != 1 || res.Images[0].Destination != proxy.Host+"/kh/quay.io/org/single:2" {
			t.Fatalf("images %+v", res.Images)
		}
		raw := inspectRaw(t, reg, "kh/quay.io/org/single:2")
		if digest.FromBytes(raw) != res.Images[0].SourceDigest {
			t.Errorf("digest %s, want %s", digest.FromBytes(raw), res.Images[0].SourceDigest)
		}
	})

	t.Run("plain HTTP only with --plain-http", func(t *testing.T) {
		o := pushOptions(reg, reg.Host, "nope")
		o.PlainHTTP = false
		res, err := installer.Push(context.Background(), r, o)
		if !errors.Is(err, manifests.ErrPlainHTTP) || res != nil {
			t.Fatalf("got %v, %v; want manifests.ErrPlainHTTP", res, err)
		}
		if !strings.Contains(err.Error(), "--plain-http") || !strings.Contains(err.Error(), reg.Host) {
			t.Errorf("error does not name the registry and the flag: %v", err)
		}
	})

	t.Run("platform filter makes new indexes", func(t *testing.T) {
		fr := pushBundle(t, map[string]testbundle.Image{
			"docker.io/library/multi:1":      testimages.Index(t, twoPlatforms),
			"docker.io/library/dockerlist:1": testimages.Index(t, twoPlatforms, testimages.Docker()),
			"docker.io/library/amd64only:1":  testimages.Image(t, "linux/amd64"),
		})
		o := pushOptions(reg, proxy.Host, "filtered")
		o.Platforms = []ocispec.Platform{{OS: "linux", Architecture: "arm64"}}
		res, err := installer.Push(context.Background(), fr, o)
		if !errors.Is(err, manifests.ErrImagesFailed) {
			t.Fatalf("err %v, want manifests.ErrImagesFailed", err)
		}
		if got := image(t, res, "docker.io/library/amd64only:1").Err; !errors.Is(got, manifests.ErrPlatformMissing) ||
			!strings.Contains(got.Error(), "amd64only") {
			t.Errorf("amd64only: %v, want manifests.ErrPlatformMissing naming it", got)
		}
		for name, mediaType := range map[string]string{
			"multi":      ocispec.MediaTypeImageIndex,
			"dockerlist": manifests.MediaTypeDockerManifestList,
		} {
			img := image(t, res, "docker.io/library/"+name+":1")
			if img.Err != nil || !img.DigestChanged() || !slices.Equal(img.Platforms, []string{"linux/arm64"}) {
				t.Errorf("%s: %+v, want a new digest with linux/arm64 only", name, img)
				continue
			}
			raw := inspectRaw(t, reg, "filtered/library/"+name+":1")
			got, err := manifests.DetectMediaType(raw)
			if err != nil {
				t.Fatal(err)
			}
			idx, err := manifests.ParseIndex(raw)
			if err != nil {
				t.Fatal(err)
			}
			if digest.FromBytes(raw) != img.Digest || got != mediaType || !slices.Equal(manifests.IndexPlatforms(idx), img.Platforms) {
				t.Errorf("%s: registry has %s %s %v, want %s %s %v", name, digest.FromBytes(raw), got, manifests.IndexPlatforms(idx),
					img.Digest, mediaType, img.Platforms)
			}
		}
	})

	t.Run("a corrupt blob fails its image only", func(t *testing.T) {
		cr, layer := corruptBundle(t)
		res, err := installer.Push(context.Background(), cr, pushOptions(reg, proxy.Host, "corrupt"))
		if !errors.Is(err, manifests.ErrImagesFailed) {
			t.Fatalf("err %v, want manifests.ErrImagesFailed", err)
		}
		bad := image(t, res, "docker.io/library/a-bad:1").Err
		var cerr *transfer.CopyError
		if !errors.Is(bad, manifests.ErrDigestMismatch) || !errors.As(bad, &cerr) || cerr.Origin != transfer.Source ||
			!strings.Contains(bad.Error(), layer.String()) {
			t.Errorf("a-bad: %v; want a source digest mismatch naming %s", bad, layer)
		}
		if good := image(t, res, "docker.io/library/b-good:1"); good.Err != nil {
			t.Errorf("b-good: %v", good.Err)
		}
		args := append([]string{"inspect", "--raw"}, reg.SkopeoFlags("")...)
		if _, err := testenv.SkopeoErr(t, append(args, "docker://"+reg.Ref("corrupt/library/a-bad:1"))...); err == nil {
			t.Error("the corrupt image is tagged in the registry")
		}
	})

	t.Run("fail-fast stops the other images", func(t *testing.T) {
		cr, _ := corruptBundle(t)
		o := pushOptions(reg, proxy.Host, "failfast")
		o.FailFast, o.Jobs = true, 1
		res, err := installer.Push(context.Background(), cr, o)
		if !errors.Is(err, manifests.ErrImagesFailed) {
			t.Fatalf("err %v, want manifests.ErrImagesFailed", err)
		}
		if got := image(t, res, "docker.io/library/b-good:1").Err; !errors.Is(got, context.Canceled) {
			t.Errorf("b-good: %v, want not pushed", got)
		}
	})

	t.Run("a registry that rejects OCI indexes", func(t *testing.T) {
		proxy.setHook(func(w http.ResponseWriter, req *http.Request) bool {
			if req.Method != http.MethodPut || req.Header.Get("Content-Type") != ocispec.MediaTypeImageIndex {
				return false
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":"unsupported media type"}]}`)) //nolint:errcheck
			return true
		})
		defer proxy.setHook(nil)
		res, err := installer.Push(context.Background(), r, pushOptions(reg, proxy.Host, "old"))
		if !errors.Is(err, manifests.ErrImagesFailed) {
			t.Fatalf("err %v, want manifests.ErrImagesFailed", err)
		}
		multi := image(t, res, "docker.io/library/multi:1").Err
		if !errors.Is(multi, manifests.ErrMediaTypeRejected) || !strings.Contains(multi.Error(), "upgrade") {
			t.Errorf("multi: %v, want manifests.ErrMediaTypeRejected suggesting an upgrade", multi)
		}
		for _, name := range []string{"docker.io/library/dockerlist:1", "quay.io/org/single:2"} {
			if err := image(t, res, name).Err; err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	})

	t.Run("uploads are retried on 503", func(t *testing.T) {
		var fails atomic.Int32
		fails.Store(2)
		proxy.setHook(func(w http.ResponseWriter, req *http.Request) bool {
			if req.Method != http.MethodPatch || fails.Add(-1) < 0 {
				return false
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		})
		defer proxy.setHook(nil)
		mustPush(t, r, pushOptions(reg, proxy.Host, "retried"))
		if fails.Load() >= 0 {
			t.Fatal("no upload was refused")
		}
		checkPushed(t, reg, r, "retried")
	})
}

// manifestBytes is the size of the bundle's indexes and manifests, which
// are PUT, not uploaded as blobs.
func manifestBytes(t *testing.T, r *bundle.Reader) int64 {
	t.Helper()
	var n int64
	for _, img := range r.Images() {
		err := transfer.Walk(context.Background(), r, img.Descriptor, nil, func(desc ocispec.Descriptor, _ []byte) error {
			if manifests.IsGraphNode(desc.MediaType) {
				n += desc.Size
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return n
}

func TestPushTLSAuth(t *testing.T) {
	const user, password = "ferry", "s3cret-pass"
	reg := testenv.Registry(t, testenv.WithTLS(), testenv.WithHtpasswd(user, password))
	r := mixedBundle(t)

	t.Run("push with CA and credentials", func(t *testing.T) {
		mustPush(t, r, pushOptions(reg, reg.Host, "tls"))
		checkPushed(t, reg, r, "tls")
	})
	t.Run("insecure skips verification", func(t *testing.T) {
		o := pushOptions(reg, reg.Host, "tls")
		o.CAFile, o.Insecure = "", true
		if res := mustPush(t, r, o); res.Stats.BytesCopied != 0 {
			t.Errorf("re-push sent %d bytes", res.Stats.BytesCopied)
		}
	})

	for _, tc := range []struct {
		name   string
		modify func(*installer.PushOptions)
		want   error
		hint   string
	}{
		{"wrong password", func(o *installer.PushOptions) { o.Password = "wrong-pass" }, manifests.ErrUnauthorized, "--username"},
		{"no credentials", func(o *installer.PushOptions) { o.Username, o.Password = "", "" }, manifests.ErrUnauthorized, "REGISTRY_AUTH_FILE"},
		{"unknown CA", func(o *installer.PushOptions) { o.CAFile = "" }, manifests.ErrTLSTrust, "--ca-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := pushOptions(reg, reg.Host, "tls")
			tc.modify(&o)
			res, err := installer.Push(context.Background(), r, o)
			if !errors.Is(err, tc.want) || res != nil {
				t.Fatalf("got %v, %v; want %v", res, err, tc.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, reg.Host) || !strings.Contains(msg, tc.hint) {
				t.Errorf("error does not name the registry and %s: %v", tc.hint, msg)
			}
			if strings.Contains(msg, password) || strings.Contains(msg, "wrong-pass") {
				t.Errorf("error shows the password: %v", msg)
			}
		})
	}
}

func TestPushUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := ln.Addr().String()
	ln.Close()
	r := mixedBundle(t)
	for _, plain := range []bool{true, false} {
		o := installer.PushOptions{To: host, Options: remote.Options{PlainHTTP: plain, Keychain: authn.NewMultiKeychain()}}
		res, err := installer.Push(context.Background(), r, o)
		if !errors.Is(err, manifests.ErrUnreachable) || res != nil || !strings.Contains(err.Error(), host) {
			t.Errorf("plain HTTP %v: got %v, %v; want manifests.ErrUnreachable naming %s", plain, res, err, host)
		}
	}
}

func TestPushDryRun(t *testing.T) {
	r := mixedBundle(t)
	multi, err := r.Image("docker.io/library/multi:1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts installer.PushOptions
		want []string // destinations
		err  error
	}{
		{"prefix", installer.PushOptions{To: "reg.invalid/tke"}, []string{
			"reg.invalid/tke/library/dockerlist:1", "reg.invalid/tke/library/multi:1", "reg.invalid/tke/org/single:2"}, nil},
		{"keep host", installer.PushOptions{To: "reg.invalid:5000", KeepHost: true}, []string{
			"reg.invalid:5000/docker.io/library/dockerlist:1", "reg.invalid:5000/docker.io/library/multi:1", "reg.invalid:5000/quay.io/org/single:2"}, nil},
		{"glob without host", installer.PushOptions{To: "reg.invalid", Images: []string{"library/*"}}, []string{
			"reg.invalid/library/dockerlist:1", "reg.invalid/library/multi:1"}, nil},
		{"glob with host and tag", installer.PushOptions{To: "reg.invalid", Images: []string{"quay.io/org/single:2", "docker.io/library/multi"}}, []string{
			"reg.invalid/library/multi:1", "reg.invalid/org/single:2"}, nil},
		{"no match", installer.PushOptions{To: "reg.invalid", Images: []string{"nothing/*"}}, nil, manifests.ErrNoImages},
		{"empty pattern", installer.PushOptions{To: "reg.invalid", Images: []string{""}}, nil, manifests.ErrInvalidArgument},
		{"no destination", installer.PushOptions{}, nil, manifests.ErrInvalidArgument},
		{"scheme", installer.PushOptions{To: "https://reg.invalid"}, nil, manifests.ErrInvalidArgument},
		{"bad prefix", installer.PushOptions{To: "reg.invalid/UPPER"}, nil, manifests.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.DryRun = true
			res, err := installer.Push(context.Background(), r, tc.opts)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, img := range res.Images {
				got = append(got, img.Destination)
				if img.DigestChanged() {
					t.Errorf("%s: digest changed without --platform", img.Name)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("destinations %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("every platform keeps the digest", func(t *testing.T) {
		o := installer.PushOptions{To: "reg.invalid", DryRun: true, Images: []string{"library/multi"}}
		o.Platforms, _ = manifests.ParsePlatforms([]string{"linux/arm64,linux/amd64"})
		res, err := installer.Push(context.Background(), r, o)
		if err != nil {
			t.Fatal(err)
		}
		if img := res.Images[0]; img.Digest != multi.Descriptor.Digest || len(img.Platforms) != 2 {
			t.Errorf("%+v, want the bundle's digest %s", img, multi.Descriptor.Digest)
		}
	})
}

func TestPushInterrupted(t *testing.T) {
	const layerSize = 2 << 20
	reg := testenv.Registry(t)
	r := pushBundle(t, map[string]testbundle.Image{
		"docker.io/library/big:1": testimages.Index(t, twoPlatforms, testimages.WithRandomLayers(2, layerSize)),
	})

	o := pushOptions(reg, reg.Host, "big")
	o.Jobs = 1 // one blob at a time: the ones before the stop are complete
	stop := &testbundle.CancelAfter{Limit: layerSize * 3 / 2, Cancel: reg.Stop}
	o.Observer = stop
	res, err := installer.Push(context.Background(), r, o)
	if !errors.Is(err, manifests.ErrImagesFailed) || !errors.Is(res.Images[0].Err, manifests.ErrUnreachable) {
		t.Fatalf("push into a registry stopped mid-upload: %v; image: %v", err, res.Images[0].Err)
	}
	first := res.Stats
	t.Logf("interrupted push failed after %v: %v", res.Duration, res.Images[0].Err)

	reg.Start()
	res = mustPush(t, r, pushOptions(reg, reg.Host, "big"))
	checkPushed(t, reg, r, "big")
	if res.Stats.Skipped < first.Copied || res.Stats.BytesSkipped < first.BytesCopied {
		t.Errorf("re-run stats %+v after %+v: want only what was missing sent", res.Stats, first)
	}
	t.Logf("interrupted after %d bytes (%d blobs stored); re-run sent %d blobs (%d bytes), skipped %d",
		stop.Sent(), first.Copied, res.Stats.Copied, res.Stats.BytesCopied, res.Stats.Skipped)
	args := append([]string{"copy", "--all", "--preserve-digests"}, reg.SkopeoFlags("src-")...)
	testenv.Skopeo(t, append(args, "docker://"+reg.Ref("big/library/big:1"), "oci:"+filepath.Join(t.TempDir(), "oci")+":big")...)
}

// serveWritable serves a small bundle with a writable ferry serve on
// 127.0.0.1 until the test ends and returns its host:port.
func serveWritable(t *testing.T) string {
	t.Helper()
	served := pushBundle(t, map[string]testbundle.Image{"docker.io/library/served:1": testimages.Image(t, "linux/amd64")})
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := registry.New(ctx, served, registry.Options{Writable: true, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})
	return ln.Addr().String()
}

func TestPushIntoFerryServe(t *testing.T) {
	host := serveWritable(t)
	r := mixedBundle(t)
	o := installer.PushOptions{To: host + "/pushed", Options: remote.Options{PlainHTTP: true, Keychain: authn.NewMultiKeychain()}}
	mustPush(t, r, o)
	for _, img := range r.Images() {
		_, repo, tag, _ := manifests.SplitReference(img.Name)
		raw := testenv.Skopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+host+"/pushed/"+repo+":"+tag)
		if got := digest.FromBytes([]byte(raw)); got != img.Descriptor.Digest {
			t.Errorf("%s: ferry serve has %s, bundle %s", img.Name, got, img.Descriptor.Digest)
		}
	}
	if res := mustPush(t, r, o); res.Stats.BytesCopied != 0 {
		t.Errorf("re-push into ferry serve sent %d bytes", res.Stats.BytesCopied)
	}
}
