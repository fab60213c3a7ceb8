package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/internal/transfer"
)

// stepDelta is the step of the delta rows.
const stepDelta = "delta build and size"

// deltaSizes are the bytes an upgrade to the corpus's next release ships,
// three ways.
type deltaSizes struct {
	full, delta, zarf int64
	// changed is the number of the release's images zarf would ship.
	changed, images int
}

// stepDelta: the corpus's next release (every tenth layer new), built as a
// delta over the bundle (ferry build --base) and in full; then the bytes
// an upgrade ships: the delta, the full bundle, and zarf's image-level
// rule (--differential: every image not in the old package, whole).
func (b *bench) stepDelta(ctx context.Context) error {
	u := b.corpus.Upgrade
	if u == nil {
		return fmt.Errorf("the corpus has no next release")
	}
	dr := b.addRow(stepDelta, "ferry", fmt.Sprintf("ferry build -f images-2.yaml --base bundle.tar -b delta.tar --jobs %d", b.jobs), 0)
	fr := b.addRow(stepDelta, "ferry full build", fmt.Sprintf("ferry build -f images-2.yaml -b release-2.tar --jobs %d", b.jobs), 0)
	if b.unavailable("merge", dr, fr) {
		return nil
	}
	dir := filepath.Join(b.work, "delta")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	delta, full := filepath.Join(dir, "delta.tar"), filepath.Join(dir, "release-2.tar")
	build := func(out string, base ...string) func(ctx context.Context) (map[string]sample, error) {
		return func(ctx context.Context) (map[string]sample, error) {
			os.Remove(out)
			args := []string{"build", "-f", u.ImageList, "-b", out, "--plain-http", "--jobs", fmt.Sprint(b.jobs)}
			for _, p := range base {
				args = append(args, "--base", p)
			}
			s, err := b.measure(b.src.proc, func(m *meter) error { return m.run(ctx, b.ferry, args...) })
			return map[string]sample{stepDelta: s}, err
		}
	}
	err := b.alternate(ctx, []string{stepDelta}, []trial{{"ferry", build(delta, b.bundle)}, {"ferry full build", build(full)}})
	if err != nil || len(dr.samples) == 0 || len(fr.samples) == 0 {
		return err
	}
	sizes, err := measureDelta(ctx, b.bundle, full, delta)
	if err != nil {
		return fmt.Errorf("%s: %w", stepDelta, err)
	}
	b.delta = sizes
	b.logf("delta: %s, full release %s, zarf's image-level rule %s (%d of %d images)",
		mb(sizes.delta), mb(sizes.full), mb(sizes.zarf), sizes.changed, sizes.images)
	return nil
}

// measureDelta reads the sizes of the full and delta bundles of the next
// release and what zarf's rule would ship: the unique blobs of every image
// of full that old does not hold under the same name and digest.
func measureDelta(ctx context.Context, old, full, delta string) (*deltaSizes, error) {
	s := &deltaSizes{}
	for _, f := range []struct {
		path string
		size *int64
	}{{full, &s.full}, {delta, &s.delta}} {
		fi, err := os.Stat(f.path)
		if err != nil {
			return nil, err
		}
		*f.size = fi.Size()
	}
	before, err := bundle.Open(ctx, old)
	if err != nil {
		return nil, err
	}
	defer before.Close()
	after, err := bundle.Open(ctx, full)
	if err != nil {
		return nil, err
	}
	defer after.Close()
	shipped := map[digest.Digest]int64{}
	for _, img := range after.Images() {
		s.images++
		if prev, err := before.Image(img.Name); err == nil && prev.Descriptor.Digest == img.Descriptor.Digest {
			continue
		}
		s.changed++
		err := transfer.Walk(ctx, after, img.Descriptor, nil, func(desc ocispec.Descriptor, _ []byte) error {
			shipped[desc.Digest] = desc.Size
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", img.Name, err)
		}
	}
	for _, size := range shipped {
		s.zarf += size
	}
	return s, nil
}

// deltaReport renders the sizes of the delta step, or nothing.
func (b *bench) deltaReport() string {
	s := b.delta
	if s == nil {
		return ""
	}
	u := b.corpus.Upgrade
	var out strings.Builder
	fmt.Fprintf(&out, "\n### Delta build and size\n\nThe corpus's next release changes %d of its %d layers (every tenth by name); %d of its %d images change. "+
		"What an upgrade carries across the gap (times of both builds in the results above):\n\n", u.ChangedLayers, u.Layers, u.Changed, u.Images)
	out.WriteString("| upgrade carries | bytes | of the full bundle |\n|---|---:|---:|\n")
	for _, r := range []struct {
		what string
		n    int64
	}{
		{"the full bundle of the release (`ferry build`)", s.full},
		{"**ferry's delta** (`ferry build --base`: the blobs the old bundle lacks, with every index, manifest and config)", s.delta},
		{fmt.Sprintf("zarf's image-level rule (`--differential`: the %d changed images whole)", s.changed), s.zarf},
	} {
		fmt.Fprintf(&out, "| %s | %s | %.1f%% |\n", r.what, mb(r.n), 100*float64(r.n)/float64(s.full))
	}
	return out.String()
}
