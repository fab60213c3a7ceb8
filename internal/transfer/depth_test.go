package transfer_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"sync/atomic"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// chain is an image whose root is levels-1 indexes nested in one another
// above a manifest: levels levels of indexes and manifests in all.
func chain(t *testing.T, src *transfer.Memory, levels int) ocispec.Descriptor {
	t.Helper()
	config := src.Add(ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux"}`))
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: []ocispec.Descriptor{}}
	m.SchemaVersion = 2
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	desc := src.Add(ocispec.MediaTypeImageManifest, b)
	for range levels - 1 {
		idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{desc}}
		idx.SchemaVersion = 2
		if b, err = json.Marshal(idx); err != nil {
			t.Fatal(err)
		}
		desc = src.Add(ocispec.MediaTypeImageIndex, b)
	}
	return desc
}

// counting counts the blobs fetched from a Fetcher.
type counting struct {
	transfer.Fetcher
	n atomic.Int64
}

func (c *counting) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	c.n.Add(1)
	return c.Fetcher.Fetch(ctx, desc)
}

// TestDepthLimit walks and copies an image nested manifests.MaxDepth
// levels deep, and one of 20,000 levels: the first passes, the second is
// refused with ErrTooDeep after reading no more than MaxDepth levels.
func TestDepthLimit(t *testing.T) {
	for _, c := range []struct {
		levels int
		want   error
	}{
		{manifests.MaxDepth, nil},
		{manifests.MaxDepth + 1, manifests.ErrTooDeep},
		{20000, manifests.ErrTooDeep},
	} {
		src := transfer.NewMemory()
		root := chain(t, src, c.levels)
		walked := &counting{Fetcher: src}
		err := transfer.Walk(t.Context(), walked, root, nil, func(ocispec.Descriptor, []byte) error { return nil })
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("walk of %d levels: %v, want %v", c.levels, err, c.want)
		}
		copied := &counting{Fetcher: src}
		_, err = transfer.Copy(t.Context(), copied, transfer.NewMemory(), root, transfer.Options{})
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("copy of %d levels: %v, want %v", c.levels, err, c.want)
		}
		for what, n := range map[string]int64{"walk": walked.n.Load(), "copy": copied.n.Load()} {
			if n > manifests.MaxDepth+1 {
				t.Errorf("%s of %d levels read %d blobs", what, c.levels, n)
			}
		}
	}
}
