package testimages_test

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
)

func TestBusyboxLayer(t *testing.T) {
	l := testimages.BusyboxLayer(t)
	if err := validate.Layer(l); err != nil {
		t.Fatal(err)
	}
	if mt, _ := l.MediaType(); mt != types.OCILayer {
		t.Fatalf("media type %s", mt)
	}
	d1, _ := l.Digest()
	d2, _ := testimages.BusyboxLayer(t).Digest()
	if d1 != d2 {
		t.Fatalf("busybox layer not deterministic: %s != %s", d1, d2)
	}
	if mt, _ := testimages.BusyboxLayer(t, testimages.Docker()).MediaType(); mt != types.DockerLayer {
		t.Fatalf("Docker() media type %s", mt)
	}

	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h.Linkname
		if h.Name == "bin/busybox" && (h.Size < 100_000 || h.Mode&0o111 == 0) {
			t.Errorf("bin/busybox: size %d mode %o", h.Size, h.Mode)
		}
	}
	for _, name := range []string{"bin/sh", "bin/echo", "bin/cat", "bin/ls"} {
		if got[name] != "busybox" {
			t.Errorf("%s -> %q, want busybox", name, got[name])
		}
	}
	if _, ok := got["bin/busybox"]; !ok {
		t.Error("no bin/busybox")
	}
}

func TestImage(t *testing.T) {
	for _, tc := range []struct {
		platform          string
		opts              []testimages.Option
		manifest, config  types.MediaType
		layers            int
		os, arch, variant string
	}{
		{"linux/amd64", nil, types.OCIManifestSchema1, types.OCIConfigJSON, 1, "linux", "amd64", ""},
		{"linux/arm64/v8", []testimages.Option{testimages.WithRandomLayers(2, 1000)}, types.OCIManifestSchema1, types.OCIConfigJSON, 3, "linux", "arm64", "v8"},
		{"linux/arm/v7", []testimages.Option{testimages.Docker(), testimages.WithRandomLayers(1, 10)}, types.DockerManifestSchema2, types.DockerConfigJSON, 2, "linux", "arm", "v7"},
	} {
		t.Run(tc.platform, func(t *testing.T) {
			img := testimages.Image(t, tc.platform, tc.opts...)
			if err := validate.Image(img); err != nil {
				t.Fatal(err)
			}
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if m.MediaType != tc.manifest || m.Config.MediaType != tc.config || len(m.Layers) != tc.layers {
				t.Fatalf("manifest %s config %s layers %d", m.MediaType, m.Config.MediaType, len(m.Layers))
			}
			want := types.OCILayer
			if tc.manifest == types.DockerManifestSchema2 {
				want = types.DockerLayer
			}
			for _, l := range m.Layers {
				if l.MediaType != want {
					t.Errorf("layer media type %s, want %s", l.MediaType, want)
				}
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.OS != tc.os || cf.Architecture != tc.arch || cf.Variant != tc.variant || len(cf.Config.Cmd) != 1 || cf.Config.Cmd[0] != "/bin/sh" {
				t.Fatalf("config: %+v", cf)
			}
		})
	}
}

func TestIndexSharedLayers(t *testing.T) {
	base, err := random.Layer(4096, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	platforms := []string{"linux/amd64", "linux/arm64/v8", "linux/arm/v7"}
	for _, docker := range []bool{false, true} {
		opts := []testimages.Option{testimages.WithRandomLayers(1, 512), testimages.WithSharedBase(base)}
		wantIdx, wantImg := types.OCIImageIndex, types.OCIManifestSchema1
		if docker {
			opts = append(opts, testimages.Docker())
			wantIdx, wantImg = types.DockerManifestList, types.DockerManifestSchema2
		}
		idx := testimages.Index(t, platforms, opts...)
		if err := validate.Index(idx); err != nil {
			t.Fatal(err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		if im.MediaType != wantIdx || len(im.Manifests) != len(platforms) {
			t.Fatalf("index %s with %d manifests", im.MediaType, len(im.Manifests))
		}
		layerUse := map[v1.Hash]int{}
		for i, desc := range im.Manifests {
			if desc.MediaType != wantImg || desc.ArtifactType != "" {
				t.Errorf("entry %d: media type %s artifactType %q", i, desc.MediaType, desc.ArtifactType)
			}
			if desc.Platform == nil || desc.Platform.String() != platforms[i] {
				t.Errorf("entry %d: platform %v, want %s", i, desc.Platform, platforms[i])
			}
			img, err := idx.Image(desc.Digest)
			if err != nil {
				t.Fatal(err)
			}
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range m.Layers {
				layerUse[l.Digest]++
			}
		}
		// busybox and the shared base are in every image; each random
		// layer in one.
		shared, unique := 0, 0
		for _, n := range layerUse {
			switch n {
			case 1:
				unique++
			default:
				shared++
			}
		}
		if shared != 2 || unique != len(platforms) {
			t.Errorf("layers: %d shared, %d unique: %v", shared, unique, layerUse)
		}
	}
}

func TestPushReadBack(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []testenv.RegistryOption
	}{
		{"plain", nil},
		{"tls+htpasswd", []testenv.RegistryOption{testenv.WithTLS(), testenv.WithHtpasswd("u", "p")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := testenv.Registry(t, tc.opts...)
			idx := testimages.Index(t, []string{"linux/amd64", "linux/arm64"}, testimages.WithRandomLayers(2, 2048))
			d := testimages.Push(t, reg, "test/index:v1", idx)
			img := testimages.Image(t, "linux/amd64", testimages.Docker())
			di := testimages.Push(t, reg, reg.Ref("test/image:v1"), img)

			for ref, want := range map[string]v1.Hash{"test/index:v1": d, "test/image:v1": di} {
				args := append([]string{"inspect", "--raw"}, reg.SkopeoFlags("")...)
				raw := testenv.Skopeo(t, append(args, "docker://"+reg.Ref(ref))...)
				sum := sha256.Sum256([]byte(raw))
				if got := "sha256:" + hex.EncodeToString(sum[:]); got != want.String() {
					t.Errorf("%s: skopeo digest %s, want %s", ref, got, want)
				}
			}

			// go-containerregistry reads it back too, complete and valid.
			got, err := remote.Index(testimages.Ref(t, reg, "test/index:v1"), testimages.RemoteOptions(reg)...)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Index(got); err != nil {
				t.Fatal(err)
			}
		})
	}
}
