package registry

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"

	"github.com/ferry-oci/ferry/internal/testenv"
)

// selfSignedFiles makes a self-signed server configuration for 127.0.0.1
// and writes its CA as DIR/ca.crt (a skopeo --cert-dir); it returns the
// configuration, the directory and the CA file.
func selfSignedFiles(t *testing.T) (Options, string, string) {
	t.Helper()
	cfg, caPEM, err := SelfSignedTLS([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return Options{TLS: cfg}, dir, ca
}

// dirDigest is the digest of the top manifest (or index) that skopeo
// copied into a dir: directory, which keeps manifests byte for byte.
func dirDigest(t *testing.T, dir string) digest.Digest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	return digest.FromBytes(b)
}

// TestSkopeo copies every image (--all) out of a registry with TLS (the
// self-signed CA through --src-cert-dir) and basic authentication, and
// pushes an image into a writable registry and pulls it back.
func TestSkopeo(t *testing.T) {
	f := testBundle(t)
	out := t.TempDir()

	t.Run("pull every image over TLS with auth", func(t *testing.T) {
		opts, certDir, _ := selfSignedFiles(t)
		opts.Htpasswd = writeHtpasswd(t, "puller", "pull-pass")
		s := serveBundle(t, f.path, opts)
		for ref := range f.images {
			dir := filepath.Join(out, strings.NewReplacer("/", "_", ":", "_").Replace(ref))
			testenv.Skopeo(t, "copy", "--all", "--src-cert-dir", certDir, "--src-creds", "puller:pull-pass",
				"docker://"+s.host+"/"+ref, "dir:"+dir)
			if got, want := dirDigest(t, dir), f.digestOf(t, ref); got != want {
				t.Errorf("%s: skopeo copied %s, the bundle has %s", ref, got, want)
			}
		}
		_, err := testenv.SkopeoErr(t, "inspect", "--raw", "--cert-dir", certDir, "docker://"+s.host+"/library/multi:1")
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "authentication required") {
			t.Errorf("skopeo without credentials: %v, want authentication required", err)
		}
		_, err = testenv.SkopeoErr(t, "inspect", "--raw", "--creds", "puller:pull-pass", "docker://"+s.host+"/library/multi:1")
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("skopeo without the CA: %v, want a certificate error", err)
		}
	})

	t.Run("push and pull back", func(t *testing.T) {
		multiDir := filepath.Join(out, strings.NewReplacer("/", "_", ":", "_").Replace(refMulti))
		s := serveBundle(t, f.path, Options{Writable: true})
		dest := "docker://" + s.host + "/pushed/multi:copy"
		testenv.Skopeo(t, "copy", "--all", "--dest-tls-verify=false", "dir:"+multiDir, dest)
		raw := testenv.Skopeo(t, "inspect", "--raw", "--tls-verify=false", dest)
		if got := digest.FromString(raw); got != f.digestOf(t, refMulti) {
			t.Errorf("pushed index is %s, want %s", got, f.digestOf(t, refMulti))
		}
		back := filepath.Join(t.TempDir(), "back")
		testenv.Skopeo(t, "copy", "--all", "--src-tls-verify=false", dest, "dir:"+back)
		if got := dirDigest(t, back); got != f.digestOf(t, refMulti) {
			t.Errorf("pulled back %s, want %s", got, f.digestOf(t, refMulti))
		}

		ro := serveBundle(t, f.path, Options{}) // the default: read-only
		_, err := testenv.SkopeoErr(t, "copy", "--all", "--dest-tls-verify=false", "dir:"+multiDir, "docker://"+ro.host+"/pushed/multi:copy")
		if err == nil || !strings.Contains(err.Error(), "unsupported: this registry serves a bundle read-only") {
			t.Errorf("push into a read-only registry: %v, want the UNSUPPORTED refusal", err)
		}
	})
}

// TestGoContainerRegistry pulls with go-containerregistry's remote package
// by tag and by digest, checks every blob (validate), and reads a range of a
// layer through its registry transport.
func TestGoContainerRegistry(t *testing.T) {
	f := testBundle(t)
	s := serveBundle(t, f.path, Options{})
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	opts := []remote.Option{remote.WithTransport(tr), remote.WithAuth(authn.Anonymous)}
	parse := func(ref string) name.Reference {
		r, err := name.ParseReference(s.host+"/"+ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tc := range []struct{ ref, bundleRef string }{
		{"library/multi:1", refMulti},
		{"library/multi@" + f.digestOf(t, refMulti).String(), refMulti},
		{"library/schema2:1", refSchema2},
	} {
		idx, err := remote.Index(parse(tc.ref), opts...)
		if err != nil {
			t.Fatalf("%s: %v", tc.ref, err)
		}
		if d, err := idx.Digest(); err != nil || d.String() != f.digestOf(t, tc.bundleRef).String() {
			t.Errorf("%s: digest %s, %v", tc.ref, d, err)
		}
		if err := validate.Index(idx); err != nil {
			t.Errorf("%s: %v", tc.ref, err)
		}
	}
	for _, ref := range []string{"quay.io/library/multi:1", "ghcr.io/ferry/tools@" + f.digestOf(t, refTools).String()} {
		img, err := remote.Image(parse(ref), opts...)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if err := validate.Image(img); err != nil {
			t.Errorf("%s: %v", ref, err)
		}
	}

	img, err := remote.Image(parse("ferry/tools:v1"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	l := layers[len(layers)-1]
	whole, _ := l.Compressed()
	want, _ := io.ReadAll(whole)
	whole.Close()
	ld, _ := l.Digest()
	repo := parse("ferry/tools:v1").Context()
	rt, err := transport.NewWithContext(context.Background(), repo.Registry, authn.Anonymous, tr, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.host+"/v2/"+repo.RepositoryStr()+"/blobs/"+ld.String(), nil)
	req.Header.Set("Range", "bytes=1000-")
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, want[1000:]) {
		t.Errorf("Range bytes=1000- of %s: %s, %d bytes (want %d), %v", ld, resp.Status, len(got), len(want)-1000, err)
	}
}

// ctrImageDigest is the digest of ref in `ctr images ls`.
func ctrImageDigest(t *testing.T, c *testenv.ContainerdServer, ref string) string {
	t.Helper()
	for _, line := range strings.Split(c.Ctr(t, "images", "ls"), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[0] == ref {
			return f[2]
		}
	}
	t.Fatalf("%s is not in ctr images ls", ref)
	return ""
}

// TestContainerd pulls with a real containerd: a multi-arch image over
// plain HTTP, and, through a hosts.toml mirror for docker.io and quay.io
// that trusts the self-signed CA, two images with the same path and tag
// from the two registries (containerd's ns parameter tells them apart).
func TestContainerd(t *testing.T) {
	f := testBundle(t)
	ctd := testenv.Containerd(t)

	t.Run("plain http", func(t *testing.T) {
		s := serveBundle(t, f.path, Options{})
		ref := s.host + "/library/multi:1"
		ctd.Ctr(t, "images", "pull", "--plain-http", "--all-platforms", ref)
		if got := ctrImageDigest(t, ctd, ref); got != f.digestOf(t, refMulti).String() {
			t.Errorf("containerd pulled %s, want %s", got, f.digestOf(t, refMulti))
		}
	})

	t.Run("mirror over TLS", func(t *testing.T) {
		opts, _, ca := selfSignedFiles(t)
		s := serveBundle(t, f.path, opts)
		hosts := t.TempDir()
		testenv.MirrorHosts(t, hosts, s.url, ca, "docker.io", "quay.io")
		for _, ref := range []string{refQuay, refMulti} {
			ctd.Ctr(t, "images", "pull", "--hosts-dir", hosts, ref)
			if got := ctrImageDigest(t, ctd, ref); got != f.digestOf(t, ref).String() {
				t.Errorf("%s: containerd pulled %s, want %s", ref, got, f.digestOf(t, ref))
			}
		}
		if lines := s.log.grep(" /v2/library/multi/manifests/", " 200 "); len(lines) == 0 {
			t.Errorf("containerd did not use the mirror path library/multi")
		}
	})
}
