package bundle_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/manifests"
)

// releases writes testbundle.Releases as full bundles v1 and v2 and as the
// delta of v2 over v1, in dir.
type releases struct {
	dir              string
	v1, v2, delta    string
	v1Imgs, v2Imgs   map[string]testbundle.Image
	deltaWriteResult *bundle.WriteResult
}

func writeReleases(t *testing.T) releases {
	t.Helper()
	rel := releases{dir: t.TempDir()}
	rel.v1Imgs, rel.v2Imgs = testbundle.Releases(t)
	rel.v1 = testbundle.Write(t, filepath.Join(rel.dir, "v1.tar"), rel.v1Imgs)
	rel.v2 = testbundle.Write(t, filepath.Join(rel.dir, "v2.tar"), rel.v2Imgs)
	rel.delta = filepath.Join(rel.dir, "delta.tar")
	rel.deltaWriteResult = testbundle.WriteOpts(t, rel.delta, rel.v2Imgs, bundle.WriteOptions{Base: testbundle.Open(t, rel.v1)})
	return rel
}

// allBlobs lists every blob the images reach, with its media type.
func allBlobs(t *testing.T, images map[string]testbundle.Image) map[digest.Digest]ocispec.Descriptor {
	out := map[digest.Digest]ocispec.Descriptor{}
	for _, img := range images {
		for d, desc := range blobs(t, img) {
			out[d] = desc
		}
	}
	return out
}

func TestDeltaHoldsWhatTheBaseLacks(t *testing.T) {
	ctx := context.Background()
	rel := writeReleases(t)
	v1, d := testbundle.Open(t, rel.v1), testbundle.Open(t, rel.delta)
	v1Blobs := allBlobs(t, rel.v1Imgs)

	// new: the blobs of v2 that v1 lacks; the delta holds them and every
	// index, manifest and config of v2, and borrows the rest.
	var held, borrowed []digest.Digest
	var newBytes, borrowedBytes int64
	for dg, desc := range allBlobs(t, rel.v2Imgs) {
		_, inV1 := v1Blobs[dg]
		if !inV1 {
			newBytes += desc.Size
		}
		if !inV1 || manifests.IsSmall(desc.MediaType) {
			held = append(held, dg)
		} else {
			borrowed = append(borrowed, dg)
			borrowedBytes += desc.Size
		}
	}
	slices.Sort(held)
	slices.Sort(borrowed)
	if got := d.Digests(); !slices.Equal(got, held) {
		t.Errorf("delta holds %d blobs %v,\nwant %d %v", len(got), got, len(held), held)
	}
	if len(borrowed) == 0 {
		t.Fatal("fixture: v2 borrows nothing from v1")
	}
	fi, err := os.Stat(rel.delta)
	check(t, err)
	if limit := newBytes + 256<<10; fi.Size() >= limit {
		t.Errorf("delta is %d bytes, want under %d (new blobs %d + 256 KiB)", fi.Size(), limit, newBytes)
	}

	if got := d.Bases(); !slices.Equal(got, []digest.Digest{v1.Digest()}) {
		t.Errorf("bases %v, want [%s]", got, v1.Digest())
	}
	if res := rel.deltaWriteResult; res.BorrowedBlobs != len(borrowed) || res.BorrowedBytes != borrowedBytes {
		t.Errorf("write result borrows %d blobs, %d bytes; want %d, %d", res.BorrowedBlobs, res.BorrowedBytes, len(borrowed), borrowedBytes)
	}
	lent, err := d.Borrowed(ctx)
	check(t, err)
	var lentDigests []digest.Digest
	for _, b := range lent {
		lentDigests = append(lentDigests, b.Digest)
		if len(b.Images) == 0 {
			t.Errorf("borrowed %s: no image named", b.Digest)
		}
	}
	if !slices.Equal(lentDigests, borrowed) {
		t.Errorf("Borrowed %v, want %v", lentDigests, borrowed)
	}

	rep, err := bundle.Inspect(ctx, d)
	check(t, err)
	if rep.Delta == nil || !slices.Equal(rep.Delta.Bases, []digest.Digest{v1.Digest()}) ||
		rep.Delta.BorrowedBlobs != len(borrowed) || rep.Delta.BorrowedBytes != borrowedBytes {
		t.Errorf("inspect delta report %+v, want bases [%s], %d blobs, %d bytes borrowed", rep.Delta, v1.Digest(), len(borrowed), borrowedBytes)
	}
	if len(rep.Images) != len(rel.v2Imgs) || rep.Digest != d.Digest() {
		t.Errorf("inspect: %d images, digest %s; want %d, %s", len(rep.Images), rep.Digest, len(rel.v2Imgs), d.Digest())
	}
	if full := testbundle.Open(t, rel.v2); full.Digest() == d.Digest() || len(full.Bases()) != 0 {
		t.Errorf("full v2 bundle: digest %s (delta %s), bases %v", full.Digest(), d.Digest(), full.Bases())
	}
}

func TestDeltaVerify(t *testing.T) {
	ctx := context.Background()
	rel := writeReleases(t)
	d := testbundle.Open(t, rel.delta)
	rep, err := bundle.Verify(ctx, d, bundle.VerifyOptions{Full: true})
	if err != nil || rep.Delta == nil || rep.Delta.BorrowedBlobs == 0 {
		t.Fatalf("verify lone delta: %v, report %+v", err, rep)
	}
	both, err := bundle.Union(ctx, testbundle.Open(t, rel.v1), d)
	check(t, err)
	rep, err = bundle.Verify(ctx, both, bundle.VerifyOptions{Full: true})
	if err != nil || rep.Delta != nil {
		t.Fatalf("verify base + delta: %v, report %+v", err, rep)
	}
	if rep.Images != len(rel.v2Imgs)+len(testbundle.ReleaseDropped)+1 {
		t.Errorf("base + delta: %d images, want v2's and v1's others", rep.Images)
	}

	// a layer the delta holds, overwritten: verify names it
	layers := testbundle.Open(t, rel.delta).Digests()
	var layer digest.Digest
	for _, dg := range layers {
		if size, _ := d.Size(dg); size > 16<<10 {
			layer = dg
			break
		}
	}
	testbundle.FlipBlob(t, rel.delta, layer)
	rep, err = bundle.Verify(ctx, testbundle.Open(t, rel.delta), bundle.VerifyOptions{Full: true})
	if !errors.Is(err, bundle.ErrVerifyFailed) || len(rep.Problems) != 1 || rep.Problems[0].Digest != layer {
		t.Errorf("verify corrupt delta: %v, report %+v", err, rep)
	}
}

func TestDeltaMergeIsTheFullBuild(t *testing.T) {
	ctx := context.Background()
	rel := writeReleases(t)
	merged := filepath.Join(rel.dir, "merged.tar")
	res, err := bundle.Merge(ctx, merged, testbundle.Open(t, rel.v1), testbundle.Open(t, rel.delta), bundle.WriteOptions{})
	check(t, err)
	if res.Images != len(rel.v2Imgs) {
		t.Errorf("merged %d images, want %d", res.Images, len(rel.v2Imgs))
	}
	sameBytes(t, merged, rel.v2)
}

// sameBytes fails unless the files at got and want have the same bytes.
func sameBytes(t *testing.T, got, want string) {
	t.Helper()
	g, err := os.ReadFile(got)
	check(t, err)
	w, err := os.ReadFile(want)
	check(t, err)
	if !bytes.Equal(g, w) {
		t.Errorf("%s (%d bytes) differs from %s (%d bytes)", got, len(g), want, len(w))
	}
}

func TestDeltaOfDelta(t *testing.T) {
	ctx := context.Background()
	rel := writeReleases(t)
	v3Imgs := map[string]testbundle.Image{}
	for name, img := range rel.v2Imgs {
		v3Imgs[name] = img
	}
	v3Extra, _ := testbundle.Releases(t)
	v3Imgs["docker.io/ferrytest/v3:1"] = v3Extra[testbundle.ReleaseMulti]
	v3 := testbundle.Write(t, filepath.Join(rel.dir, "v3.tar"), v3Imgs)

	base, err := bundle.Union(ctx, testbundle.Open(t, rel.v1), testbundle.Open(t, rel.delta))
	check(t, err)
	d3 := filepath.Join(rel.dir, "delta3.tar")
	testbundle.WriteOpts(t, d3, v3Imgs, bundle.WriteOptions{Base: base})
	r3 := testbundle.Open(t, d3)
	if want := []digest.Digest{testbundle.Open(t, rel.v1).Digest(), testbundle.Open(t, rel.delta).Digest()}; !slices.Equal(r3.Bases(), want) {
		t.Errorf("bases %v, want %v", r3.Bases(), want)
	}
	merged := filepath.Join(rel.dir, "merged3.tar")
	_, err = bundle.Merge(ctx, merged, base, r3, bundle.WriteOptions{})
	check(t, err)
	sameBytes(t, merged, v3)

	for _, tc := range []struct {
		name string
		base string
		want error
	}{
		{"without v1", rel.delta, bundle.ErrLoneDelta},
		{"without delta", rel.v1, bundle.ErrBaseMismatch},
	} {
		if _, err := bundle.Union(ctx, testbundle.Open(t, tc.base), r3); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	_, err = bundle.Write(ctx, filepath.Join(rel.dir, "x.tar"), nil, bundle.WriteOptions{Base: testbundle.Open(t, rel.delta)})
	if !errors.Is(err, bundle.ErrLoneDelta) {
		t.Errorf("write on a lone delta: %v, want ErrLoneDelta", err)
	}
}

func TestDeltaBadBase(t *testing.T) {
	ctx := context.Background()
	rel := writeReleases(t)
	lacking := filepath.Join(rel.dir, "v1-lacking.tar")
	lent, err := testbundle.Open(t, rel.delta).Borrowed(ctx)
	check(t, err)
	dropBlob(t, rel.v1, lacking, lent[0].Digest)
	otherBase := filepath.Join(rel.dir, "other-base.tar")
	editIndex(t, rel.delta, otherBase, func(idx *ocispec.Index) {
		idx.Annotations[bundle.AnnotationBases] = digest.FromString("another release").String()
	})
	for _, tc := range []struct {
		name         string
		base, delta  string
		want         error
		wantInReason string
	}{
		{"wrong base", rel.v2, rel.delta, bundle.ErrBaseMismatch, testbundle.Open(t, rel.v1).Digest().String()},
		{"base after delta", rel.delta, rel.v1, bundle.ErrBaseMismatch, "comes after it"},
		{"incomplete base", lacking, rel.delta, bundle.ErrIncompleteBase, lent[0].Digest.String()},
		{"recorded base digest differs", rel.v1, otherBase, bundle.ErrBaseMismatch, digest.FromString("another release").String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bundle.Union(ctx, testbundle.Open(t, tc.base), testbundle.Open(t, tc.delta))
			if !errors.Is(err, tc.want) || !bytes.Contains([]byte(err.Error()), []byte(tc.wantInReason)) {
				t.Errorf("union: %v, want %v naming %s", err, tc.want, tc.wantInReason)
			}
			out := filepath.Join(t.TempDir(), "merged.tar")
			if _, err := bundle.Merge(ctx, out, testbundle.Open(t, tc.base), testbundle.Open(t, tc.delta), bundle.WriteOptions{}); err == nil {
				t.Error("merge succeeded")
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("merge left %s: %v", out, err)
			}
		})
	}

	_, err = bundle.Union(ctx, testbundle.Open(t, rel.delta))
	if !errors.Is(err, bundle.ErrLoneDelta) || testbundle.Open(t, rel.delta).CheckComplete() == nil || testbundle.Open(t, rel.v1).CheckComplete() != nil {
		t.Errorf("lone delta: %v", err)
	}
	_, err = bundle.Merge(ctx, filepath.Join(rel.dir, "m.tar"), testbundle.Open(t, rel.v1), testbundle.Open(t, rel.v2), bundle.WriteOptions{})
	if !errors.Is(err, bundle.ErrNotDelta) {
		t.Errorf("merge of a full bundle: %v, want ErrNotDelta", err)
	}
	bad := filepath.Join(rel.dir, "bad-annotation.tar")
	editIndex(t, rel.delta, bad, func(idx *ocispec.Index) { idx.Annotations[bundle.AnnotationBases] = "sha256:nothex" })
	if _, err := bundle.Open(t.Context(), bad); !errors.Is(err, bundle.ErrInvalidBundle) {
		t.Errorf("open with a malformed %s: %v, want ErrInvalidBundle", bundle.AnnotationBases, err)
	}
}

func TestUnionLaterNamesWin(t *testing.T) {
	ctx := context.Background()
	rel := writeReleases(t)
	renamed := filepath.Join(rel.dir, "renamed.tar")
	keepV1 := testbundle.Open(t, rel.v1)
	keep, err := keepV1.Image(testbundle.ReleaseKeep)
	check(t, err)
	multi, err := keepV1.Image(testbundle.ReleaseMulti)
	check(t, err)
	// a bundle naming the multi-arch image as "keep"
	testbundle.Write(t, renamed, map[string]testbundle.Image{testbundle.ReleaseKeep: rel.v1Imgs[testbundle.ReleaseMulti]})
	for _, tc := range []struct {
		order []string
		want  digest.Digest
	}{
		{[]string{rel.v1, renamed}, multi.Descriptor.Digest},
		{[]string{renamed, rel.v1}, keep.Descriptor.Digest},
	} {
		var rs []*bundle.Reader
		for _, p := range tc.order {
			rs = append(rs, testbundle.Open(t, p))
		}
		u, err := bundle.Union(ctx, rs...)
		check(t, err)
		img, err := u.Image(testbundle.ReleaseKeep)
		check(t, err)
		if img.Descriptor.Digest != tc.want || len(u.Images()) != len(rel.v1Imgs) {
			t.Errorf("%v: keep is %s, want %s; %d images", tc.order, img.Descriptor.Digest, tc.want, len(u.Images()))
		}
		if want := len(testbundle.Open(t, rel.v1).Digests()); len(u.Digests()) != want {
			t.Errorf("%v: %d blobs, want %d (each once)", tc.order, len(u.Digests()), want)
		}
	}
}

// dropBlob copies the bundle at src to dst without blob d.
func dropBlob(t *testing.T, src, dst string, d digest.Digest) {
	t.Helper()
	var kept []testbundle.TarEntry
	for _, e := range testbundle.ReadTar(t, src) {
		if e.Hdr.Name != "blobs/"+d.Algorithm().String()+"/"+d.Encoded() {
			kept = append(kept, e)
		}
	}
	testbundle.WriteTar(t, dst, kept)
}

// editIndex copies the bundle at src to dst with its index.json edited.
func editIndex(t *testing.T, src, dst string, edit func(*ocispec.Index)) {
	t.Helper()
	entries := testbundle.ReadTar(t, src)
	for i, e := range entries {
		if e.Hdr.Name != "index.json" {
			continue
		}
		var idx ocispec.Index
		check(t, json.Unmarshal(e.Body, &idx))
		edit(&idx)
		b, err := json.Marshal(idx)
		check(t, err)
		entries[i].Body = b
	}
	testbundle.WriteTar(t, dst, entries)
}
