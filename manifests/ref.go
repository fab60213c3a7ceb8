package manifests

import (
	"fmt"

	"github.com/distribution/reference"
)

// NormalizeReference returns the full form of an image reference, with
// registry host and tag or digest: "nginx" becomes
// "docker.io/library/nginx:latest".
func NormalizeReference(ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("%w %q: %v", ErrInvalidReference, ref, err)
	}
	return reference.TagNameOnly(named).String(), nil
}

// SplitReference splits a normalized reference into its registry host, its
// repository path below the host, and its tag or digest ("tag" or "@sha256:...").
func SplitReference(ref string) (host, path, tagOrDigest string, err error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", "", "", fmt.Errorf("%w %q: %v", ErrInvalidReference, ref, err)
	}
	named = reference.TagNameOnly(named)
	host, path = reference.Domain(named), reference.Path(named)
	switch r := named.(type) {
	case reference.Digested:
		tagOrDigest = "@" + r.Digest().String()
	case reference.Tagged:
		tagOrDigest = r.Tag()
	}
	return host, path, tagOrDigest, nil
}
