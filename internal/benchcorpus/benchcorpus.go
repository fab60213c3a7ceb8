// Package benchcorpus generates the image corpus that `make bench` measures
// ferry and its peers on: multi-arch images sharing base layers, per-arch
// image pairs to combine, and a few images with big layers. Every byte comes
// from a seeded PRNG, so two runs (on any machine) push the same digests.
//
// It is a development tool for scripts/bench and scripts/benchcorpus, not
// part of ferry.
package benchcorpus

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
)

// Layer is one generated layer: Size bytes of file content of Kind, before
// tar and gzip.
type Layer struct {
	Size int64
	Kind Kind
}

// Spec describes a corpus.
type Spec struct {
	// Seed feeds every PRNG; the same Spec always gives the same digests.
	Seed uint64
	// Bases is the number of shared base layers per platform, each Base.
	Bases int
	Base  Layer
	// Apps is the number of multi-arch images (an OCI index of linux/amd64
	// and linux/arm64 manifests) on the bases, with one App layer per platform.
	Apps int
	App  Layer
	// Pairs is the number of per-arch image pairs (Docker schema 2 manifests
	// tagged 1-amd64 and 1-arm64) that the image list combines into one
	// index each, with one Pair layer per platform.
	Pairs int
	Pair  Layer
	// Large are single-platform (linux/amd64, OCI manifest) images, each
	// with these layers on the first base. (Not Docker schema 2: skopeo
	// 1.9 cannot read a Docker manifest named in an OCI layout's index.json,
	// and the push peers read the extracted bundle.)
	Large [][]Layer
}

const mib = 1 << 20

// sizes are the named corpus specs.
var sizes = map[string]Spec{
	// small: 20 images, about 150 MB of blobs; the whole bench runs in a few
	// minutes on 2 cores.
	"small": {
		Seed:  1,
		Bases: 2, Base: Layer{16 * mib, Text},
		Apps: 15, App: Layer{3 * mib / 2, Random},
		Pairs: 3, Pair: Layer{4 * mib, Random},
		Large: [][]Layer{
			{{40 * mib, Random}},
			{{100 * mib, Text}},
		},
	},
	// large: 114 images, about 2 GB of blobs, layers of 100-300 MB.
	"large": {
		Seed:  1,
		Bases: 5, Base: Layer{64 * mib, Text},
		Apps: 100, App: Layer{3 * mib / 2, Random},
		Pairs: 10, Pair: Layer{12 * mib, Random},
		Large: [][]Layer{
			{{300 * mib, Random}},
			{{900 * mib, Text}},
			{{200 * mib, Random}, {400 * mib, Text}},
			{{150 * mib, Random}, {120 * mib, Random}, {400 * mib, Text}},
		},
	},
}

// Sizes returns the names ForSize knows, sorted.
func Sizes() []string {
	var names []string
	for n := range sizes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ForSize returns the Spec of a named corpus size ("small" or "large").
func ForSize(size string) (Spec, error) {
	s, ok := sizes[size]
	if !ok {
		return Spec{}, fmt.Errorf("unknown corpus size %q (want one of %s)", size, strings.Join(Sizes(), ", "))
	}
	return s, nil
}

// Options say where a corpus goes.
type Options struct {
	// Dir receives the layer files and the two lists; it must exist.
	Dir string
	// Registry is the HOST:PORT of a plain-HTTP registry on 127.0.0.1.
	Registry string
	// Jobs bounds concurrent layer generation and uploads; 0 means the
	// number of CPUs.
	Jobs int
	// Logf, when set, is told about progress.
	Logf func(format string, args ...any)
	// Upgrade also generates and pushes the corpus's next release
	// (Corpus.Upgrade).
	Upgrade bool
}

// Corpus is a generated and pushed corpus.
type Corpus struct {
	// ImageList is the ferry image list (YAML, with combine entries for
	// the pairs): the images of a bundle.
	ImageList string
	// RefList is a plain list of every pushed reference, one a line: what
	// a tool without combine copies (both images of each pair).
	RefList string
	// Refs is the content of RefList.
	Refs []string
	// Images is the number of images in ImageList.
	Images int
	// Blobs and Bytes count the unique blobs pushed (layers, configs,
	// manifests, indexes) and their size (the first release's).
	Blobs int
	Bytes int64
	// Upgrade is the next release, with Options.Upgrade.
	Upgrade *Upgrade
}

// Generate writes the layers of spec under opts.Dir, pushes every image to
// opts.Registry and writes the image list and the reference list.
func Generate(ctx context.Context, spec Spec, opts Options) (*Corpus, error) {
	if opts.Jobs <= 0 {
		opts.Jobs = runtime.NumCPU()
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	layerDir := filepath.Join(opts.Dir, "layers")
	if err := os.MkdirAll(layerDir, 0o755); err != nil {
		return nil, err
	}

	plan := planImages(spec, opts.Registry)
	layers := plan.layers
	next, upgrade := plan.upgrade()
	if opts.Upgrade {
		layers = maps.Clone(plan.layers)
		maps.Copy(layers, next.layers)
	}
	logf("generating %d layers", len(layers))
	files, err := generateLayers(ctx, layerDir, layers, spec.Seed, opts.Jobs)
	if err != nil {
		return nil, err
	}
	images, err := plan.render(files)
	if err != nil {
		return nil, err
	}
	logf("pushing %d references to %s", len(images), opts.Registry)
	blobs, err := push(ctx, images, opts)
	if err != nil {
		return nil, err
	}
	c := &Corpus{
		ImageList: filepath.Join(opts.Dir, "images.yaml"),
		RefList:   filepath.Join(opts.Dir, "refs.txt"),
		Images:    len(plan.entries),
		Blobs:     len(blobs),
	}
	for _, size := range blobs {
		c.Bytes += size
	}
	for _, img := range images {
		c.Refs = append(c.Refs, img.ref)
	}
	if err := os.WriteFile(c.ImageList, []byte(plan.imageList(spec)), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(c.RefList, []byte(strings.Join(c.Refs, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	if opts.Upgrade {
		logf("pushing the next release: %d of %d layers changed", upgrade.ChangedLayers, upgrade.Layers)
		if c.Upgrade, err = pushUpgrade(ctx, spec, next, upgrade, files, c.Refs, opts); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// generateLayers writes every layer under dir, jobs at a time.
func generateLayers(ctx context.Context, dir string, layers map[string]Layer, seed uint64, jobs int) (map[string]*layerFile, error) {
	names := slices.Sorted(maps.Keys(layers))
	results := make([]*layerFile, len(names))
	var gen []func(context.Context) error
	for i, n := range names {
		gen = append(gen, func(ctx context.Context) error {
			lf, err := writeLayer(ctx, dir, n, layers[n], seed)
			results[i] = lf
			return err
		})
	}
	if err := run(ctx, jobs, gen); err != nil {
		return nil, fmt.Errorf("generate layers: %w", err)
	}
	files := make(map[string]*layerFile, len(results))
	for _, lf := range results {
		files[lf.name] = lf
	}
	return files, nil
}

// pushUpgrade pushes the images of the next release that the first
// (refs) lacks and writes its image list.
func pushUpgrade(ctx context.Context, spec Spec, next *plan, u Upgrade, files map[string]*layerFile, refs []string, opts Options) (*Upgrade, error) {
	images, err := next.render(files)
	if err != nil {
		return nil, err
	}
	images = slices.DeleteFunc(images, func(img renderedImage) bool { return slices.Contains(refs, img.ref) })
	if _, err := push(ctx, images, opts); err != nil {
		return nil, err
	}
	u.ImageList = filepath.Join(opts.Dir, "images-2.yaml")
	if err := os.WriteFile(u.ImageList, []byte(next.imageList(spec)), 0o644); err != nil {
		return nil, err
	}
	return &u, nil
}
