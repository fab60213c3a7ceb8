package bundle_test

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// TestInspect checks every field of the report against what
// go-containerregistry says of the images.
func TestInspect(t *testing.T) {
	path, images := writeFixture(t)
	rep, err := bundle.Inspect(context.Background(), testbundle.Open(t, path))
	check(t, err)

	platforms := map[string][]string{
		ociIndex:     {"linux/amd64", "linux/arm64"},
		dockerList:   {"linux/amd64", "linux/arm/v7"},
		ociSingle:    {"linux/arm64"},
		dockerSingle: {"linux/amd64"},
	}
	all := map[digest.Digest]int64{}
	var sum int64
	var want []bundle.ImageReport
	for _, name := range []string{dockerList, dockerSingle, ociIndex, ociSingle} {
		img := images[name]
		mt, err := img.MediaType()
		check(t, err)
		raw, err := img.RawManifest()
		check(t, err)
		ir := bundle.ImageReport{Name: name, Digest: digest.FromBytes(raw), MediaType: string(mt), Platforms: platforms[name]}
		for d, desc := range blobs(t, img) {
			ir.Size += desc.Size
			all[d] = desc.Size
		}
		sum += ir.Size
		want = append(want, ir)
	}
	var unique int64
	for _, size := range all {
		unique += size
	}
	if got, want := fmt.Sprintf("%+v", rep.Images), fmt.Sprintf("%+v", want); got != want {
		t.Errorf("images:\n got %s\nwant %s", got, want)
	}
	if rep.Blobs != len(all) || rep.Bytes != unique || rep.SharedBytes != sum-unique || rep.SharedBytes <= 0 {
		t.Errorf("blobs %d bytes %d shared %d, want %d, %d, %d (> 0)", rep.Blobs, rep.Bytes, rep.SharedBytes, len(all), unique, sum-unique)
	}

	b, err := json.Marshal(rep)
	check(t, err)
	var fields map[string]any
	check(t, json.Unmarshal(b, &fields))
	img := fields["images"].([]any)[0].(map[string]any)
	if keys(fields) != "blobs bytes digest images sharedBytes" || keys(img) != "digest mediaType name platforms referrers size" {
		t.Errorf("JSON fields %s / %s", keys(fields), keys(img))
	}
}

func keys(m map[string]any) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// TestVerify breaks bundles in every way a blob can be wrong and checks
// what Verify (full and fast) and Inspect say: the sentinel, the blob and
// the images that use it.
func TestVerify(t *testing.T) {
	good, images := writeFixture(t)
	entries := testbundle.ReadTar(t, good)
	ctx := context.Background()

	reached := map[digest.Digest][]string{}
	descs := map[digest.Digest]ocispec.Descriptor{}
	for _, name := range []string{dockerList, dockerSingle, ociIndex, ociSingle} {
		for d, desc := range blobs(t, images[name]) {
			reached[d] = append(reached[d], name)
			descs[d] = desc
		}
	}
	// find returns a manifest or a layer that exactly the images named reach.
	find := func(manifest bool, names ...string) digest.Digest {
		for d, users := range reached {
			mt := descs[d].MediaType
			if slices.Equal(users, names) && (manifest && manifests.IsManifest(mt) || !manifest && !manifests.IsSmall(mt)) {
				return d
			}
		}
		t.Fatalf("no blob reached by exactly %v", names)
		return ""
	}
	sharedLayer := find(false, dockerList, ociIndex)
	platformManifest := find(true, ociIndex)
	singleLayer := find(false, ociSingle)

	entryOf := func(d digest.Digest) string { return "blobs/sha256/" + d.Encoded() }
	edit := func(edit func([]testbundle.TarEntry) []testbundle.TarEntry) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			testbundle.WriteTar(t, path, edit(slices.Clone(entries)))
		}
	}
	flip := func(d digest.Digest) func(t *testing.T, path string) {
		return func(t *testing.T, path string) { testbundle.FlipBlob(t, path, d) }
	}
	withBlob := func(name string, body []byte, index func(*ocispec.Index)) func([]testbundle.TarEntry) []testbundle.TarEntry {
		return func(es []testbundle.TarEntry) []testbundle.TarEntry {
			var idx ocispec.Index
			check(t, json.Unmarshal(es[1].Body, &idx))
			index(&idx)
			b, err := json.Marshal(idx)
			check(t, err)
			es[1] = testbundle.TarEntry{Hdr: es[1].Hdr, Body: b}
			if name == "" {
				return es
			}
			return append(es, testbundle.TarEntry{Hdr: &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644}, Body: body})
		}
	}
	junk := []byte(`{"schemaVersion":2,"config":"not a descriptor"}`)
	junkDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(junk), Size: int64(len(junk)),
		Annotations: map[string]string{bundle.AnnotationRefName: "ferry.test/junk:1"}}

	type want struct {
		err    error // nil: no problem
		blob   digest.Digest
		images []string
	}
	for _, tc := range []struct {
		name          string
		breakIt       func(t *testing.T, path string)
		full, fast    want
		inspectErrors bool
	}{
		{name: "good", breakIt: func(*testing.T, string) {}},
		{
			name:    "shared layer with wrong bytes",
			breakIt: flip(sharedLayer),
			full:    want{manifests.ErrDigestMismatch, sharedLayer, []string{dockerList, ociIndex}},
		},
		{
			name:          "platform manifest with wrong bytes",
			breakIt:       flip(platformManifest),
			full:          want{manifests.ErrDigestMismatch, platformManifest, []string{ociIndex}},
			fast:          want{manifests.ErrDigestMismatch, platformManifest, []string{ociIndex}},
			inspectErrors: true,
		},
		{
			name: "missing layer",
			breakIt: edit(func(es []testbundle.TarEntry) []testbundle.TarEntry {
				return slices.DeleteFunc(es, func(e testbundle.TarEntry) bool { return e.Hdr.Name == entryOf(singleLayer) })
			}),
			full:          want{bundle.ErrBlobNotFound, singleLayer, []string{ociSingle}},
			fast:          want{bundle.ErrBlobNotFound, singleLayer, []string{ociSingle}},
			inspectErrors: true,
		},
		{
			name: "layer longer than its descriptor",
			breakIt: edit(func(es []testbundle.TarEntry) []testbundle.TarEntry {
				for i, e := range es {
					if e.Hdr.Name == entryOf(sharedLayer) {
						es[i].Body = append(slices.Clone(e.Body), 0)
					}
				}
				return es
			}),
			full:          want{manifests.ErrSizeMismatch, sharedLayer, []string{dockerList, ociIndex}},
			fast:          want{manifests.ErrSizeMismatch, sharedLayer, []string{dockerList, ociIndex}},
			inspectErrors: true,
		},
		{
			name: "manifest that does not parse",
			breakIt: edit(withBlob(entryOf(junkDesc.Digest), junk, func(idx *ocispec.Index) {
				idx.Manifests = append(idx.Manifests, junkDesc)
			})),
			full:          want{manifests.ErrInvalidManifest, junkDesc.Digest, []string{"ferry.test/junk:1"}},
			fast:          want{manifests.ErrInvalidManifest, junkDesc.Digest, []string{"ferry.test/junk:1"}},
			inspectErrors: true,
		},
		{
			name: "index.json entry without a name",
			breakIt: edit(withBlob("", nil, func(idx *ocispec.Index) {
				idx.Manifests[0].Annotations = nil
			})),
			full: want{bundle.ErrInvalidBundle, "", nil},
			fast: want{bundle.ErrInvalidBundle, "", nil},
		},
		{
			name:    "unreferenced blob with wrong bytes",
			breakIt: edit(withBlob(entryOf(digest.FromString("right")), []byte("wrong"), func(*ocispec.Index) {})),
			full:    want{manifests.ErrDigestMismatch, digest.FromString("right"), []string{}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "b.tar")
			b, err := os.ReadFile(good)
			check(t, err)
			check(t, os.WriteFile(path, b, 0o644))
			tc.breakIt(t, path)
			r := testbundle.Open(t, path)
			for mode, w := range map[string]want{"full": tc.full, "fast": tc.fast} {
				rep, err := bundle.Verify(ctx, r, bundle.VerifyOptions{Full: mode == "full", Jobs: 2})
				if rep == nil {
					t.Fatalf("%s: no report: %v", mode, err)
				}
				if w.err == nil {
					if err != nil || len(rep.Problems) != 0 {
						t.Errorf("%s: err = %v, problems %v; want none", mode, err, rep.Problems)
					}
					continue
				}
				if !errors.Is(err, bundle.ErrVerifyFailed) || !errors.Is(err, w.err) {
					t.Errorf("%s: err = %v, want ErrVerifyFailed and %v", mode, err, w.err)
					continue
				}
				if len(rep.Problems) != 1 {
					t.Errorf("%s: problems %v, want one", mode, rep.Problems)
					continue
				}
				p := rep.Problems[0]
				if w.blob != "" && (p.Digest != w.blob || !slices.Equal(p.Images, w.images)) {
					t.Errorf("%s: problem with %s used by %v, want %s used by %v", mode, p.Digest, p.Images, w.blob, w.images)
				}
				for _, s := range append([]string{p.Digest.String()}, p.Images...) {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("%s: error %q does not name %s", mode, err, s)
					}
				}
			}
			rep, err := bundle.Inspect(ctx, r)
			if tc.inspectErrors != (err != nil) {
				t.Fatalf("Inspect: err = %v, want an error: %v", err, tc.inspectErrors)
			}
			if err != nil && !errors.Is(err, tc.fast.err) {
				t.Errorf("Inspect: err = %v, want %v", err, tc.fast.err)
			}
			if err == nil && len(rep.Images) == 0 {
				t.Errorf("Inspect: no images")
			}
		})
	}
}

// TestVerifyCancelled checks that a cancelled Verify stops with the
// context's error and no report.
func TestVerifyCancelled(t *testing.T) {
	path, _ := writeFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep, err := bundle.Verify(ctx, testbundle.Open(t, path), bundle.VerifyOptions{Full: true})
	if !errors.Is(err, context.Canceled) || rep != nil {
		t.Fatalf("Verify = %v, %v; want no report and context.Canceled", rep, err)
	}
}

// BenchmarkFetchVerify reads a 32 MiB blob as push and import do (Fetch
// through transfer's VerifyReader) and as Verify does (hashing in place).
func BenchmarkFetchVerify(b *testing.B) {
	const size = 32 << 20
	r := testbundle.Open(b, rawBundle(b, 1, size))
	desc := r.Images()[0].Descriptor
	ctx := context.Background()
	b.Run("Fetch", func(b *testing.B) {
		b.SetBytes(size)
		for range b.N {
			rc, err := r.Fetch(ctx, desc)
			check(b, err)
			_, err = io.Copy(io.Discard, transfer.NewVerifyReader(rc, desc))
			check(b, err)
			rc.Close()
		}
	})
	b.Run("Verify", func(b *testing.B) {
		b.SetBytes(size)
		for range b.N {
			_, err := bundle.Verify(ctx, r, bundle.VerifyOptions{Full: true})
			check(b, err)
		}
	})
}
