package benchcorpus_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ferry-oci/ferry/manifests/imagelist"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-oci/ferry/internal/benchcorpus"
	"github.com/ferry-oci/ferry/internal/testenv"
)

// tiny has every kind of image of a real corpus, in kilobytes.
var tiny = benchcorpus.Spec{
	Seed:  7,
	Bases: 1, Base: benchcorpus.Layer{Size: 64 << 10, Kind: benchcorpus.Text},
	Apps: 2, App: benchcorpus.Layer{Size: 16 << 10, Kind: benchcorpus.Random},
	Pairs: 1, Pair: benchcorpus.Layer{Size: 16 << 10, Kind: benchcorpus.Random},
	Large: [][]benchcorpus.Layer{{{Size: 128 << 10, Kind: benchcorpus.Random}, {Size: 128 << 10, Kind: benchcorpus.Text}}},
}

// TestGenerate pushes the same spec into two real registries: the image
// list is one ferry reads, skopeo reads every reference back, and both
// pushes give the same digests (runs are comparable).
func TestGenerate(t *testing.T) {
	var corpora [2]*benchcorpus.Corpus
	var regs [2]*testenv.RegistryServer
	for i := range corpora {
		regs[i] = testenv.Registry(t)
		c, err := benchcorpus.Generate(context.Background(), tiny, benchcorpus.Options{Dir: t.TempDir(), Registry: regs[i].Host})
		if err != nil {
			t.Fatal(err)
		}
		corpora[i] = c
	}
	c := corpora[0]
	if c.Images != 4 || len(c.Refs) != 5 {
		t.Fatalf("Generate: %d images, %d refs; want 4 images (2 apps, 1 pair, 1 large) and 5 refs", c.Images, len(c.Refs))
	}

	t.Run("image list", func(t *testing.T) {
		list, err := imagelist.Load(c.ImageList)
		if err != nil {
			t.Fatal(err)
		}
		var combined int
		for _, img := range list.Images {
			if len(img.Combine) > 0 {
				combined++
				if len(img.Combine) != 2 {
					t.Errorf("%s combines %v; want linux/amd64 and linux/arm64", img.Name, img.Combine)
				}
			}
		}
		if len(list.Images) != c.Images || combined != 1 {
			t.Errorf("image list: %d images, %d combined; want %d and 1", len(list.Images), combined, c.Images)
		}
	})

	for i, ref := range c.Refs {
		path := strings.TrimPrefix(ref, regs[0].Host+"/")
		t.Run(path, func(t *testing.T) {
			var digests [2]digest.Digest
			for j, reg := range regs {
				raw := testenv.Skopeo(t, append([]string{"inspect", "--raw"}, append(reg.SkopeoFlags(""), "docker://"+reg.Ref(path))...)...)
				digests[j] = digest.FromString(raw)
			}
			if digests[0] != digests[1] {
				t.Errorf("%s: digest %s in one registry, %s in the other: the corpus is not deterministic", path, digests[0], digests[1])
			}
			if want := corpora[1].Refs[i]; strings.TrimPrefix(want, regs[1].Host+"/") != path {
				t.Errorf("reference %d: %s and %s", i, ref, want)
			}
			// Every blob of every platform is there: skopeo copies the image out.
			testenv.Skopeo(t, append([]string{"copy", "--all", "--quiet"}, append(regs[0].SkopeoFlags("src-"), "docker://"+regs[0].Ref(path), "oci:"+t.TempDir()+":x")...)...)
		})
	}
}

// TestGenerateUpgrade checks the next release: one layer of tiny's ten
// changes (base-0-arm64, under both apps and the pair), the images using it
// are tagged 2 and every image of its list is in the registry.
func TestGenerateUpgrade(t *testing.T) {
	reg := testenv.Registry(t)
	c, err := benchcorpus.Generate(context.Background(), tiny, benchcorpus.Options{Dir: t.TempDir(), Registry: reg.Host, Upgrade: true})
	if err != nil {
		t.Fatal(err)
	}
	u := c.Upgrade
	if u == nil || u.Layers != 10 || u.ChangedLayers != 1 || u.Images != 4 || u.Changed != 3 {
		t.Fatalf("upgrade %+v; want 1 of 10 layers and 3 of 4 images changed", u)
	}
	list, err := imagelist.Load(u.ImageList)
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	tagged2 := 0
	for _, img := range list.Images {
		if strings.HasSuffix(img.Source.String()+img.Name, ":2") {
			tagged2++
		}
		refs = append(refs, img.Source.String())
		for _, r := range img.Combine {
			refs = append(refs, r.String())
		}
	}
	if tagged2 != u.Changed {
		t.Errorf("%d images tagged 2, want %d", tagged2, u.Changed)
	}
	for _, ref := range refs {
		if ref == "" {
			continue
		}
		testenv.Skopeo(t, append([]string{"inspect", "--raw"}, append(reg.SkopeoFlags(""), "docker://"+ref)...)...)
	}
}
