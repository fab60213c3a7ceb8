package signature

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/manifests"
)

// ImageResult is the signature check of one image of a bundle.
type ImageResult struct {
	Name   string        `json:"name"`
	Digest digest.Digest `json:"digest"`
	// Signatures counts the cosign signature manifests the image carries.
	Signatures int `json:"signatures"`
	// Verified says whether one of them is a valid signature by the key.
	Verified bool `json:"verified"`
	// Problem says why not, when not.
	Problem string `json:"problem,omitempty"`
	Err     error  `json:"-"`
}

// Report is the signature check of a bundle's images.
type Report struct {
	Images []ImageResult `json:"images"`
}

// VerifyBundle checks that each of images (of the bundle r) carries a
// cosign signature of its digest by k: a referrer of artifact type
// ArtifactTypeCosignSignature or a sha256-<hex>.sig tag-scheme manifest
// whose simple-signing payload names the image's digest and verifies with
// k. It returns the report, and an error naming every unsigned image
// (ErrUnsigned) and every image whose signatures all fail (ErrBadSignature).
func VerifyBundle(ctx context.Context, r *bundle.Reader, k *Key, images []bundle.Image) (*Report, error) {
	rep := &Report{Images: []ImageResult{}}
	var errs []error
	for _, img := range images {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sigs := Signatures(r, img)
		res := ImageResult{Name: img.Name, Digest: img.Descriptor.Digest, Signatures: len(sigs)}
		if err := k.Verify(ctx, r, img.Descriptor.Digest, sigs); err != nil {
			res.Err = fmt.Errorf("image %s: %w", img.Name, err)
			res.Problem = res.Err.Error()
			errs = append(errs, res.Err)
		} else {
			res.Verified = true
		}
		rep.Images = append(rep.Images, res)
	}
	if len(errs) > 0 {
		return rep, fmt.Errorf("%d of %d image(s) not signed by the key: %w", len(errs), len(images), errors.Join(errs...))
	}
	return rep, nil
}

// Signatures returns the cosign signature manifests of img's root in the
// bundle: OCI 1.1 referrers and the tag-scheme .sig manifest.
func Signatures(r *bundle.Reader, img bundle.Image) []ocispec.Descriptor {
	var out []ocispec.Descriptor
	for _, ref := range r.ReferrersOf(img.Name) {
		isSig := ref.Descriptor.ArtifactType == manifests.ArtifactTypeCosignSignature || strings.HasSuffix(ref.Tag, manifests.CosignSignatureSuffix)
		if ref.Subject == img.Descriptor.Digest && isSig {
			out = append(out, ref.Descriptor)
		}
	}
	return out
}
