package transfer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// graph is a small two-platform index over a shared layer, in a Memory.
type graph struct {
	src                      *transfer.Memory
	index, amd64, arm64      ocispec.Descriptor
	shared, config1, config2 ocispec.Descriptor
}

func newGraph(t *testing.T) graph {
	t.Helper()
	g := graph{src: transfer.NewMemory()}
	g.shared = g.src.Add(ocispec.MediaTypeImageLayerGzip, []byte("shared layer bytes"))
	g.config1 = g.src.Add(ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux"}`))
	g.config2 = g.src.Add(ocispec.MediaTypeImageConfig, []byte(`{"architecture":"arm64","os":"linux"}`))
	manifest := func(config ocispec.Descriptor) ocispec.Descriptor {
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: []ocispec.Descriptor{g.shared}}
		m.SchemaVersion = 2
		b, _ := json.Marshal(m)
		return g.src.Add(ocispec.MediaTypeImageManifest, b)
	}
	g.amd64, g.arm64 = manifest(g.config1), manifest(g.config2)
	g.amd64.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	g.arm64.Platform = &ocispec.Platform{OS: "linux", Architecture: "arm64"}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{g.amd64, g.arm64}}
	idx.SchemaVersion = 2
	b, _ := json.Marshal(idx)
	g.index = g.src.Add(ocispec.MediaTypeImageIndex, b)
	return g
}

// recorder is a Target that records the order of pushes and counts them.
type recorder struct {
	*transfer.Memory
	mu     sync.Mutex
	pushed []digest.Digest
}

func (r *recorder) Push(ctx context.Context, desc ocispec.Descriptor, content io.Reader) error {
	if err := r.Memory.Push(ctx, desc, content); err != nil {
		return err
	}
	r.mu.Lock()
	r.pushed = append(r.pushed, desc.Digest)
	r.mu.Unlock()
	return nil
}

func (r *recorder) position(d digest.Digest) int {
	for i, p := range r.pushed {
		if p == d {
			return i
		}
	}
	return -1
}

func TestCopyChildrenFirstSharedOnce(t *testing.T) {
	g := newGraph(t)
	dst := &recorder{Memory: transfer.NewMemory()}
	c := transfer.NewCopier(dst, transfer.Options{Jobs: 2})
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for _, root := range []ocispec.Descriptor{g.index, g.amd64, g.arm64} { // graphs in flight together
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- c.Copy(context.Background(), g.src, root)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(dst.pushed) != 6 {
		t.Fatalf("pushed %d blobs, want 6 (each once): %v", len(dst.pushed), dst.pushed)
	}
	for _, edge := range [][2]ocispec.Descriptor{{g.shared, g.amd64}, {g.config2, g.arm64}, {g.amd64, g.index}, {g.arm64, g.index}} {
		if dst.position(edge[0].Digest) > dst.position(edge[1].Digest) {
			t.Errorf("%s pushed after its parent %s", edge[0].Digest, edge[1].Digest)
		}
	}
	if stats := c.Stats(); stats.Copied != 6 || stats.Skipped != 0 {
		t.Errorf("stats %+v", stats)
	}
}

func TestCopySkipsWhatTheTargetHas(t *testing.T) {
	g := newGraph(t)
	dst := &recorder{Memory: transfer.NewMemory()}
	if _, err := transfer.Copy(context.Background(), g.src, dst, g.index, transfer.Options{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		trust       bool
		wantSkipped int
	}{
		{"every node checked", false, 6},
		{"existing manifests trusted", true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stats, err := transfer.Copy(context.Background(), g.src, dst, g.index, transfer.Options{TrustExistingManifests: tt.trust})
			if err != nil {
				t.Fatal(err)
			}
			if stats.Copied != 0 || stats.Skipped != tt.wantSkipped || stats.BytesCopied != 0 {
				t.Errorf("second copy: %+v, want nothing copied and %d skipped", stats, tt.wantSkipped)
			}
		})
	}
}

func TestCopySelect(t *testing.T) {
	g := newGraph(t)
	dst := transfer.NewMemory()
	onlyAMD64 := func(_ context.Context, parent ocispec.Descriptor, children []ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		if parent.Digest != g.index.Digest {
			return children, nil
		}
		return children[:1], nil
	}
	if _, err := transfer.Copy(context.Background(), g.src, dst, g.index, transfer.Options{Select: onlyAMD64}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		d    ocispec.Descriptor
		want bool
	}{{g.index, true}, {g.amd64, true}, {g.config1, true}, {g.arm64, false}, {g.config2, false}} {
		if got, _ := dst.Exists(context.Background(), tt.d); got != tt.want {
			t.Errorf("%s %s stored: %v, want %v", tt.d.MediaType, tt.d.Digest, got, tt.want)
		}
	}
}

// lying is a Fetcher that returns other bytes than the digest says.
type lying struct{ *transfer.Memory }

func (l lying) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if desc.MediaType == ocispec.MediaTypeImageLayerGzip {
		return io.NopCloser(bytes.NewReader(bytes.Repeat([]byte("x"), int(desc.Size)))), nil
	}
	return l.Memory.Fetch(ctx, desc)
}

func TestCopyRefusesBadBytes(t *testing.T) {
	g := newGraph(t)
	dst := &recorder{Memory: transfer.NewMemory()}
	_, err := transfer.Copy(context.Background(), lying{g.src}, dst, g.index, transfer.Options{})
	if !errors.Is(err, manifests.ErrDigestMismatch) {
		t.Fatalf("error %v, want ErrDigestMismatch", err)
	}
	var ce *transfer.CopyError
	if !errors.As(err, &ce) || ce.Origin != transfer.Source || ce.Desc.Digest != g.shared.Digest {
		t.Errorf("error %v should blame the source's layer %s", err, g.shared.Digest)
	}
	for _, parent := range []ocispec.Descriptor{g.amd64, g.arm64, g.index} {
		if ok, _ := dst.Exists(context.Background(), parent); ok {
			t.Errorf("%s stored although its layer failed", parent.MediaType)
		}
	}
}

func TestVerifyReader(t *testing.T) {
	content := []byte("hello, bundle")
	desc := ocispec.Descriptor{Digest: digest.FromBytes(content), Size: int64(len(content))}
	tests := []struct {
		name  string
		input []byte
		want  error
	}{
		{"right bytes", content, nil},
		{"short", content[:5], manifests.ErrSizeMismatch},
		{"long", append(append([]byte{}, content...), '!'), manifests.ErrSizeMismatch},
		{"wrong bytes", []byte("HELLO, BUNDLE"), manifests.ErrDigestMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := io.ReadAll(transfer.NewVerifyReader(bytes.NewReader(tt.input), desc))
			if !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
		})
	}
}
