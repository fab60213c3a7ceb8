package manifests

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// cosign's media types and annotation: a signature manifest has the
// artifact type (or, in the tag scheme, the config media type)
// ArtifactTypeCosignSignature and one simple-signing layer per signature,
// each carrying its base64 signature in AnnotationCosignSignature.
const (
	ArtifactTypeCosignSignature  = "application/vnd.dev.cosign.artifact.sig.v1+json"
	MediaTypeCosignSimpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
	AnnotationCosignSignature    = "dev.cosignproject.cosign/signature"
)

// Suffixes of cosign's tag scheme: the tag sha256-<hex>.sig holds the
// signatures of the manifest sha256:<hex>, .att its attestations and .sbom
// its SBOM.
const (
	CosignSignatureSuffix   = ".sig"
	CosignAttestationSuffix = ".att"
	CosignSBOMSuffix        = ".sbom"
)

// ReferrersTag is the referrers tag schema's tag for subject
// ("sha256-<hex>"): on a registry without the referrers API, the image
// index tagged so lists the manifests whose subject is subject.
func ReferrersTag(subject digest.Digest) string {
	return subject.Algorithm().String() + "-" + subject.Encoded()
}

// CosignTag is cosign's tag-scheme tag for subject with suffix
// (CosignSignatureSuffix, ...): "sha256-<hex>.sig".
func CosignTag(subject digest.Digest, suffix string) string {
	return ReferrersTag(subject) + suffix
}

// ParseCosignTag returns the subject digest and suffix of a cosign
// tag-scheme tag, and false for any other tag.
func ParseCosignTag(tag string) (digest.Digest, string, bool) {
	for _, suffix := range []string{CosignSignatureSuffix, CosignAttestationSuffix, CosignSBOMSuffix} {
		rest, ok := strings.CutSuffix(tag, suffix)
		if !ok {
			continue
		}
		alg, hex, ok := strings.Cut(rest, "-")
		if !ok {
			return "", "", false
		}
		d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex)
		if d.Validate() != nil {
			return "", "", false
		}
		return d, suffix, true
	}
	return "", "", false
}

// ArtifactType is what a referrers index lists as a manifest's artifact
// type: its artifactType field, or else its config's media type (as the
// distribution spec says for manifests without one).
func ArtifactType(m ocispec.Manifest) string {
	if m.ArtifactType != "" {
		return m.ArtifactType
	}
	return m.Config.MediaType
}

// Referrer reads the manifest or index content of desc as a referrer. It
// returns desc as an entry of a referrers list (with ArtifactType and the
// annotations of content) and the subject content names, nil when it names
// none.
func Referrer(desc ocispec.Descriptor, content []byte) (ocispec.Descriptor, *ocispec.Descriptor, error) {
	var m ocispec.Manifest // an index's artifactType, subject and annotations too
	if err := json.Unmarshal(content, &m); err != nil {
		return desc, nil, fmt.Errorf("%s: %w: %v", desc.Digest, ErrInvalidManifest, err)
	}
	if m.Subject != nil {
		if err := m.Subject.Digest.Validate(); err != nil {
			return desc, nil, fmt.Errorf("%s: %w: subject digest %q: %v", desc.Digest, ErrInvalidManifest, m.Subject.Digest, err)
		}
	}
	desc.ArtifactType = ArtifactType(m)
	desc.Annotations = m.Annotations
	return desc, m.Subject, nil
}

// ReferrersMode says which referrers (signatures, SBOMs, attestations)
// travel with the images that build, push or serve move: all (the zero
// value) or none.
type ReferrersMode string

// Referrers modes.
const (
	ReferrersAll  ReferrersMode = "all"
	ReferrersNone ReferrersMode = "none"
)

// ParseReferrersMode reads a --referrers value: all (or empty) or none.
func ParseReferrersMode(s string) (ReferrersMode, error) {
	switch m := ReferrersMode(s); m {
	case "", ReferrersAll:
		return ReferrersAll, nil
	case ReferrersNone:
		return m, nil
	}
	return "", fmt.Errorf("%w: %q: want all or none", ErrInvalidArgument, s)
}
