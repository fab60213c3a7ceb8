package testimages

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ferry-oci/ferry/internal/testenv"
)

// RemoteOptions returns the go-containerregistry remote options that reach
// reg: a transport trusting its test CA and its basic-auth credentials.
func RemoteOptions(reg *testenv.RegistryServer) []remote.Option {
	auth := authn.Anonymous
	if reg.User != "" {
		auth = authn.FromConfig(authn.AuthConfig{Username: reg.User, Password: reg.Password})
	}
	return []remote.Option{
		remote.WithTransport(reg.Transport()),
		remote.WithAuth(auth),
		remote.WithContext(context.Background()),
	}
}

// Ref parses ref as a reference in reg: "repo:tag" or "repo@sha256:..."
// becomes "HOST/repo:tag"; a ref that already starts with reg.Host is used
// as it is. Plain-HTTP registries get an insecure (http) reference.
func Ref(t testing.TB, reg *testenv.RegistryServer, ref string) name.Reference {
	t.Helper()
	if !strings.HasPrefix(ref, reg.Host+"/") {
		ref = reg.Host + "/" + ref
	}
	var opts []name.Option
	if reg.CAPool == nil {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		t.Fatalf("testimages: reference %q: %v", ref, err)
	}
	return r
}

// Push writes img (a v1.Image) or an index (a v1.ImageIndex, with all its
// children) to ref in reg (see Ref) and returns the pushed manifest digest.
func Push(t testing.TB, reg *testenv.RegistryServer, ref string, x remote.Taggable) v1.Hash {
	t.Helper()
	r := Ref(t, reg, ref)
	opts := RemoteOptions(reg)
	var (
		d   v1.Hash
		err error
	)
	switch x := x.(type) {
	case v1.ImageIndex:
		if d, err = x.Digest(); err == nil {
			err = remote.WriteIndex(r, x, opts...)
		}
	case v1.Image:
		if d, err = x.Digest(); err == nil {
			err = remote.Write(r, x, opts...)
		}
	default:
		t.Fatalf("testimages: push %s: %T is neither a v1.Image nor a v1.ImageIndex", r, x)
	}
	if err != nil {
		t.Fatalf("testimages: push %s: %v", r, err)
	}
	return d
}
