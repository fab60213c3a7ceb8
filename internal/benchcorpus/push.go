package benchcorpus

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"golang.org/x/sync/errgroup"
)

// push uploads every image: each layer once to the first repository that
// uses it, then per image its configs, cross-repository mounts of the other
// layers, its manifests and its tag. It returns the size of every unique blob.
func push(ctx context.Context, images []renderedImage, opts Options) (map[string]int64, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // 127.0.0.1 only
	tr.MaxIdleConnsPerHost = opts.Jobs
	p, err := remote.NewPusher(remote.WithContext(ctx), remote.WithTransport(tr), remote.WithJobs(opts.Jobs))
	if err != nil {
		return nil, err
	}
	blobs := map[string]int64{}
	home := map[string]name.Repository{} // layer digest -> first repository
	var firsts []func(context.Context) error
	refs := make([]name.Reference, len(images))
	for i, img := range images {
		ref, err := name.ParseReference(img.ref, name.Insecure)
		if err != nil {
			return nil, err
		}
		refs[i] = ref
		for _, lf := range img.layers {
			if _, ok := home[lf.digest]; ok {
				continue
			}
			home[lf.digest] = ref.Context()
			blobs[lf.digest] = lf.size
			firsts = append(firsts, func(ctx context.Context) error { return p.Upload(ctx, ref.Context(), newFileLayer(lf)) })
		}
		for _, b := range append(append(img.configs, img.children...), img.root) {
			blobs[b.desc.Digest.String()] = b.desc.Size
		}
	}
	if err := run(ctx, opts.Jobs, firsts); err != nil {
		return nil, fmt.Errorf("push layers: %w", err)
	}

	var rest []func(context.Context) error
	for i, img := range images {
		ref := refs[i]
		rest = append(rest, func(ctx context.Context) error {
			repo := ref.Context()
			for _, lf := range img.layers {
				from := home[lf.digest]
				if from == repo {
					continue
				}
				src, err := name.NewDigest(from.Name()+"@"+lf.digest, name.Insecure)
				if err != nil {
					return err
				}
				if err := p.Upload(ctx, repo, &remote.MountableLayer{Layer: newFileLayer(lf), Reference: src}); err != nil {
					return fmt.Errorf("%s: %w", img.ref, err)
				}
			}
			for _, c := range img.configs {
				if err := p.Upload(ctx, repo, static.NewLayer(c.data, types.MediaType(c.desc.MediaType))); err != nil {
					return fmt.Errorf("%s: %w", img.ref, err)
				}
			}
			for _, m := range img.children {
				if err := p.Put(ctx, repo.Digest(m.desc.Digest.String()), rawManifest(m)); err != nil {
					return fmt.Errorf("%s: %w", img.ref, err)
				}
			}
			if err := p.Put(ctx, ref, rawManifest(img.root)); err != nil {
				return fmt.Errorf("%s: %w", img.ref, err)
			}
			return nil
		})
	}
	if err := run(ctx, opts.Jobs, rest); err != nil {
		return nil, fmt.Errorf("push images: %w", err)
	}
	return blobs, nil
}

// run runs fns with at most jobs at once; the first error cancels the rest.
func run(ctx context.Context, jobs int, fns []func(context.Context) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, fn := range fns {
		g.Go(func() error { return fn(gctx) })
	}
	return g.Wait()
}

// rawManifest is a manifest or index to Put as it is.
type rawManifest smallBlob

func (m rawManifest) RawManifest() ([]byte, error) { return m.data, nil }

func (m rawManifest) MediaType() (types.MediaType, error) {
	return types.MediaType(m.desc.MediaType), nil
}

// fileLayer is a v1.Layer over a generated layer file.
type fileLayer struct {
	lf             *layerFile
	digest, diffID v1.Hash
}

func newFileLayer(lf *layerFile) *fileLayer {
	// The digests were computed by writeLayer: they parse.
	d, _ := v1.NewHash(lf.digest)
	diff, _ := v1.NewHash(lf.diffID)
	return &fileLayer{lf: lf, digest: d, diffID: diff}
}

func (l *fileLayer) Digest() (v1.Hash, error)             { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)             { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                 { return l.lf.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error)  { return types.OCILayer, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)   { return os.Open(l.lf.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) { return gunzipFile(l.lf.path) }

// gunzipFile opens a gzip file for reading its decompressed bytes.
func gunzipFile(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, f}, nil
}
