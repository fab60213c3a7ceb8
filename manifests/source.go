package manifests

import (
	"fmt"
	"path/filepath"
	"strings"
)

// SourceKind is where an image source reads from.
type SourceKind int

// The kinds of image source. Anything without a transport prefix is a
// registry reference ("foo:bar" is docker.io/library/foo:bar).
const (
	SourceRegistry      SourceKind = iota // a registry reference
	SourceOCILayout                       // oci:DIR[:NAME]
	SourceOCIArchive                      // oci-archive:FILE
	SourceDockerArchive                   // docker-archive:FILE[:NAME]
)

// sourcePrefixes are the transport prefixes of the non-registry kinds.
var sourcePrefixes = map[SourceKind]string{
	SourceOCILayout:     "oci:",
	SourceOCIArchive:    "oci-archive:",
	SourceDockerArchive: "docker-archive:",
}

// Source is an image source parsed once: a registry reference, or an OCI
// layout directory, OCI archive or docker archive with an optional image
// name. The zero Source is empty and prints as "".
type Source struct {
	Kind SourceKind
	// Ref is the normalized registry reference (SourceRegistry only).
	Ref string
	// Path is the layout directory or archive file (other kinds).
	Path string
	// Name selects one image of an oci: layout (its ref name) or of a
	// docker-archive: (a reference or @INDEX); "" takes them all.
	Name string
}

// ParseSource parses an image source: a registry reference (normalized),
// "oci:DIR[:NAME]", "oci-archive:FILE" or "docker-archive:FILE[:NAME]". As
// in skopeo, a path ends at the first colon. Errors wrap
// ErrInvalidReference and name s.
func ParseSource(s string) (Source, error) {
	for _, kind := range []SourceKind{SourceOCILayout, SourceOCIArchive, SourceDockerArchive} {
		if prefix := sourcePrefixes[kind]; strings.HasPrefix(s, prefix) {
			return parseTransportSource(kind, prefix, s)
		}
	}
	if strings.HasPrefix(s, "docker://") {
		return Source{}, fmt.Errorf("%w %q: write registry references without docker://", ErrInvalidReference, s)
	}
	ref, err := NormalizeReference(s)
	if err != nil {
		return Source{}, err
	}
	return Source{Kind: SourceRegistry, Ref: ref}, nil
}

// parseTransportSource checks "PREFIX PATH[:NAME]".
func parseTransportSource(kind SourceKind, prefix, s string) (Source, error) {
	path, name, hasName := strings.Cut(strings.TrimPrefix(s, prefix), ":")
	if path == "" {
		return Source{}, fmt.Errorf("%w %q: no path after %s", ErrInvalidReference, s, prefix)
	}
	if hasName {
		switch {
		case kind == SourceOCIArchive:
			return Source{}, fmt.Errorf("%w %q: oci-archive: takes a file and no image name (it brings all its images)", ErrInvalidReference, s)
		case name == "":
			return Source{}, fmt.Errorf("%w %q: empty image name after the path", ErrInvalidReference, s)
		case kind == SourceDockerArchive && !strings.HasPrefix(name, "@"):
			if _, err := NormalizeReference(name); err != nil {
				return Source{}, fmt.Errorf("%w %q: image name: %v", ErrInvalidReference, s, err)
			}
		}
	}
	return Source{Kind: kind, Path: path, Name: name}, nil
}

// InDir returns s with a relative layout or archive path joined to dir.
func (s Source) InDir(dir string) Source {
	if s.Kind != SourceRegistry && !filepath.IsAbs(s.Path) {
		s.Path = filepath.Join(dir, s.Path)
	}
	return s
}

// String returns the canonical form of s, which ParseSource reads back.
func (s Source) String() string {
	if s.Kind == SourceRegistry {
		return s.Ref
	}
	out := sourcePrefixes[s.Kind] + s.Path
	if s.Name != "" {
		out += ":" + s.Name
	}
	return out
}
