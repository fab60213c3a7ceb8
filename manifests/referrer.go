package manifests

import (
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Referrer reads the manifest or index content of desc as a referrer. It
// returns desc as an entry of a referrers list (with the artifactType, or
// else the config's media type, and the annotations of content) and the
// subject content names, nil when it names none.
func Referrer(desc ocispec.Descriptor, content []byte) (ocispec.Descriptor, *ocispec.Descriptor, error) {
	var m struct {
		ArtifactType string              `json:"artifactType"`
		Config       *ocispec.Descriptor `json:"config"`
		Subject      *ocispec.Descriptor `json:"subject"`
		Annotations  map[string]string   `json:"annotations"`
	}
	if err := json.Unmarshal(content, &m); err != nil {
		return desc, nil, fmt.Errorf("%s: %w: %v", desc.Digest, ErrInvalidManifest, err)
	}
	if m.Subject != nil {
		if err := m.Subject.Digest.Validate(); err != nil {
			return desc, nil, fmt.Errorf("%s: %w: subject digest %q: %v", desc.Digest, ErrInvalidManifest, m.Subject.Digest, err)
		}
	}
	desc.ArtifactType = m.ArtifactType
	if desc.ArtifactType == "" && m.Config != nil {
		desc.ArtifactType = m.Config.MediaType
	}
	desc.Annotations = m.Annotations
	return desc, m.Subject, nil
}
