package transfer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// siblings are two images in one Memory: A has a healthy base layer and a
// corrupt top layer, B has only A's base layer.
type siblings struct {
	src              *transfer.Memory
	a, b, base, bad  ocispec.Descriptor
	configA, configB ocispec.Descriptor
}

func newSiblings(t *testing.T) siblings {
	t.Helper()
	s := siblings{src: transfer.NewMemory()}
	s.base = s.src.Add(ocispec.MediaTypeImageLayerGzip, []byte("base layer both images share"))
	s.bad = s.src.Add(ocispec.MediaTypeImageLayerGzip, []byte("top layer of image A"))
	s.configA = s.src.Add(ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux","a":1}`))
	s.configB = s.src.Add(ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux","b":1}`))
	manifest := func(config ocispec.Descriptor, layers ...ocispec.Descriptor) ocispec.Descriptor {
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: layers}
		m.SchemaVersion = 2
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return s.src.Add(ocispec.MediaTypeImageManifest, b)
	}
	s.a = manifest(s.configA, s.base, s.bad)
	s.b = manifest(s.configB, s.base)
	return s
}

// staged is the source of the race: the first fetch of the base layer
// (by image A) hangs until its context ends; A's corrupt layer is served
// with wrong bytes only once image B has started (B's config was fetched),
// so B is waiting on A's copy of the base layer when A's graph fails.
type staged struct {
	siblings
	bStarted  chan struct{}
	startOnce sync.Once
	baseMu    sync.Mutex
	baseCalls int
}

func (s *staged) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	switch desc.Digest {
	case s.configB.Digest:
		s.startOnce.Do(func() { close(s.bStarted) })
	case s.bad.Digest:
		<-s.bStarted
		return io.NopCloser(bytes.NewReader(bytes.Repeat([]byte("x"), int(desc.Size)))), nil
	case s.base.Digest:
		s.baseMu.Lock()
		s.baseCalls++
		first := s.baseCalls == 1
		s.baseMu.Unlock()
		if first {
			<-ctx.Done()
			return nil, ctx.Err()
		}
	}
	return s.src.Fetch(ctx, desc)
}

// TestSiblingFailureNeverFailsAHealthyGraph: two graphs share one Copier
// (as import and push share one per target). Image A's corrupt layer
// cancels A's copy of the base layer while image B waits for it; B must
// copy the base layer itself and succeed, and A fails with its own error.
func TestSiblingFailureNeverFailsAHealthyGraph(t *testing.T) {
	s := &staged{siblings: newSiblings(t), bStarted: make(chan struct{})}
	dst := transfer.NewMemory()
	c := transfer.NewCopier(dst, transfer.Options{Jobs: 4})
	errA := make(chan error, 1)
	go func() { errA <- c.Copy(context.Background(), s, s.a) }()
	// B starts once A owns the base layer's copy.
	for {
		s.baseMu.Lock()
		started := s.baseCalls > 0
		s.baseMu.Unlock()
		if started {
			break
		}
		select {
		case err := <-errA:
			t.Fatalf("image A finished before fetching its base layer: %v", err)
		default:
		}
	}
	if err := c.Copy(context.Background(), s, s.b); err != nil {
		t.Fatalf("healthy image B failed because of its sibling: %v", err)
	}
	if err := <-errA; !errors.Is(err, manifests.ErrDigestMismatch) {
		t.Fatalf("image A: %v, want ErrDigestMismatch", err)
	}
	for _, d := range []ocispec.Descriptor{s.b, s.configB, s.base} {
		if ok, _ := dst.Exists(context.Background(), d); !ok {
			t.Errorf("%s %s of image B not copied", d.MediaType, d.Digest)
		}
	}
	if ok, _ := dst.Exists(context.Background(), s.a); ok {
		t.Error("image A's manifest copied although its layer is corrupt")
	}
}

// cancelling is a Fetcher that cancels its copy's context as the base
// layer is fetched.
type cancelling struct {
	siblings
	cancel context.CancelFunc
}

func (c cancelling) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if desc.Digest == c.base.Digest {
		c.cancel()
		return nil, ctx.Err()
	}
	return c.src.Fetch(ctx, desc)
}

// TestCancelledCopyIsNotCached: a copy cut short by its context leaves no
// error behind in the Copier; the same graph copies fine afterwards.
func TestCancelledCopyIsNotCached(t *testing.T) {
	s := newSiblings(t)
	dst := transfer.NewMemory()
	c := transfer.NewCopier(dst, transfer.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.Copy(ctx, cancelling{s, cancel}, s.b); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled copy: %v, want context.Canceled", err)
	}
	if err := c.Copy(context.Background(), s.src, s.b); err != nil {
		t.Fatalf("copy after a cancelled one: %v", err)
	}
}
