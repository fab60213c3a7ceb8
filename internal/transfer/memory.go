package transfer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/manifests"
)

// Memory is a Target and Fetcher that keeps small blobs (indexes, manifests,
// configs) in memory. Builds use it for content they create or rewrite.
type Memory struct {
	mu    sync.RWMutex
	blobs map[digest.Digest][]byte
}

// NewMemory returns an empty Memory store.
func NewMemory() *Memory {
	return &Memory{blobs: map[digest.Digest][]byte{}}
}

// Add stores content under a descriptor of mediaType and returns it.
func (m *Memory) Add(mediaType string, content []byte) ocispec.Descriptor {
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(content), Size: int64(len(content))}
	m.mu.Lock()
	m.blobs[desc.Digest] = content
	m.mu.Unlock()
	return desc
}

// Fetch implements Fetcher.
func (m *Memory) Fetch(_ context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	m.mu.RLock()
	b, ok := m.blobs[desc.Digest]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%s: %w", desc.Digest, manifests.ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// Exists implements Exister.
func (m *Memory) Exists(_ context.Context, desc ocispec.Descriptor) (bool, error) {
	m.mu.RLock()
	_, ok := m.blobs[desc.Digest]
	m.mu.RUnlock()
	return ok, nil
}

// Push implements Pusher.
func (m *Memory) Push(_ context.Context, desc ocispec.Descriptor, content io.Reader) error {
	b, err := io.ReadAll(content)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.blobs[desc.Digest] = b
	m.mu.Unlock()
	return nil
}

// Overlay is a Fetcher that reads from the first of its fetchers that has a
// blob: a Memory of rewritten indexes over an upstream source, say.
type Overlay []Fetcher

// Fetch implements Fetcher.
func (o Overlay) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	err := fmt.Errorf("%s: %w", desc.Digest, manifests.ErrNotFound)
	for _, f := range o {
		rc, ferr := f.Fetch(ctx, desc)
		if ferr == nil {
			return rc, nil
		}
		if !errors.Is(ferr, manifests.ErrNotFound) {
			err = ferr
		}
	}
	return nil, err
}
