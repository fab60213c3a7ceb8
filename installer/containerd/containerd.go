package containerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/leases"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// connectTimeout bounds connecting to containerd.
const connectTimeout = 5 * time.Second

// cleanupTimeout bounds the clean-up requests (dropping a failed ingest,
// ending the lease) that run even when the import's context is cancelled.
const cleanupTimeout = 5 * time.Second

// cleanupContext returns a context for clean-up after ctx: with ctx's
// values (namespace, lease), without its cancellation, bounded by
// cleanupTimeout.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}

// snapshotterPluginType is the containerd plugin type of snapshotters.
const snapshotterPluginType = "io.containerd.snapshotter.v1"

// connect opens a client of the containerd at address, in namespace. It
// first dials the socket itself, so that a missing socket, a refused
// connection or a permission problem is named as such.
func connect(ctx context.Context, address, namespace string) (*containerd.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "unix", address)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, dialError(address, err)
	}
	conn.Close()
	client, err := containerd.New(address, containerd.WithDefaultNamespace(namespace), containerd.WithTimeout(connectTimeout))
	if err == nil {
		if _, err = client.Version(dctx); err != nil {
			client.Close()
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("containerd at %s: the socket does not answer as containerd's gRPC API (give containerd's own socket with --address, not its .ttrpc socket nor docker's): %w: %w", address, manifests.ErrUnreachable, err)
	}
	return client, nil
}

// dialError explains a failure to connect to containerd's socket. It wraps
// manifests.ErrUnreachable and the system error (fs.ErrNotExist, fs.ErrPermission,
// syscall.ECONNREFUSED, ...).
func dialError(address string, err error) error {
	hint := "cannot connect"
	switch {
	case errors.Is(err, fs.ErrNotExist):
		hint = "no such socket: is containerd running? (give its socket with --address, e.g. /run/k3s/containerd/containerd.sock)"
	case errors.Is(err, fs.ErrPermission):
		hint = "permission denied: run ferry as root (or as a user allowed to use the socket)"
	case errors.Is(err, syscall.ECONNREFUSED):
		hint = "connection refused: containerd is not running (start it, e.g. systemctl start containerd), or this is not its socket"
	}
	return fmt.Errorf("containerd at %s: %s: %w: %w", address, hint, manifests.ErrUnreachable, err)
}

// checkSnapshotter fails, naming the snapshotters containerd has, unless
// the snapshotter name is loaded.
func checkSnapshotter(ctx context.Context, client *containerd.Client, address, name string) error {
	resp, err := client.IntrospectionService().Plugins(ctx, []string{"type==" + snapshotterPluginType})
	if err != nil {
		return fmt.Errorf("containerd at %s: list snapshotters: %w", address, err)
	}
	var have []string
	for _, p := range resp.Plugins {
		switch {
		case p.ID == name && p.InitErr != nil:
			return fmt.Errorf("snapshotter %q of containerd at %s failed to load (%s): %w; choose another with --snapshotter", name, address, p.InitErr.Message, ErrSnapshotterUnavailable)
		case p.ID == name:
			return nil
		case p.InitErr == nil:
			have = append(have, p.ID)
		}
	}
	sort.Strings(have)
	return fmt.Errorf("snapshotter %q: %w in containerd at %s, which has: %s (choose one with --snapshotter)", name, ErrSnapshotterUnavailable, address, strings.Join(have, ", "))
}

// contentTarget is containerd's content store as a transfer.Target.
// Indexes and manifests carry the GC reference labels of all their
// children, so what an image record reaches stays referenced once the
// import's lease is gone; until then the lease holds every blob written or
// found, directly or through such labels.
type contentTarget struct {
	store  content.Store
	leases leases.Manager
	lease  leases.Lease
	// src is the bundle, read for the children of indexes and manifests
	// that containerd already has.
	src transfer.Fetcher

	mu sync.Mutex
	// covered holds the blobs that a present, leased (or itself covered)
	// index or manifest references by its labels: the lease holds them
	// already. The copy checks a parent before its children, so a present
	// image costs one lease update (its root), not one per blob.
	covered map[digest.Digest]bool
}

// Exists implements transfer.Exister. A present blob must have desc's
// size (else an error wrapping manifests.ErrSizeMismatch), and is added to
// the lease unless covered; a present index or manifest gets any GC label it
// lacks, and covers its children.
func (t *contentTarget) Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	t.mu.Lock()
	covered := t.covered[desc.Digest]
	t.mu.Unlock()
	// Lease first, then look: a blob seen present is then held even if
	// containerd's garbage collector (say, after an earlier import's
	// lease ended) runs between the two calls.
	if !covered {
		if err := t.leases.AddResource(ctx, t.lease, leases.Resource{ID: desc.Digest.String(), Type: "content"}); err != nil {
			return false, fmt.Errorf("lease %s: %w", desc.Digest, err)
		}
	}
	info, err := t.store.Info(ctx, desc.Digest)
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if info.Size != desc.Size {
		// containerd stores by digest alone: a descriptor that declares
		// another size than the blob's is wrong, however the blob got there.
		return false, fmt.Errorf("%s: %w: containerd holds %d bytes under this digest, but the manifest declares %d",
			desc.Digest, manifests.ErrSizeMismatch, info.Size, desc.Size)
	}
	if !manifests.IsGraphNode(desc.MediaType) {
		return true, nil
	}
	b, err := transfer.FetchAll(ctx, t.src, desc)
	if err != nil {
		return false, err
	}
	children, labels, err := childLabels(desc, b)
	if err != nil {
		return false, err
	}
	var fields []string
	for k, v := range labels {
		if info.Labels[k] != v {
			fields = append(fields, "labels."+k)
		}
	}
	if len(fields) > 0 {
		if _, err := t.store.Update(ctx, content.Info{Digest: desc.Digest, Labels: labels}, fields...); err != nil {
			return false, fmt.Errorf("label %s: %w", desc.Digest, err)
		}
	}
	t.mu.Lock()
	for _, child := range children {
		t.covered[child.Digest] = true
	}
	t.mu.Unlock()
	return true, nil
}

// Push implements transfer.Pusher with content.WriteBlob: containerd checks
// the size and digest before it commits. An index or manifest is committed
// with its GC labels.
func (t *contentTarget) Push(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	var opts []content.Opt
	if manifests.IsGraphNode(desc.MediaType) {
		b, err := io.ReadAll(r) // at most manifests.MaxManifestSize, verified
		if err != nil {
			return err
		}
		_, labels, err := childLabels(desc, b)
		if err != nil {
			return err
		}
		opts = append(opts, content.WithLabels(labels))
		r = bytes.NewReader(b)
	}
	ref := "ferry-import-" + desc.Digest.String()
	err := content.WriteBlob(ctx, t.store, ref, r, desc, opts...)
	if err != nil {
		// Drop what was written, so that no later run resumes from bytes
		// that may be bad; failing to drop it only costs that later run
		// a failed commit, so the error is not reported.
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		_ = t.store.Abort(cctx, ref)
	}
	return err
}

// childLabels returns the children of an index or manifest and its GC
// reference labels for all of them, named as containerd's pull names them
// (images.ChildGCLabels, numbered as images.SetChildrenMappedLabels does).
func childLabels(desc ocispec.Descriptor, b []byte) ([]ocispec.Descriptor, map[string]string, error) {
	children, err := manifests.Children(desc, b)
	if err != nil {
		return nil, nil, err
	}
	labels := map[string]string{}
	seen := map[string]int{}
	for _, child := range children {
		for _, key := range images.ChildGCLabels(child) {
			n := seen[key]
			seen[key] = n + 1
			if n > 0 || strings.HasSuffix(key, ".") {
				key = fmt.Sprintf("%s%d", key, n)
			}
			labels[key] = child.Digest.String()
		}
	}
	return children, labels, nil
}

// bundleProvider is a content.Provider of a bundle's indexes, manifests
// and configs, verified, so that containerd's own graph functions
// (images.Platforms) can read the bundle before anything is written.
type bundleProvider struct{ r *bundle.Reader }

// ReaderAt implements content.Provider.
func (p bundleProvider) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	b, err := p.r.ReadAll(ctx, desc)
	if err != nil {
		return nil, err
	}
	return smallBlob{bytes.NewReader(b)}, nil
}

// smallBlob is a content.ReaderAt over bytes in memory.
type smallBlob struct{ *bytes.Reader }

func (smallBlob) Close() error { return nil }
