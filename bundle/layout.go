package bundle

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/manifests"
)

// Names of the files of an OCI image layout.
const (
	layoutFile = ocispec.ImageLayoutFile
	indexFile  = "index.json"
	blobsDir   = ocispec.ImageBlobsDir
	blockSize  = 512
)

// Annotations a bundle sets on every index.json descriptor, both to the
// full normalized reference, so containerd and skopeo find the image.
const (
	AnnotationContainerdName = "io.containerd.image.name"
	AnnotationRefName        = ocispec.AnnotationRefName
)

// blobPath is the tar name of a blob.
func blobPath(d digest.Digest) string {
	return blobsDir + "/" + d.Algorithm().String() + "/" + d.Encoded()
}

// placement is where one entry's body lies in the tar.
type placement struct {
	desc   ocispec.Descriptor
	offset int64
}

// layout is the whole tar, planned before a byte is written: every header
// and the offset of every body follow from the names and sizes alone.
type layout struct {
	headers []plannedHeader
	blobs   map[digest.Digest]placement
	size    int64
}

type plannedHeader struct {
	offset int64
	header []byte
	body   []byte // set for oci-layout and index.json
}

// planLayout orders the entries (oci-layout, index.json, small blobs, then
// layers, each group sorted) and computes their offsets.
func planLayout(indexJSON []byte, blobs []ocispec.Descriptor, modTime time.Time) (*layout, error) {
	l := &layout{blobs: map[digest.Digest]placement{}}
	layoutJSON, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if _, err := l.add(layoutFile, int64(len(layoutJSON)), layoutJSON, modTime); err != nil {
		return nil, err
	}
	if _, err := l.add(indexFile, int64(len(indexJSON)), indexJSON, modTime); err != nil {
		return nil, err
	}
	for _, d := range orderBlobs(blobs) {
		if _, dup := l.blobs[d.Digest]; dup {
			continue
		}
		if err := d.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("%w: blob %q: %v", ErrInvalidBundle, d.Digest, err)
		}
		offset, err := l.add(blobPath(d.Digest), d.Size, nil, modTime)
		if err != nil {
			return nil, err
		}
		l.blobs[d.Digest] = placement{desc: d, offset: offset}
	}
	l.size += 2 * blockSize // end-of-archive marker
	return l, nil
}

// add appends an entry and returns the offset of its body.
func (l *layout) add(name string, size int64, body []byte, modTime time.Time) (int64, error) {
	hdr, err := tarHeader(name, size, modTime)
	if err != nil {
		return 0, err
	}
	l.headers = append(l.headers, plannedHeader{offset: l.size, header: hdr, body: body})
	bodyOffset := l.size + int64(len(hdr))
	l.size = bodyOffset + padded(size)
	return bodyOffset, nil
}

// orderBlobs sorts small blobs (indexes, manifests, configs) before layers,
// each group by kind and then by digest, so a streaming reader learns the
// whole graph before the first layer byte.
func orderBlobs(blobs []ocispec.Descriptor) []ocispec.Descriptor {
	rank := func(mt string) int {
		switch {
		case manifests.IsIndex(mt):
			return 0
		case manifests.IsManifest(mt):
			return 1
		case manifests.IsSmall(mt):
			return 2
		}
		return 3
	}
	out := append([]ocispec.Descriptor(nil), blobs...)
	sort.SliceStable(out, func(i, j int) bool {
		ri, rj := rank(out[i].MediaType), rank(out[j].MediaType)
		if ri != rj {
			return ri < rj
		}
		return out[i].Digest < out[j].Digest
	})
	return out
}

// tarHeader renders the deterministic header of one entry: PAX format,
// mode 0644, uid/gid 0, no user names, the given modification time.
func tarHeader(name string, size int64, modTime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     size,
		Mode:     0o644,
		ModTime:  modTime,
		Format:   tar.FormatPAX,
	})
	if err != nil {
		return nil, fmt.Errorf("tar header %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// padded rounds a body size up to whole tar blocks.
func padded(size int64) int64 {
	return (size + blockSize - 1) / blockSize * blockSize
}
