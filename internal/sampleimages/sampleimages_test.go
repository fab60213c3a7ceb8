package sampleimages_test

import (
	"reflect"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/ferry-oci/ferry/internal/sampleimages"
)

func TestImageCmd(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []sampleimages.Option
		want []string
	}{
		{"default", nil, []string{"/bin/sh"}},
		{"WithCmd", []sampleimages.Option{sampleimages.WithCmd("/bin/echo", "hi")}, []string{"/bin/echo", "hi"}},
		{"WithCmd docker", []sampleimages.Option{sampleimages.Docker(), sampleimages.WithCmd("/bin/ls")}, []string{"/bin/ls"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := sampleimages.Image("linux/arm64", tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Image(img); err != nil {
				t.Fatal(err)
			}
			cfg, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.Config.Cmd, tc.want) || cfg.Architecture != "arm64" {
				t.Errorf("cmd %q arch %s, want %q arm64", cfg.Config.Cmd, cfg.Architecture, tc.want)
			}
		})
	}
}

func TestBadPlatform(t *testing.T) {
	for _, platform := range []string{"", "linux", "/amd64"} {
		t.Run(platform, func(t *testing.T) {
			if _, err := sampleimages.Image(platform); err == nil {
				t.Errorf("Image(%q): no error", platform)
			}
			if _, err := sampleimages.Index([]string{"linux/amd64", platform}); err == nil {
				t.Errorf("Index(..., %q): no error", platform)
			}
		})
	}
}
