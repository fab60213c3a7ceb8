package benchcorpus

import (
	"sort"
	"strings"
)

// upgradeEvery is the share of layers the next release changes: every
// tenth layer by name.
const upgradeEvery = 10

// Upgrade is the corpus's next release, for the delta bench: every tenth
// layer (by name) has new content, and the images that use one are tagged
// 2 instead of 1; every other image is the same, under the same tag.
type Upgrade struct {
	// ImageList is the ferry image list of the release.
	ImageList string
	// Images is the number of images in ImageList; Changed of them have a
	// new digest.
	Images, Changed int
	// Layers is the number of layers of the release; ChangedLayers of them
	// are new.
	Layers, ChangedLayers int
}

// upgrade plans the next release of p: every upgradeEvery-th layer by
// name renamed (so generated anew), and every list entry using one tagged
// 2, with all its images. It returns the plan and the Upgrade counts.
func (p *plan) upgrade() (*plan, Upgrade) {
	names := make([]string, 0, len(p.layers))
	for n := range p.layers {
		names = append(names, n)
	}
	sort.Strings(names)
	next := &plan{layers: map[string]Layer{}}
	renamed := map[string]string{}
	for i, n := range names {
		if i%upgradeEvery == upgradeEvery/2 {
			renamed[n] = n + "-r2"
		}
	}
	changedRefs := map[string]bool{}
	for _, img := range p.images {
		for _, m := range img.manifests {
			for _, l := range m.layers {
				if renamed[l] != "" {
					changedRefs[img.ref] = true
				}
			}
		}
	}
	u := Upgrade{Images: len(p.entries), ChangedLayers: len(renamed), Layers: len(p.layers)}
	retag := map[string]bool{} // refs of the images of a changed entry
	for _, e := range p.entries {
		refs := []string{e.ref}
		for _, c := range e.combine {
			refs = append(refs, c[1])
		}
		changed := false
		for _, r := range refs {
			changed = changed || changedRefs[r]
		}
		if changed {
			u.Changed++
			for _, r := range refs {
				retag[r] = true
			}
		}
		next.entries = append(next.entries, e.retag(retag))
	}
	for _, img := range p.images {
		next.images = append(next.images, img.next(renamed, retag[img.ref]))
		for _, m := range next.images[len(next.images)-1].manifests {
			for _, l := range m.layers {
				next.layers[l] = p.layers[strings.TrimSuffix(l, "-r2")]
			}
		}
	}
	return next, u
}

// retag returns the entry with the references in retag tagged 2.
func (e listEntry) retag(retag map[string]bool) listEntry {
	out := listEntry{ref: nextTag(e.ref, retag[e.ref])}
	for _, c := range e.combine {
		out.combine = append(out.combine, [2]string{c[0], nextTag(c[1], retag[c[1]])})
	}
	return out
}

// next returns the image with its layers renamed and, when retag is set,
// tagged 2.
func (img plannedImage) next(renamed map[string]string, retag bool) plannedImage {
	out := img
	out.ref, out.path = nextTag(img.ref, retag), nextTag(img.path, retag)
	out.manifests = nil
	for _, m := range img.manifests {
		nm := m
		nm.layers = nil
		for _, l := range m.layers {
			if r := renamed[l]; r != "" {
				l = r
			}
			nm.layers = append(nm.layers, l)
		}
		out.manifests = append(out.manifests, nm)
	}
	return out
}

// nextTag turns tag 1 (":1", ":1-amd64") into 2 when retag is set.
func nextTag(ref string, retag bool) string {
	i := strings.LastIndex(ref, ":1")
	if !retag || i < 0 {
		return ref
	}
	return ref[:i] + ":2" + ref[i+2:]
}
