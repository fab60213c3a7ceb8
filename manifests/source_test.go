package manifests_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-oci/ferry/manifests"
)

func TestParseSource(t *testing.T) {
	dgst := "sha256:" + strings.Repeat("0", 64)
	for _, tc := range []struct {
		in, canonical string
		want          manifests.Source
	}{
		{"nginx", "docker.io/library/nginx:latest", manifests.Source{Kind: manifests.SourceRegistry, Ref: "docker.io/library/nginx:latest"}},
		{"foo:bar", "docker.io/library/foo:bar", manifests.Source{Ref: "docker.io/library/foo:bar"}},
		{"localhost:5000/app@" + dgst, "localhost:5000/app@" + dgst, manifests.Source{Ref: "localhost:5000/app@" + dgst}},
		{"oci:./layouts/app", "oci:./layouts/app", manifests.Source{Kind: manifests.SourceOCILayout, Path: "./layouts/app"}},
		{"oci:dir:app:2.0", "oci:dir:app:2.0", manifests.Source{Kind: manifests.SourceOCILayout, Path: "dir", Name: "app:2.0"}},
		{"oci:dir:1.36", "oci:dir:1.36", manifests.Source{Kind: manifests.SourceOCILayout, Path: "dir", Name: "1.36"}},
		{"oci-archive:/abs/release.tar", "oci-archive:/abs/release.tar", manifests.Source{Kind: manifests.SourceOCIArchive, Path: "/abs/release.tar"}},
		{"docker-archive:saved.tar", "docker-archive:saved.tar", manifests.Source{Kind: manifests.SourceDockerArchive, Path: "saved.tar"}},
		{"docker-archive:saved.tar:bbox:1.35", "docker-archive:saved.tar:bbox:1.35", manifests.Source{Kind: manifests.SourceDockerArchive, Path: "saved.tar", Name: "bbox:1.35"}},
		{"docker-archive:saved.tar:@1", "docker-archive:saved.tar:@1", manifests.Source{Kind: manifests.SourceDockerArchive, Path: "saved.tar", Name: "@1"}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := manifests.ParseSource(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("ParseSource(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
			if s := got.String(); s != tc.canonical {
				t.Errorf("String() = %q, want %q", s, tc.canonical)
			}
			again, err := manifests.ParseSource(got.String())
			if err != nil || again != got {
				t.Errorf("ParseSource(String()) = %+v, %v; want %+v", again, err, got)
			}
		})
	}
}

func TestParseSourceErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"oci:", `"oci:": no path after oci:`},
		{"oci-archive:", `"oci-archive:": no path after oci-archive:`},
		{"docker-archive:", `"docker-archive:": no path after docker-archive:`},
		{"oci:dir:", `"oci:dir:": empty image name after the path`},
		{"oci-archive:x.tar:app:1", `"oci-archive:x.tar:app:1": oci-archive: takes a file and no image name`},
		{"docker-archive:x.tar:Bad Name", `"docker-archive:x.tar:Bad Name": image name:`},
		{"docker://nginx:1", `"docker://nginx:1": write registry references without docker://`},
		{"library/Nginx:1", `"library/Nginx:1"`},
		{"", `""`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := manifests.ParseSource(tc.in)
			if err == nil {
				t.Fatalf("ParseSource(%q) = %+v, want an error", tc.in, got)
			}
			if !errors.Is(err, manifests.ErrInvalidReference) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q: want manifests.ErrInvalidReference naming %s", err, tc.want)
			}
		})
	}
}

func TestSourceInDir(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"oci:layout:app:1", "oci:" + filepath.Join("/list", "layout") + ":app:1"},
		{"oci-archive:../r.tar", "oci-archive:" + filepath.Join("/list", "../r.tar")},
		{"docker-archive:/abs/s.tar", "docker-archive:/abs/s.tar"},
		{"nginx:1", "docker.io/library/nginx:1"},
	} {
		src, err := manifests.ParseSource(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := src.InDir("/list").String(); got != tc.want {
			t.Errorf("%s in /list = %q, want %q", tc.in, got, tc.want)
		}
	}
	if zero := (manifests.Source{}); zero.String() != "" {
		t.Errorf("zero Source prints %q, want \"\"", zero.String())
	}
}
