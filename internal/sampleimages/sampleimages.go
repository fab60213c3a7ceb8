// Package sampleimages builds real, small, multi-arch container images with
// go-containerregistry: a busybox layer (from Debian's busybox-static) plus
// optional shared and random layers, as OCI or Docker schema2 images and
// indexes. ferry's tests use it through internal/testimages and the demo
// through scripts/demoimages; it needs no registry and no network.
//
// Images for every platform carry the machine's busybox: the arm64 image
// built on an amd64 machine shows a multi-arch index, it does not run on arm64.
package sampleimages

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"sync"
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

// epoch is the time of every tar entry and history entry: images are
// byte-identical from run to run (random layers aside).
var epoch = time.Unix(0, 0).UTC()

// Option configures Image, Index and BusyboxLayer.
type Option func(*options)

type options struct {
	randomLayers int
	randomSize   int64
	shared       []v1.Layer
	docker       bool
	cmd          []string
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

// WithCmd sets the image config's Cmd (default ["/bin/sh"]).
func WithCmd(cmd ...string) Option {
	return func(o *options) { o.cmd = cmd }
}

func collect(opts []Option) options {
	o := options{cmd: []string{"/bin/sh"}}
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
			busybox.err = fmt.Errorf("busybox layer: %w (install busybox-static: run scripts/install-deps.sh)", err)
			return
		}
		busybox.gz, busybox.err = busyboxTar(bin)
	})
	return busybox.gz, busybox.err
}

// busyboxTar writes the layer's gzip tar around the busybox binary bin.
func busyboxTar(bin []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	hdrs := []*tar.Header{
		{Typeflag: tar.TypeDir, Name: "bin/", Mode: 0o755},
		{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(bin))},
	}
	for _, l := range busyboxLinks {
		hdrs = append(hdrs, &tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + l, Linkname: "busybox", Mode: 0o777})
	}
	for _, h := range hdrs {
		h.ModTime, h.Format = epoch, tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("busybox layer: %w", err)
		}
		if h.Name == "bin/busybox" {
			if _, err := tw.Write(bin); err != nil {
				return nil, fmt.Errorf("busybox layer: %w", err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("busybox layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("busybox layer: %w", err)
	}
	return buf.Bytes(), nil
}

// BusyboxLayer returns a gzip layer with /bin/busybox (from busybox-static)
// and /bin/sh, /bin/echo, /bin/cat, /bin/ls symlinked to it. Its bytes are
// the same on every call, so images built on it share the blob. The media
// type is OCI, or Docker with Docker().
func BusyboxLayer(opts ...Option) (v1.Layer, error) {
	o := collect(opts)
	gz, err := busyboxTarGz()
	if err != nil {
		return nil, err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gz)), nil
	}, tarball.WithMediaType(o.layerType()))
	if err != nil {
		return nil, fmt.Errorf("busybox layer: %w", err)
	}
	return plainLayer{l}, nil
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
// ["/bin/sh"] (see WithCmd), the busybox layer, any WithSharedBase layers,
// then any WithRandomLayers layers.
func Image(platform string, opts ...Option) (v1.Image, error) {
	o := collect(opts)
	p, err := v1.ParsePlatform(platform)
	if err != nil || p.OS == "" || p.Architecture == "" {
		return nil, fmt.Errorf("platform %q: want os/arch[/variant] (%v)", platform, err)
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
			Cmd: o.cmd,
			Env: []string{"PATH=/bin"},
		},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", platform, err)
	}

	bb, err := BusyboxLayer(opts...)
	if err != nil {
		return nil, err
	}
	layers := append([]v1.Layer{bb}, o.shared...)
	for i := 0; i < o.randomLayers; i++ {
		l, err := random.Layer(o.randomSize, o.layerType())
		if err != nil {
			return nil, fmt.Errorf("image %s: random layer: %w", platform, err)
		}
		layers = append(layers, l)
	}
	adds := make([]mutate.Addendum, 0, len(layers))
	for _, l := range layers {
		adds = append(adds, mutate.Addendum{
			Layer:     typedLayer{Layer: l, mt: o.layerType()},
			MediaType: o.layerType(),
			History:   v1.History{CreatedBy: "ferry sampleimages", Created: v1.Time{Time: epoch}},
		})
	}
	img, err = mutate.Append(img, adds...)
	if err != nil {
		return nil, fmt.Errorf("image %s: append layers: %w", platform, err)
	}
	// Compute everything now so a broken image fails here, not in the caller.
	if _, err := img.Digest(); err != nil {
		return nil, fmt.Errorf("image %s: %w", platform, err)
	}
	return img, nil
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
func Index(platforms []string, opts ...Option) (v1.ImageIndex, error) {
	o := collect(opts)
	indexType := types.OCIImageIndex
	if o.docker {
		indexType = types.DockerManifestList
	}
	idx := mutate.IndexMediaType(empty.Index, indexType)
	adds := make([]mutate.IndexAddendum, 0, len(platforms))
	for _, platform := range platforms {
		img, err := Image(platform, opts...)
		if err != nil {
			return nil, err
		}
		p, _ := v1.ParsePlatform(platform) // Image checked it
		mt, err := img.MediaType()
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", platform, err)
		}
		adds = append(adds, mutate.IndexAddendum{
			Add:        plainDescriptor{img},
			Descriptor: v1.Descriptor{MediaType: mt, Platform: p},
		})
	}
	idx = mutate.AppendManifests(idx, adds...)
	if _, err := idx.Digest(); err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	return idx, nil
}
