// Package testimages builds real, small, multi-arch container images for
// ferry's tests with go-containerregistry: a busybox layer (from the
// busybox-static package) plus random layers, as OCI or Docker schema2
// images and indexes, and pushes them to a testenv registry.
//
// Images for every platform carry the machine's (amd64) busybox: they are for
// graph tests, not for running on other architectures.
package testimages

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BusyboxPath is where Debian's busybox-static installs the static busybox.
const BusyboxPath = "/bin/busybox"

// busyboxLinks are the applets linked to /bin/busybox in the layer.
var busyboxLinks = []string{"sh", "echo", "cat", "ls"}

// Option configures Image, Index and BusyboxLayer.
type Option func(*options)

type options struct {
	randomLayers int
	randomSize   int64
	shared       []v1.Layer
	docker       bool
}

// WithRandomLayers adds n random layers of about size bytes each (uncompressed,
// random content) on top of the busybox layer. Each image gets its own.
func WithRandomLayers(n int, size int64) Option {
	return func(o *options) { o.randomLayers, o.randomSize = n, size }
}

// WithSharedBase adds the given layers right above the busybox layer (below
// any random layers). Images made with the same layers share those blobs, as
// images built FROM one base do. It may be given more than once.
func WithSharedBase(layers ...v1.Layer) Option {
	return func(o *options) { o.shared = append(o.shared, layers...) }
}

// Docker makes Docker schema2 images (and a Docker manifest list for Index)
// instead of OCI ones.
func Docker() Option {
	return func(o *options) { o.docker = true }
}

func collect(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

func (o options) layerType() types.MediaType {
	if o.docker {
		return types.DockerLayer
	}
	return types.OCILayer
}

var busybox struct {
	once sync.Once
	gz   []byte
	err  error
}

// busyboxTarGz builds, once per process, a deterministic gzip tar holding
// bin/busybox and the applet symlinks.
func busyboxTarGz() ([]byte, error) {
	busybox.once.Do(func() {
		bin, err := os.ReadFile(BusyboxPath)
		if err != nil {
			busybox.err = err
			return
		}
		mtime := time.Unix(0, 0).UTC()
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		tw := tar.NewWriter(zw)
		hdrs := []*tar.Header{{Typeflag: tar.TypeDir, Name: "bin/", Mode: 0o755, ModTime: mtime, Format: tar.FormatPAX}}
		hdrs = append(hdrs, &tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(bin)), ModTime: mtime, Format: tar.FormatPAX})
		for _, l := range busyboxLinks {
			hdrs = append(hdrs, &tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + l, Linkname: "busybox", Mode: 0o777, ModTime: mtime, Format: tar.FormatPAX})
		}
		for _, h := range hdrs {
			if err := tw.WriteHeader(h); err != nil {
				busybox.err = err
				return
			}
			if h.Name == "bin/busybox" {
				if _, err := tw.Write(bin); err != nil {
					busybox.err = err
					return
				}
			}
		}
		if err := tw.Close(); err != nil {
			busybox.err = err
			return
		}
		if err := zw.Close(); err != nil {
			busybox.err = err
			return
		}
		busybox.gz = buf.Bytes()
	})
	return busybox.gz, busybox.err
}

// BusyboxLayer returns a gzip layer with /bin/busybox (from busybox-static)
// and /bin/sh, /bin/echo, /bin/cat, /bin/ls symlinked to it. Its bytes are
// the same on every call, so images built on it share the blob. The media
// type is OCI, or Docker with Docker().
func BusyboxLayer(t testing.TB, opts ...Option) v1.Layer {
	t.Helper()
	o := collect(opts)
	gz, err := busyboxTarGz()
	if err != nil {
		t.Fatalf("testimages: busybox layer: %v (install busybox-static: run scripts/install-deps.sh)", err)
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gz)), nil
	}, tarball.WithMediaType(o.layerType()))
	if err != nil {
		t.Fatalf("testimages: busybox layer: %v", err)
	}
	return plainLayer{l}
}

// plainLayer hides the tarball layer's Descriptor method, whose empty (but
// non-nil) annotations map makes validate.Image see a manifest that differs
// from its own serialization.
type plainLayer struct{ v1.Layer }

// typedLayer gives a layer the media type of the image it is put in (OCI or
// Docker), so that a shared layer made for the other kind still validates.
type typedLayer struct {
	v1.Layer
	mt types.MediaType
}

// MediaType returns the media type of the image the layer is in.
func (l typedLayer) MediaType() (types.MediaType, error) { return l.mt, nil }

// Image builds an image for platform ("linux/amd64", "linux/arm64/v8",
// "linux/arm/v7", ...): OCI media types (Docker schema2 with Docker()), a
// config with os, architecture and variant from platform and Cmd
// ["/bin/sh"], the busybox layer, any WithSharedBase layers, then any
// WithRandomLayers layers.
func Image(t testing.TB, platform string, opts ...Option) v1.Image {
	t.Helper()
	o := collect(opts)
	p, err := v1.ParsePlatform(platform)
	if err != nil || p.OS == "" || p.Architecture == "" {
		t.Fatalf("testimages: platform %q: want os/arch[/variant] (%v)", platform, err)
	}

	manifestType, configType := types.OCIManifestSchema1, types.OCIConfigJSON
	if o.docker {
		manifestType, configType = types.DockerManifestSchema2, types.DockerConfigJSON
	}
	img := mutate.MediaType(empty.Image, manifestType)
	img = mutate.ConfigMediaType(img, configType)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: p.Architecture,
		OS:           p.OS,
		OSVersion:    p.OSVersion,
		Variant:      p.Variant,
		Config: v1.Config{
			Cmd: []string{"/bin/sh"},
			Env: []string{"PATH=/bin"},
		},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		t.Fatalf("testimages: config: %v", err)
	}

	layers := []v1.Layer{BusyboxLayer(t, opts...)}
	layers = append(layers, o.shared...)
	for i := 0; i < o.randomLayers; i++ {
		l, err := random.Layer(o.randomSize, o.layerType())
		if err != nil {
			t.Fatalf("testimages: random layer: %v", err)
		}
		layers = append(layers, l)
	}
	adds := make([]mutate.Addendum, 0, len(layers))
	for _, l := range layers {
		adds = append(adds, mutate.Addendum{
			Layer:     typedLayer{Layer: l, mt: o.layerType()},
			MediaType: o.layerType(),
			History:   v1.History{CreatedBy: "ferry testimages", Created: v1.Time{Time: time.Unix(0, 0).UTC()}},
		})
	}
	img, err = mutate.Append(img, adds...)
	if err != nil {
		t.Fatalf("testimages: append layers: %v", err)
	}
	// Compute everything now so a broken image fails here, not in the caller.
	if _, err := img.Digest(); err != nil {
		t.Fatalf("testimages: image %s: %v", platform, err)
	}
	return img
}

// plainDescriptor makes mutate.AppendManifests describe an image the way
// registries and builders do: go-containerregistry (v0.22) otherwise adds
// "artifactType" (the config media type) to every index entry, a field real
// images do not carry and that skopeo 1.9 drops, which changes the digest.
type plainDescriptor struct{ v1.Image }

// Descriptor returns the image's media type, size and digest only.
func (p plainDescriptor) Descriptor() (*v1.Descriptor, error) {
	mt, err := p.MediaType()
	if err != nil {
		return nil, err
	}
	size, err := p.Size()
	if err != nil {
		return nil, err
	}
	d, err := p.Digest()
	if err != nil {
		return nil, err
	}
	return &v1.Descriptor{MediaType: mt, Size: size, Digest: d}, nil
}

// Index builds an OCI image index (a Docker manifest list with Docker()) with
// one Image per platform, each entry's Platform set. Options apply to every
// image.
func Index(t testing.TB, platforms []string, opts ...Option) v1.ImageIndex {
	t.Helper()
	o := collect(opts)
	indexType := types.OCIImageIndex
	if o.docker {
		indexType = types.DockerManifestList
	}
	idx := mutate.IndexMediaType(empty.Index, indexType)
	adds := make([]mutate.IndexAddendum, 0, len(platforms))
	for _, platform := range platforms {
		img := Image(t, platform, opts...)
		p, _ := v1.ParsePlatform(platform) // Image checked it
		mt, err := img.MediaType()
		if err != nil {
			t.Fatalf("testimages: %v", err)
		}
		adds = append(adds, mutate.IndexAddendum{
			Add:        plainDescriptor{img},
			Descriptor: v1.Descriptor{MediaType: mt, Platform: p},
		})
	}
	idx = mutate.AppendManifests(idx, adds...)
	if _, err := idx.Digest(); err != nil {
		t.Fatalf("testimages: index: %v", err)
	}
	return idx
}
