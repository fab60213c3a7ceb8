package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// deltaBundles writes testbundle.Releases as full bundles v1 and v2 and
// the delta of v2 over v1, and returns their paths.
func deltaBundles(t *testing.T) (v1, v2, delta string) {
	t.Helper()
	dir := t.TempDir()
	v1Imgs, v2Imgs := testbundle.Releases(t)
	v1 = testbundle.Write(t, filepath.Join(dir, "v1.tar"), v1Imgs)
	v2 = testbundle.Write(t, filepath.Join(dir, "v2.tar"), v2Imgs)
	delta = filepath.Join(dir, "delta.tar")
	testbundle.WriteOpts(t, delta, v2Imgs, bundle.WriteOptions{Base: testbundle.Open(t, v1)})
	return v1, v2, delta
}

func TestDeltaInspectVerifyMerge(t *testing.T) {
	v1, v2, delta := deltaBundles(t)
	baseDigest := baseDigest(t, v1)

	code, out, stderr := runFerry(t, "", "inspect", "-o", "json", delta)
	var rep bundle.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitOK {
		t.Fatalf("inspect: exit %d, %v:\n%s%s", code, err, out, stderr)
	}
	if rep.Delta == nil || len(rep.Delta.Bases) != 1 || rep.Delta.Bases[0].String() != baseDigest || rep.Delta.BorrowedBytes == 0 {
		t.Errorf("inspect: delta %+v, want base %s and borrowed bytes", rep.Delta, baseDigest)
	}
	code, out, stderr = runFerry(t, "", "inspect", delta)
	if code != exitOK || !strings.Contains(out, "delta of "+baseDigest) || !strings.Contains(out, "borrows") {
		t.Errorf("inspect: exit %d:\n%s%s", code, out, stderr)
	}

	code, out, stderr = runFerry(t, "", "verify", delta)
	if code != exitOK || !strings.Contains(out, "borrowed from its base "+baseDigest) {
		t.Errorf("verify delta: exit %d:\n%s%s", code, out, stderr)
	}
	code, out, stderr = runFerry(t, "", "verify", "--base", v1, delta)
	if code != exitOK || strings.Contains(out, "borrowed") || !strings.Contains(out, "0 problem(s)") {
		t.Errorf("verify --base: exit %d:\n%s%s", code, out, stderr)
	}

	full := filepath.Join(t.TempDir(), "full.tar")
	code, out, stderr = runFerry(t, "", "merge", v1, delta, "-b", full)
	if code != exitOK {
		t.Fatalf("merge: exit %d:\n%s%s", code, out, stderr)
	}
	got, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(v2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("merged bundle (%d bytes) differs from the full build (%d bytes)", len(got), len(want))
	}
}

func TestDeltaCommandErrors(t *testing.T) {
	v1, v2, delta := deltaBundles(t)
	out := filepath.Join(t.TempDir(), "full.tar")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"merge without base", []string{"merge", delta, "-b", out}, exitUsage, "give the base"},
		{"merge without -b", []string{"merge", v1, delta}, exitUsage, "-b/--bundle"},
		{"merge on the wrong base", []string{"merge", v2, delta, "-b", out}, exitFailure, "not the delta's base"},
		{"merge base after delta", []string{"merge", delta, v1, "-b", out}, exitFailure, "a delta bundle needs its base"},
		{"merge of a full bundle", []string{"merge", v1, v2, "-b", out}, exitFailure, "not a delta bundle"},
		{"verify on the wrong base", []string{"verify", "--base", v2, delta}, exitFailure, "not the delta's base"},
		{"build from a lone delta", []string{"build", "--image", "oci-archive:" + delta, "-b", out}, exitFailure, "a delta bundle needs its base"},
		{"build on a lone delta", []string{"build", "--image", "oci-archive:" + v1, "--base", delta, "-b", out}, exitFailure, "a delta bundle needs its base"},
		{"serve a lone delta", []string{"serve", delta, "--plain-http", "--listen", "127.0.0.1:0"}, exitFailure, "a delta bundle needs its base"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runFerry(t, "", tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, want %d with %q; stdout:\n%s\nstderr:\n%s", code, tc.code, tc.want, stdout, stderr)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("%s written: %v", out, err)
			}
		})
	}
}

// upgrade is testbundle.Releases built by ferry from a real docker-registry:
// the full bundles of both releases and the delta of v2 over v1.
type upgrade struct {
	v1, v2, delta string
	v2Paths       []string // v2's images as HOST-less repository:tag
	// deltaBuildLog is the source registry's log of the delta's build.
	deltaBuildLog string
}

func buildUpgrade(t *testing.T) upgrade {
	t.Helper()
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials of the machine
	src := testenv.Registry(t)
	dir := t.TempDir()
	v1Imgs, v2Imgs := testbundle.Releases(t)
	var u upgrade
	list := func(name string, imgs map[string]testbundle.Image) (string, []string) {
		var refs, paths []string
		for n, img := range imgs {
			path := n[strings.Index(n, "/")+1:] // ferrytest/multi:1
			testimages.Push(t, src, path, img)
			refs, paths = append(refs, src.Ref(path)), append(paths, path)
		}
		slices.Sort(refs)
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, []byte(strings.Join(refs, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return file, paths
	}
	v1List, _ := list("v1.txt", v1Imgs)
	v2List, paths := list("v2.txt", v2Imgs)
	u.v2Paths = paths
	u.v1, u.v2, u.delta = filepath.Join(dir, "v1.tar"), filepath.Join(dir, "v2.tar"), filepath.Join(dir, "delta.tar")
	var logStart int
	for _, args := range [][]string{
		{"-f", v1List, "-b", u.v1},
		{"-f", v2List, "-b", u.v2},
		{"-f", v2List, "--base", u.v1, "-b", u.delta},
	} {
		logStart = len(readFile(t, src.LogPath()))
		code, out, stderr := runFerry(t, "", append([]string{"build", "--plain-http"}, args...)...)
		if code != exitOK {
			t.Fatalf("build %v: exit %d:\n%s%s", args, code, out, stderr)
		}
	}
	u.deltaBuildLog = string(readFile(t, src.LogPath())[logStart:])
	return u
}

// bundleBlobs lists every blob the images of the bundle at path reach,
// walked from its index.json.
func bundleBlobs(t *testing.T, path string) map[digest.Digest]ocispec.Descriptor {
	t.Helper()
	r := testbundle.Open(t, path)
	out := map[digest.Digest]ocispec.Descriptor{}
	for _, img := range r.Images() {
		err := transfer.Walk(context.Background(), r, img.Descriptor, nil, func(desc ocispec.Descriptor, _ []byte) error {
			out[desc.Digest] = desc
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestDeltaUpgrade(t *testing.T) {
	u := buildUpgrade(t)

	t.Run("the delta holds what v1 lacks", func(t *testing.T) {
		v1 := bundleBlobs(t, u.v1)
		var want []digest.Digest
		var newBytes int64
		for d, desc := range bundleBlobs(t, u.v2) {
			_, old := v1[d]
			if !old {
				newBytes += desc.Size
			}
			if !old || manifests.IsSmall(desc.MediaType) {
				want = append(want, d)
			}
		}
		slices.Sort(want)
		for d, desc := range v1 {
			if !manifests.IsSmall(desc.MediaType) && strings.Contains(u.deltaBuildLog, string(d)) {
				t.Errorf("the delta's build asked the registry for layer %s, which v1 holds", d)
			}
		}
		if !strings.Contains(u.deltaBuildLog, "/blobs/") {
			t.Fatalf("the source registry's log of the delta build shows no blob fetch:\n%s", u.deltaBuildLog)
		}
		if got := testbundle.Open(t, u.delta).Digests(); !slices.Equal(got, want) {
			t.Errorf("delta holds %v,\nwant the new blobs and v2's indexes, manifests and configs %v", got, want)
		}
		fi, err := os.Stat(u.delta)
		if err != nil {
			t.Fatal(err)
		}
		if limit := newBytes + 256<<10; fi.Size() >= limit {
			t.Errorf("delta is %d bytes, want under %d (new blobs + 256 KiB)", fi.Size(), limit)
		}
	})

	t.Run("merge is the full build", func(t *testing.T) {
		merged := filepath.Join(t.TempDir(), "merged.tar")
		if code, out, stderr := runFerry(t, "", "merge", u.v1, u.delta, "-b", merged); code != exitOK {
			t.Fatalf("merge: exit %d:\n%s%s", code, out, stderr)
		}
		a, errA := os.ReadFile(merged)
		b, errB := os.ReadFile(u.v2)
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Errorf("merge(v1, delta) differs from the full v2 build (%d and %d bytes; %v %v)", len(a), len(b), errA, errB)
		}
	})

	t.Run("push", func(t *testing.T) {
		empty := testenv.Registry(t)
		code, out, stderr := runFerry(t, "", "push", u.delta, "--to", empty.Host, "--plain-http")
		if code != exitFailure || !strings.Contains(stderr, "lacks the delta's base") || !strings.Contains(stderr, "blobs it borrows are not in") || !strings.Contains(stderr, baseDigest(t, u.v1)) {
			t.Errorf("push onto an empty registry: exit %d:\n%s%s", code, out, stderr)
		}
		if repos := catalog(t, empty); len(repos) != 0 {
			t.Errorf("the refused push left repositories %v", repos)
		}

		reg := testenv.Registry(t)
		for _, b := range []string{u.v1, u.delta} {
			if code, out, stderr := runFerry(t, "", "push", b, "--to", reg.Host, "--plain-http"); code != exitOK {
				t.Fatalf("push %s: exit %d:\n%s%s", b, code, out, stderr)
			}
		}
		for _, p := range u.v2Paths {
			layout := "oci:" + filepath.Join(t.TempDir(), "layout") + ":x"
			testenv.Skopeo(t, append(append([]string{"copy", "--all"}, reg.SkopeoFlags("src-")...), "docker://"+reg.Ref(p), layout)...)
		}
	})

	t.Run("import", func(t *testing.T) {
		empty := testenv.Containerd(t)
		code, out, stderr := runFerry(t, "", "import", u.delta, "--address", empty.Address)
		if code != exitFailure || !strings.Contains(stderr, "lacks the delta's base") || !strings.Contains(stderr, "blobs it borrows are not in") || !strings.Contains(stderr, baseDigest(t, u.v1)) {
			t.Errorf("import onto an empty containerd: exit %d:\n%s%s", code, out, stderr)
		}
		if imgs := strings.TrimSpace(empty.Ctr(t, "-n", "k8s.io", "images", "ls", "-q")); imgs != "" {
			t.Errorf("the refused import left image records:\n%s", imgs)
		}

		ctd := testenv.Containerd(t)
		for _, b := range []string{u.v1, u.delta} {
			if code, out, stderr := runFerry(t, "", "import", b, "--address", ctd.Address); code != exitOK {
				t.Fatalf("import %s: exit %d:\n%s%s", b, code, out, stderr)
			}
		}
		rows := map[string][]string{}
		for _, line := range strings.Split(ctd.Ctr(t, "-n", "k8s.io", "images", "check"), "\n") {
			if f := strings.Fields(line); len(f) > 3 {
				rows[f[0]] = f
			}
		}
		host := imageHost(t, u.v2)
		for _, p := range u.v2Paths {
			if f := rows[host+"/"+p]; len(f) < 4 || f[3] != "complete" {
				t.Errorf("ctr images check %s: %v", p, f)
			}
		}
		added := host + "/" + testbundle.ReleaseAdded[0][strings.Index(testbundle.ReleaseAdded[0], "/")+1:]
		if out := ctd.Ctr(t, "-n", "k8s.io", "run", "--rm", added, testenv.ContainerID("delta-run"), "/bin/echo", "upgraded"); !strings.Contains(out, "upgraded") {
			t.Errorf("ctr run %s: %q", added, out)
		}
	})

	t.Run("serve v1 and the delta", func(t *testing.T) {
		url, stop := startServe(t, "serve", u.v1, u.delta, "--listen", "127.0.0.1:0", "--plain-http")
		host := strings.TrimPrefix(url, "http://")
		for _, p := range u.v2Paths {
			layout := "oci:" + filepath.Join(t.TempDir(), "layout") + ":x"
			testenv.Skopeo(t, "copy", "--all", "--src-tls-verify=false", "docker://"+host+"/"+p, layout)
		}
		if code, _, stderr := stop(); code != exitOK {
			t.Errorf("serve: exit %d: %s", code, stderr)
		}
		code, _, stderr := runFerry(t, "", "serve", u.delta, "--listen", "127.0.0.1:0", "--plain-http")
		if code != exitFailure || !strings.Contains(stderr, "a delta bundle needs its base") {
			t.Errorf("serve of the delta alone: exit %d: %s", code, stderr)
		}
	})
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDeltaInstall(t *testing.T) {
	u := buildUpgrade(t)
	target := testenv.Registry(t)
	code, out, stderr := runFerry(t, "", "install", u.v1, u.delta, "--serve", "127.0.0.1:0", "--plain-http",
		"--push-to", target.Host, "--push-plain-http", "--no-serve")
	if code != exitOK {
		t.Fatalf("install v1 delta: exit %d:\n%s%s", code, out, stderr)
	}
	for _, p := range u.v2Paths {
		layout := "oci:" + filepath.Join(t.TempDir(), "layout") + ":x"
		testenv.Skopeo(t, append(append([]string{"copy", "--all"}, target.SkopeoFlags("src-")...), "docker://"+target.Ref(p), layout)...)
	}
	code, _, stderr = runFerry(t, "", "install", u.delta, "--serve", "127.0.0.1:0", "--plain-http", "--no-serve")
	if code != exitFailure || !strings.Contains(stderr, "a delta bundle needs its base") {
		t.Errorf("install of the delta alone: exit %d: %s", code, stderr)
	}
}

// baseDigest is the digest of the bundle at path, as a delta records it.
func baseDigest(t *testing.T, path string) string {
	t.Helper()
	return testbundle.Open(t, path).Digest().String()
}

// imageHost is the registry host of the bundle's first image's name.
func imageHost(t *testing.T, path string) string {
	t.Helper()
	name := testbundle.Open(t, path).Images()[0].Name
	return name[:strings.Index(name, "/")]
}

// catalog lists the repositories of a registry.
func catalog(t *testing.T, reg *testenv.RegistryServer) []string {
	t.Helper()
	resp, err := (&http.Client{Transport: reg.Transport()}).Get("http://" + reg.Host + "/v2/_catalog")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c struct{ Repositories []string }
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c.Repositories
}
