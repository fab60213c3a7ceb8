package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/manifests"
)

// LayoutDir reads an OCI image layout directory (oci:DIR). It is a
// transfer.Fetcher; blob paths come only from validated digests, so nothing
// outside the directory is read, and links out of it are refused.
type LayoutDir struct {
	root *os.Root
	dir  string
}

// OpenLayoutDir opens an OCI layout directory and checks its oci-layout file.
func OpenLayoutDir(dir string) (*LayoutDir, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("oci layout %s: %w", dir, err)
	}
	l := &LayoutDir{root: root, dir: dir}
	b, err := l.readFile(ocispec.ImageLayoutFile)
	if err != nil {
		root.Close()
		return nil, err
	}
	var lf ocispec.ImageLayout
	if err := json.Unmarshal(b, &lf); err != nil || lf.Version == "" {
		root.Close()
		return nil, fmt.Errorf("oci layout %s: %w: oci-layout file is not valid", dir, ErrInvalidSource)
	}
	return l, nil
}

// Close releases the directory.
func (l *LayoutDir) Close() error { return l.root.Close() }

// Index returns the layout's index.json.
func (l *LayoutDir) Index() (ocispec.Index, error) {
	b, err := l.readFile("index.json")
	if err != nil {
		return ocispec.Index{}, err
	}
	idx, err := manifests.ParseIndex(b)
	if err != nil {
		return idx, fmt.Errorf("oci layout %s: index.json: %w", l.dir, err)
	}
	return idx, nil
}

func (l *LayoutDir) readFile(name string) ([]byte, error) {
	f, err := l.root.Open(name)
	if err != nil {
		return nil, fmt.Errorf("oci layout %s: %w", l.dir, err)
	}
	defer f.Close()
	b, err := manifests.ReadManifest(f, name)
	if err != nil {
		return nil, fmt.Errorf("oci layout %s: %w", l.dir, err)
	}
	return b, nil
}

// Fetch implements transfer.Fetcher.
func (l *LayoutDir) Fetch(_ context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("oci layout %s: %w", l.dir, err)
	}
	f, err := l.root.Open(blobName(desc.Digest))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("oci layout %s: blob %s: %w", l.dir, desc.Digest, manifests.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("oci layout %s: blob %s: %w", l.dir, desc.Digest, err)
	}
	return f, nil
}

func blobName(d digest.Digest) string {
	return filepath.Join(ocispec.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
}
