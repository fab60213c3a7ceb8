package containerd_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	ctdclient "github.com/containerd/containerd"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/namespaces"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/installer/containerd"
	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// The images of the test bundles.
const (
	bboxName   = "docker.io/library/bbox:1"
	appName    = "docker.io/tkestack/app:v1"
	singleName = "registry.example.com/ferry/single:1"
	armName    = "docker.io/library/armonly:1"
	goodName   = "docker.io/library/good:1"
	badName    = "docker.io/library/bad:1"
)

// nodePlatform is the platform of the test machine, as Import picks it.
const nodePlatform = "linux/amd64"

// TestImport imports bundles into one real containerd, each case in its own
// namespace, and checks the result with ctr, the CRI and the bundle.
func TestImport(t *testing.T) {
	ctd := testenv.Containerd(t)
	dir := t.TempDir()
	mainBundle := testbundle.Open(t, testbundle.Write(t, filepath.Join(dir, "main.tar"), map[string]testbundle.Image{
		bboxName:   testimages.Index(t, []string{"linux/amd64", "linux/arm64"}),
		appName:    testimages.Index(t, []string{"linux/amd64", "linux/arm/v7"}, testimages.Docker(), testimages.WithRandomLayers(1, 32<<10)),
		singleName: testimages.Image(t, "linux/amd64", testimages.WithRandomLayers(1, 16<<10)),
	}))
	armPath := testbundle.Write(t, filepath.Join(dir, "arm.tar"), map[string]testbundle.Image{
		armName: testimages.Index(t, []string{"linux/arm64"}),
	})
	armBundle := testbundle.Open(t, armPath)

	t.Run("modes", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			ns       string
			r        *bundle.Reader
			opts     containerd.ImportOptions
			images   []string
			platform string // written; "" for all
			unpacked bool
			cri      bool // check the CRI's view (namespace k8s.io only)
			run      string
		}{
			{name: "node platform unpacked", ns: "k8s.io", r: mainBundle, images: []string{bboxName, appName, singleName},
				platform: nodePlatform, unpacked: true, cri: true, run: bboxName},
			{name: "all platforms no unpack", ns: "all", r: mainBundle, opts: containerd.ImportOptions{AllPlatforms: true, NoUnpack: true},
				images: []string{bboxName, appName, singleName}},
			{name: "one platform", ns: "arm", r: mainBundle, opts: containerd.ImportOptions{Platform: "linux/arm64", Images: []string{"library/bbox"}},
				images: []string{bboxName}, platform: "linux/arm64", unpacked: true},
			{name: "image glob", ns: "glob", r: mainBundle, opts: containerd.ImportOptions{Images: []string{"tkestack/*"}, Snapshotter: "native"},
				images: []string{appName}, platform: nodePlatform, unpacked: true, run: appName},
			{name: "foreign image all platforms", ns: "foreign", r: armBundle, opts: containerd.ImportOptions{AllPlatforms: true},
				images: []string{armName}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx := context.Background()
				opts := tc.opts
				opts.Address, opts.Namespace = ctd.Address, tc.ns
				res, err := containerd.Import(ctx, tc.r, opts)
				if err != nil {
					t.Fatalf("import: %v", err)
				}
				if got := importedNames(res); strings.Join(got, " ") != strings.Join(tc.images, " ") {
					t.Fatalf("imported %v, want %v", got, tc.images)
				}
				for _, img := range res.Images {
					if img.Record != containerd.RecordCreated || img.Unpacked != tc.unpacked {
						t.Errorf("%s: record %q unpacked %v, want created, %v", img.Name, img.Record, img.Unpacked, tc.unpacked)
					}
				}
				if res.BlobsWritten == 0 || res.BytesWritten == 0 || res.BlobsSkipped != 0 {
					t.Errorf("first import: %d blobs (%d bytes) written, %d skipped", res.BlobsWritten, res.BytesWritten, res.BlobsSkipped)
				}
				checkImported(t, ctd, tc.ns, tc.r, tc.images, tc.platform)
				if tc.platform == nodePlatform {
					ctd.CheckComplete(t, tc.ns, importSnapshotter(opts), tc.images, tc.unpacked)
				}
				if tc.cri {
					checkCRI(t, ctd, tc.r, tc.images)
				}

				// The GC labels keep everything once the lease is gone:
				// collect garbage and look again.
				if leases := ctd.Ctr(t, "-n", tc.ns, "leases", "ls", "-q"); strings.TrimSpace(leases) != "" {
					t.Errorf("leases left after import: %s", leases)
				}
				ctd.Ctr(t, "-n", tc.ns, "images", "tag", tc.images[0], "ferry.test/gc:trigger")
				ctd.Ctr(t, "-n", tc.ns, "images", "rm", "--sync", "ferry.test/gc:trigger")
				checkImported(t, ctd, tc.ns, tc.r, tc.images, tc.platform)
				if tc.run != "" {
					out := ctd.Ctr(t, "-n", tc.ns, "run", "--rm", "--snapshotter", importSnapshotter(opts), tc.run, testenv.ContainerID("t-"+tc.ns), "/bin/echo", "hello from", tc.run)
					if strings.TrimSpace(out) != "hello from "+tc.run {
						t.Errorf("ctr run %s printed %q", tc.run, out)
					}
				}

				again, err := containerd.Import(ctx, tc.r, opts)
				if err != nil {
					t.Fatalf("re-import: %v", err)
				}
				if again.BlobsWritten != 0 || again.BytesWritten != 0 || again.BlobsSkipped != res.BlobsWritten {
					t.Errorf("re-import: %d blobs (%d bytes) written, %d skipped; want 0, 0, %d", again.BlobsWritten, again.BytesWritten, again.BlobsSkipped, res.BlobsWritten)
				}
				for _, img := range again.Images {
					if img.Record != containerd.RecordUnchanged || img.Unpacked != tc.unpacked {
						t.Errorf("re-import %s: record %q unpacked %v", img.Name, img.Record, img.Unpacked)
					}
				}
				t.Logf("import %s, re-import %s", res.Duration, again.Duration)
			})
		}
	})

	t.Run("platforms and unpack added later", func(t *testing.T) {
		// A node-platform import, then an all-platform one: the index
		// already present must reach the manifests added by the second.
		// Then one that unpacks what the others did not.
		ctx := context.Background()
		opts := containerd.ImportOptions{Address: ctd.Address, Namespace: "later", NoUnpack: true, Images: []string{"library/*"}}
		if _, err := containerd.Import(ctx, mainBundle, opts); err != nil {
			t.Fatal(err)
		}
		opts.AllPlatforms = true
		res, err := containerd.Import(ctx, mainBundle, opts)
		if err != nil {
			t.Fatal(err)
		}
		if res.BlobsWritten == 0 || res.BlobsSkipped == 0 {
			t.Errorf("second import wrote %d blobs and skipped %d; want some of each", res.BlobsWritten, res.BlobsSkipped)
		}
		ctd.Ctr(t, "-n", "later", "images", "tag", bboxName, "ferry.test/gc:trigger")
		ctd.Ctr(t, "-n", "later", "images", "rm", "--sync", "ferry.test/gc:trigger")
		checkImported(t, ctd, "later", mainBundle, []string{bboxName}, "")

		opts.NoUnpack, opts.AllPlatforms = false, false
		if res, err = containerd.Import(ctx, mainBundle, opts); err != nil {
			t.Fatal(err)
		}
		if !res.Images[0].Unpacked || res.BlobsWritten != 0 {
			t.Errorf("third import: unpacked %v, %d blobs written", res.Images[0].Unpacked, res.BlobsWritten)
		}
		ctd.CheckComplete(t, "later", containerd.DefaultSnapshotter, []string{bboxName}, true)
	})

	t.Run("manifests present without labels", func(t *testing.T) {
		// Another tool stored the index and the node's manifest with no
		// GC labels; the import must label them, or the garbage
		// collector takes everything below them once the lease is gone.
		ctx := namespaces.WithNamespace(context.Background(), "unlabelled")
		client, err := ctdclient.New(ctd.Address)
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		ctx, release, err := client.WithLease(ctx)
		if err != nil {
			t.Fatal(err)
		}
		img, err := mainBundle.Image(bboxName)
		if err != nil {
			t.Fatal(err)
		}
		for d, mediaType := range bundleGraph(t, mainBundle, img.Descriptor, nodePlatform) {
			if !manifests.IsGraphNode(mediaType) {
				continue
			}
			size, _ := mainBundle.Size(d)
			desc := ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: size}
			b, err := mainBundle.ReadAll(ctx, desc)
			if err != nil {
				t.Fatal(err)
			}
			if err := content.WriteBlob(ctx, client.ContentStore(), "seed-"+d.String(), bytes.NewReader(b), desc); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := containerd.Import(ctx, mainBundle, containerd.ImportOptions{Address: ctd.Address, Namespace: "unlabelled", Images: []string{"library/bbox"}}); err != nil {
			t.Fatal(err)
		}
		if err := release(ctx); err != nil {
			t.Fatal(err)
		}
		ctd.Ctr(t, "-n", "unlabelled", "images", "tag", bboxName, "ferry.test/gc:trigger")
		ctd.Ctr(t, "-n", "unlabelled", "images", "rm", "--sync", "ferry.test/gc:trigger")
		checkImported(t, ctd, "unlabelled", mainBundle, []string{bboxName}, nodePlatform)
		ctd.CheckComplete(t, "unlabelled", containerd.DefaultSnapshotter, []string{bboxName}, true)
	})

	t.Run("cancel and resume", func(t *testing.T) {
		r := testbundle.Open(t, testbundle.Write(t, filepath.Join(t.TempDir(), "big.tar"), map[string]testbundle.Image{
			bboxName:   testimages.Image(t, nodePlatform, testimages.WithRandomLayers(3, 256<<10)),
			singleName: testimages.Index(t, []string{nodePlatform}, testimages.WithRandomLayers(2, 256<<10)),
		}))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		obs := &testbundle.CancelAfter{Limit: 1400 << 10, Cancel: cancel}
		opts := containerd.ImportOptions{Address: ctd.Address, Namespace: "resume", Jobs: 2, Observer: obs}
		res, err := containerd.Import(ctx, r, opts)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled import: %v, want context.Canceled", err)
		}
		if obs.Sent() < obs.Limit {
			t.Fatalf("cancelled after %d bytes", obs.Sent())
		}
		if leases := ctd.Ctr(t, "-n", "resume", "leases", "ls", "-q"); strings.TrimSpace(leases) != "" {
			t.Errorf("leases left after a cancelled import: %s", leases)
		}
		recorded := ctrImages(t, ctd, "resume")
		ctd.CheckComplete(t, "resume", containerd.DefaultSnapshotter, sortedKeys(recorded), true)
		t.Logf("cancelled after %d of %d bytes written; %d images recorded", res.BytesWritten, bundleBytes(t, r), len(recorded))

		opts.Observer = nil
		res, err = containerd.Import(context.Background(), r, opts)
		if err != nil {
			t.Fatalf("second import: %v", err)
		}
		if res.BytesWritten == 0 || res.BytesWritten+res.BytesSkipped != bundleBytes(t, r) {
			t.Errorf("second import wrote %d and skipped %d bytes of %d", res.BytesWritten, res.BytesSkipped, bundleBytes(t, r))
		}
		checkImported(t, ctd, "resume", r, []string{bboxName, singleName}, nodePlatform)
		ctd.CheckComplete(t, "resume", containerd.DefaultSnapshotter, []string{bboxName, singleName}, true)
	})

	// Image bad has a corrupt top layer; image good shares bad's healthy
	// base layers (busybox and a larger one). Bad's failure cancels its
	// own copies, the shared ones included, while good may be waiting for
	// them: good must still be imported complete, every run (-count=20).
	t.Run("corrupt blob", func(t *testing.T) {
		shared, err := random.Layer(256<<10, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		base := testimages.WithSharedBase(shared)
		bad := testimages.Image(t, nodePlatform, base, testimages.WithRandomLayers(1, 64<<10))
		path := testbundle.Write(t, filepath.Join(t.TempDir(), "ok.tar"), map[string]testbundle.Image{
			goodName: testimages.Image(t, nodePlatform, base, testimages.WithRandomLayers(1, 64<<10)),
			badName:  bad,
		})
		layers, err := bad.Layers()
		if err != nil {
			t.Fatal(err)
		}
		badLayer := testbundle.LayerDigest(t, layers[len(layers)-1])
		corrupt := testbundle.CorruptCopy(t, path, badLayer)

		opts := containerd.ImportOptions{Address: ctd.Address, Namespace: "corrupt"}
		res, err := containerd.Import(context.Background(), corrupt, opts)
		var cerr *transfer.CopyError
		switch {
		case !errors.Is(err, manifests.ErrImagesFailed) || !errors.Is(err, manifests.ErrDigestMismatch):
			t.Fatalf("import of a corrupt bundle: %v, want manifests.ErrImagesFailed and ErrDigestMismatch", err)
		case !errors.As(err, &cerr) || cerr.Desc.Digest != badLayer || cerr.Origin != transfer.Source:
			t.Fatalf("error %v does not name the source blob %s", err, badLayer)
		case !strings.Contains(err.Error(), badLayer.String()) || !strings.Contains(err.Error(), badName):
			t.Fatalf("error message %q does not name %s and %s", err, badName, badLayer)
		}
		for _, img := range res.Images {
			if failed := img.Name == badName; failed != (img.Error != "") || failed != (img.Record == "") {
				t.Errorf("%s: record %q error %q", img.Name, img.Record, img.Error)
			}
		}
		want := []string{goodName, repoDigest(t, corrupt, goodName)}
		if got := sortedKeys(ctrImages(t, ctd, "corrupt")); !slices.Equal(got, want) {
			t.Fatalf("image records after a failed import: %v, want only %v", got, want)
		}
		ctd.CheckComplete(t, "corrupt", containerd.DefaultSnapshotter, []string{goodName}, true)

		// The failed blob left nothing that poisons a run with good bytes.
		if _, err := containerd.Import(context.Background(), testbundle.Open(t, path), opts); err != nil {
			t.Fatalf("import of the good bundle after the corrupt one: %v", err)
		}
		ctd.CheckComplete(t, "corrupt", containerd.DefaultSnapshotter, []string{badName, goodName}, true)
	})

	t.Run("errors", func(t *testing.T) {
		tmp := t.TempDir()
		notSocket := filepath.Join(tmp, "file.sock")
		if err := os.WriteFile(notSocket, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name    string
			r       *bundle.Reader
			opts    containerd.ImportOptions
			want    []error
			mention []string
		}{
			{name: "containerd not running", opts: containerd.ImportOptions{Address: staleSocket(t)},
				want: []error{manifests.ErrUnreachable, syscall.ECONNREFUSED}, mention: []string{"not running"}},
			{name: "no socket", opts: containerd.ImportOptions{Address: filepath.Join(tmp, "none.sock")},
				want: []error{manifests.ErrUnreachable, fs.ErrNotExist}, mention: []string{"--address"}},
			{name: "not a socket", opts: containerd.ImportOptions{Address: notSocket},
				want: []error{manifests.ErrUnreachable}},
			{name: "wrong socket", opts: containerd.ImportOptions{Address: ctd.Address + ".ttrpc"},
				want: []error{manifests.ErrUnreachable}, mention: []string{"--address"}},
			{name: "unknown snapshotter", opts: containerd.ImportOptions{Address: ctd.Address, Snapshotter: "nosuch"},
				want: []error{containerd.ErrSnapshotterUnavailable}, mention: []string{`"nosuch"`, "overlayfs", "--snapshotter"}},
			{name: "platform missing", r: armBundle, opts: containerd.ImportOptions{Address: ctd.Address},
				want: []error{manifests.ErrPlatformMissing}, mention: []string{armName, nodePlatform, "it has linux/arm64"}},
			{name: "platform missing, one asked", opts: containerd.ImportOptions{Address: ctd.Address, Platform: "linux/s390x"},
				want: []error{manifests.ErrPlatformMissing}, mention: []string{"linux/s390x"}},
			{name: "no image matched", opts: containerd.ImportOptions{Address: ctd.Address, Images: []string{"library/*", "nosuch/*"}},
				want: []error{manifests.ErrNoImages}, mention: []string{"nosuch/*"}},
			{name: "bad platform", opts: containerd.ImportOptions{Address: ctd.Address, Platform: "linux"},
				want: []error{manifests.ErrInvalidArgument, manifests.ErrInvalidPlatform}},
			{name: "empty pattern", opts: containerd.ImportOptions{Address: ctd.Address, Images: []string{""}},
				want: []error{manifests.ErrInvalidArgument}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := tc.r
				if r == nil {
					r = mainBundle
				}
				opts := tc.opts
				opts.Namespace = "errors"
				res, err := containerd.Import(context.Background(), r, opts)
				if res != nil || err == nil {
					t.Fatalf("import: %+v, %v; want an error", res, err)
				}
				for _, want := range tc.want {
					if !errors.Is(err, want) {
						t.Errorf("error %q is not %q", err, want)
					}
				}
				if errors.Is(err, manifests.ErrUnreachable) {
					tc.mention = append(tc.mention, opts.Address)
				}
				for _, m := range tc.mention {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("error %q does not mention %q", err, m)
					}
				}
			})
		}
		if got := ctrImages(t, ctd, "errors"); len(got) != 0 {
			t.Errorf("failed imports left image records: %v", got)
		}
	})

	t.Run("permission denied", func(t *testing.T) {
		// Root passes every permission check, so run the import as
		// nobody, from a copy of this test binary nobody may execute.
		dir := t.TempDir()
		for _, d := range []string{dir, filepath.Dir(dir)} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		exe := filepath.Join(dir, "installer.test")
		copyTestFile(t, os.Args[0], exe, 0o755)
		bundlePath := filepath.Join(dir, "arm.tar")
		copyTestFile(t, armPath, bundlePath, 0o644)
		cmd := exec.Command(exe, "-test.run=^TestImportHelperProcess$")
		cmd.Env = append(os.Environ(), importHelperAddressEnv+"="+ctd.Address, importHelperBundleEnv+"="+bundlePath)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helper as nobody: %v\n%s", err, out)
		}
		got := parseImportHelper(t, out)
		if !got.Unreachable || !got.Permission || !strings.Contains(got.Message, ctd.Address) || !strings.Contains(got.Message, "root") {
			t.Fatalf("import as nobody: %+v; want manifests.ErrUnreachable and fs.ErrPermission naming the socket and root", got)
		}
		t.Logf("as nobody: %s", got.Message)
	})
}

// The helper process: TestImport runs this test binary as nobody with these
// variables set.
const (
	importHelperAddressEnv = "FERRY_TEST_IMPORT_ADDRESS"
	importHelperBundleEnv  = "FERRY_TEST_IMPORT_BUNDLE"
	importHelperPrefix     = "IMPORT-RESULT "
)

type importHelperResult struct {
	Unreachable, Permission bool
	Message                 string
}

// TestImportHelperProcess is the import that TestImport runs as another
// user; run directly it does nothing.
func TestImportHelperProcess(t *testing.T) {
	addr := os.Getenv(importHelperAddressEnv)
	if addr == "" {
		return
	}
	r := testbundle.Open(t, os.Getenv(importHelperBundleEnv))
	_, err := containerd.Import(context.Background(), r, containerd.ImportOptions{Address: addr, AllPlatforms: true})
	b, _ := json.Marshal(importHelperResult{
		Unreachable: errors.Is(err, manifests.ErrUnreachable),
		Permission:  errors.Is(err, fs.ErrPermission),
		Message:     fmt.Sprint(err),
	})
	fmt.Printf("%s%s\n", importHelperPrefix, b)
}

func parseImportHelper(t *testing.T, out []byte) importHelperResult {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), importHelperPrefix); ok {
			var res importHelperResult
			if err := json.Unmarshal([]byte(line), &res); err != nil {
				t.Fatal(err)
			}
			return res
		}
	}
	t.Fatalf("no result from the helper process:\n%s", out)
	return importHelperResult{}
}

func importSnapshotter(opts containerd.ImportOptions) string {
	if opts.Snapshotter == "" {
		return containerd.DefaultSnapshotter
	}
	return opts.Snapshotter
}

func importedNames(res *containerd.ImportResult) []string {
	var out []string
	for _, img := range res.Images {
		out = append(out, img.Name)
	}
	return out
}

// checkImported checks with ctr that namespace ns holds exactly the image
// records names (besides the CRI's sha256: ones) with the bundle's
// digests, and, of their graphs, every blob of platform (every blob when
// platform is "") and no manifest of another platform.
func checkImported(t *testing.T, ctd *testenv.ContainerdServer, ns string, r *bundle.Reader, names []string, platform string) {
	t.Helper()
	records := ctrImages(t, ctd, ns)
	var want []string
	for _, name := range names {
		want = append(want, name, repoDigest(t, r, name))
	}
	slices.Sort(want)
	if got := sortedKeys(records); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("namespace %s has images %v, want %v", ns, got, want)
	}
	present := ctrContent(t, ctd, ns)
	for _, name := range names {
		img, err := r.Image(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range []string{name, repoDigest(t, r, name)} {
			if records[rec] != img.Descriptor.Digest {
				t.Errorf("%s: record digest %s, bundle digest %s", rec, records[rec], img.Descriptor.Digest)
			}
		}
		want := bundleGraph(t, r, img.Descriptor, platform)
		for d := range want {
			if !present[d] {
				t.Errorf("%s: blob %s missing from namespace %s", name, d, ns)
			}
		}
		for d, mediaType := range bundleGraph(t, r, img.Descriptor, "") {
			if _, ok := want[d]; !ok && present[d] && manifests.IsManifest(mediaType) {
				t.Errorf("%s: manifest %s of another platform than %s was written", name, d, platform)
			}
		}
	}
}

// graph returns the digests and media types of root's graph in the bundle,
// keeping, in indexes, only the entries of platform (all when "").
func bundleGraph(t *testing.T, r *bundle.Reader, root ocispec.Descriptor, platform string) map[digest.Digest]string {
	t.Helper()
	var sel transfer.SelectFunc
	if platform != "" {
		want, err := manifests.ParsePlatform(platform)
		if err != nil {
			t.Fatal(err)
		}
		sel = func(_ context.Context, parent ocispec.Descriptor, children []ocispec.Descriptor) ([]ocispec.Descriptor, error) {
			if !manifests.IsIndex(parent.MediaType) {
				return children, nil
			}
			kept, _ := manifests.SelectPlatforms(ocispec.Index{Manifests: children}, []ocispec.Platform{want})
			return kept, nil
		}
	}
	out := map[digest.Digest]string{}
	err := transfer.Walk(context.Background(), r, root, sel, func(desc ocispec.Descriptor, _ []byte) error {
		out[desc.Digest] = desc.MediaType
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func bundleBytes(t *testing.T, r *bundle.Reader) int64 {
	t.Helper()
	var n int64
	for _, d := range r.Digests() {
		size, _ := r.Size(d)
		n += size
	}
	return n
}

// ctrImages returns the image records of namespace ns (name -> target
// digest) as `ctr images ls` shows them, without the records the CRI adds
// under the config digest.
func ctrImages(t *testing.T, ctd *testenv.ContainerdServer, ns string) map[string]digest.Digest {
	t.Helper()
	out := map[string]digest.Digest{}
	for _, f := range ctd.CtrRows(t, "-n", ns, "images", "ls") {
		if !strings.HasPrefix(f[0], "sha256:") {
			out[f[0]] = digest.Digest(f[2])
		}
	}
	return out
}

// ctrContent returns the digests in namespace ns's content store.
func ctrContent(t *testing.T, ctd *testenv.ContainerdServer, ns string) map[digest.Digest]bool {
	t.Helper()
	out := map[digest.Digest]bool{}
	for _, f := range ctd.CtrRows(t, "-n", ns, "content", "ls", "-q") {
		out[digest.Digest(f[0])] = true
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// checkCRI checks the kubelet's view: the CRI image service lists each
// image with its repo tag and repo digest. The CRI learns of images from
// containerd's events, so it is polled for a while.
func checkCRI(t *testing.T, ctd *testenv.ContainerdServer, r *bundle.Reader, names []string) {
	t.Helper()
	var refs []string
	for _, name := range names {
		refs = append(refs, name, repoDigest(t, r, name))
	}
	ctd.WaitCRIImages(t, refs)
}

// repoDigest returns repository@digest of the bundle's image name.
func repoDigest(t *testing.T, r *bundle.Reader, name string) string {
	t.Helper()
	img, err := r.Image(name)
	if err != nil {
		t.Fatal(err)
	}
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		t.Fatal(err)
	}
	return named.Name() + "@" + img.Descriptor.Digest.String()
}

// staleSocket returns the path of a unix socket nobody listens on any
// more, as containerd leaves behind when it dies.
func staleSocket(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	return path
}

func copyTestFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
