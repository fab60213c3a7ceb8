package manifests_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-oci/ferry/manifests"
)

func TestSelectImages(t *testing.T) {
	names := []string{
		"docker.io/library/nginx:1.25",
		"docker.io/library/nginx:1.27",
		"docker.io/tkestack/app:v1",
		"quay.io/coreos/etcd:v3.5.9",
		"registry.k8s.io/pause@sha256:" + strings.Repeat("a", 64),
	}
	id := func(s string) string { return s }
	tests := []struct {
		patterns []string
		want     []int
	}{
		{nil, []int{0, 1, 2, 3, 4}},
		{[]string{"nginx:1.25"}, []int{0}},
		{[]string{"library/nginx:1.25"}, []int{0}},
		{[]string{"docker.io/library/nginx:1.25"}, []int{0}},
		{[]string{"nginx"}, []int{0, 1}},
		{[]string{"docker.io/*"}, []int{0, 1, 2}},
		{[]string{"*"}, []int{0, 1, 2, 3, 4}},
		{[]string{"*/coreos/*"}, []int{3}},
		{[]string{"tkestack/*:v1"}, []int{2}},
		{[]string{"nginx:1.2?"}, []int{0, 1}},
		{[]string{"pause"}, []int{4}},
		{[]string{"coreos/etcd", "*/app"}, []int{2, 3}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.patterns, ","), func(t *testing.T) {
			got, err := manifests.SelectImages(names, id, tt.patterns)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, i := range tt.want {
				want = append(want, names[i])
			}
			if !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
	t.Run("unmatched pattern", func(t *testing.T) {
		_, err := manifests.SelectImages(names, id, []string{"nginx", "ngnix:1.25"})
		if !errors.Is(err, manifests.ErrNoImages) || !strings.Contains(err.Error(), `"ngnix:1.25"`) || !strings.Contains(err.Error(), "docker.io/library/nginx:1.25") {
			t.Errorf("error %v: want ErrNoImages naming the pattern and existing names", err)
		}
	})
	t.Run("empty pattern", func(t *testing.T) {
		if _, err := manifests.SelectImages(names, id, []string{""}); !errors.Is(err, manifests.ErrInvalidArgument) {
			t.Errorf("error %v, want ErrInvalidArgument", err)
		}
	})
}
