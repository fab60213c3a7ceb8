package transfer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/internal/transfer"
)

// discardTarget is a Target that has nothing and writes every blob to
// io.Discard: the cost measured is the engine's (walk, dedupe, verify).
type discardTarget struct{}

func (discardTarget) Exists(context.Context, ocispec.Descriptor) (bool, error) { return false, nil }

func (discardTarget) Push(_ context.Context, _ ocispec.Descriptor, content io.Reader) error {
	_, err := io.Copy(io.Discard, content)
	return err
}

// BenchmarkCopy copies one image (a manifest, its config and its layers)
// from a Memory store to a discarding target: hashing and per-blob
// overhead, from one big layer to many small ones.
func BenchmarkCopy(b *testing.B) {
	for _, tc := range []struct {
		layers int
		size   int
	}{
		{1, 64 << 20},
		{64, 1 << 20},
		{1024, 16 << 10},
	} {
		b.Run(fmt.Sprintf("%dx%dKiB", tc.layers, tc.size>>10), func(b *testing.B) {
			src, root, total := benchImage(b, tc.layers, tc.size)
			ctx := context.Background()
			b.SetBytes(total)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := transfer.Copy(ctx, src, discardTarget{}, root, transfer.Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchImage stores an image of n random layers of size bytes in a Memory
// and returns it, its manifest's descriptor and the bytes of all its blobs.
func benchImage(b *testing.B, n, size int) (*transfer.Memory, ocispec.Descriptor, int64) {
	b.Helper()
	m := transfer.NewMemory()
	rng := rand.NewChaCha8([32]byte{1})
	man := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    m.Add(ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux"}`)),
	}
	total := man.Config.Size
	for i := 0; i < n; i++ {
		layer := make([]byte, size)
		_, _ = rng.Read(layer)
		man.Layers = append(man.Layers, m.Add(ocispec.MediaTypeImageLayerGzip, layer))
		total += int64(size)
	}
	data, err := json.Marshal(man)
	if err != nil {
		b.Fatal(err)
	}
	root := m.Add(ocispec.MediaTypeImageManifest, data)
	return m, root, total + root.Size
}
