package remote_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/internal/remote"
	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
	"github.com/ferry-oci/ferry/manifests"
)

// TestClientsResolve: build's registry source (Clients.Resolve and the
// Repository's Fetch) against real docker-registries, plain and TLS with
// credentials: the one plain-HTTP rule, TLS trust, credentials, unknown
// tags, and blobs whose bytes match their digests.
func TestClientsResolve(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_RUNTIME_DIR", "")
	plain := testenv.Registry(t)
	want := testimages.Push(t, plain, "library/multi:1", testimages.Index(t, []string{"linux/amd64", "linux/arm64"}))
	tlsReg := testenv.Registry(t, testenv.WithTLS(), testenv.WithHtpasswd("ferry", "s3cret"))
	testimages.Push(t, tlsReg, "library/private:1", testimages.Index(t, []string{"linux/amd64"}))

	tests := []struct {
		name string
		ref  string
		opts remote.Options
		want error
	}{
		{"plain HTTP with PlainHTTP", plain.Ref("library/multi:1"), remote.Options{PlainHTTP: true}, nil},
		{"by digest", plain.Ref("library/multi@" + want.String()), remote.Options{PlainHTTP: true}, nil},
		{"plain HTTP to 127.0.0.1 without PlainHTTP", plain.Ref("library/multi:1"), remote.Options{}, manifests.ErrPlainHTTP},
		{"unknown tag", plain.Ref("library/multi:nope"), remote.Options{PlainHTTP: true}, manifests.ErrNotFound},
		{"unknown repository", plain.Ref("nobody/here:1"), remote.Options{PlainHTTP: true}, manifests.ErrNotFound},
		{"TLS with its CA and credentials", tlsReg.Ref("library/private:1"), remote.Options{CAFile: tlsReg.CAFile, Username: "ferry", Password: "s3cret"}, nil},
		{"TLS without its CA", tlsReg.Ref("library/private:1"), remote.Options{Username: "ferry", Password: "s3cret"}, manifests.ErrTLSTrust},
		{"TLS, no credentials", tlsReg.Ref("library/private:1"), remote.Options{CAFile: tlsReg.CAFile}, manifests.ErrUnauthorized},
		{"TLS, wrong password", tlsReg.Ref("library/private:1"), remote.Options{CAFile: tlsReg.CAFile, Username: "ferry", Password: "nope"}, manifests.ErrUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clients, err := remote.NewClients(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			root, repo, err := clients.Resolve(t.Context(), tc.ref)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Resolve(%s): %v, want %v", tc.ref, err, tc.want)
			}
			if err != nil {
				return
			}
			checkGraph(t, repo, root)
		})
	}
}

// checkGraph fetches root and every descriptor below it and checks that
// the bytes match their digests and sizes.
func checkGraph(t *testing.T, repo *remote.Repository, root ocispec.Descriptor) {
	t.Helper()
	seen := 0
	var walk func(d ocispec.Descriptor)
	walk = func(d ocispec.Descriptor) {
		b := fetch(t, repo, d)
		seen++
		if !manifests.IsGraphNode(d.MediaType) {
			return
		}
		children, err := manifests.Children(d, b)
		if err != nil {
			t.Fatalf("%s: %v", d.Digest, err)
		}
		for _, c := range children {
			walk(c)
		}
	}
	walk(root)
	if seen < 3 {
		t.Errorf("fetched %d nodes, want the index, a manifest and its blobs", seen)
	}
}

func fetch(t *testing.T, repo *remote.Repository, d ocispec.Descriptor) []byte {
	t.Helper()
	rc, err := repo.Fetch(context.Background(), d)
	if err != nil {
		t.Fatalf("Fetch %s: %v", d.Digest, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if got := digest.FromBytes(b); got != d.Digest || int64(len(b)) != d.Size {
		t.Fatalf("Fetch %s: got %s, %d bytes (want %d)", d.Digest, got, len(b), d.Size)
	}
	return b
}
