// Command demoimages writes the sample images of ferry's demo (make demo)
// as OCI image-layout directories, with the image list that names them, and
// optionally the config of a private containerd daemon. It needs no registry
// and no network: every image is built from the machine's busybox-static.
//
//	go run ./scripts/demoimages -out DIR [-containerd DIR]
//
// writes
//
//	DIR/layouts/busybox     a multi-arch index (linux/amd64, linux/arm64) tagged 1.36
//	DIR/layouts/app-amd64   a linux/amd64 image of an "app"
//	DIR/layouts/app-arm64   the same app for linux/arm64
//	DIR/layouts/tool        a single-platform Docker schema2 image tagged 1
//	DIR/images.yaml         the ferry image list naming them docker.io/... and quay.io/...
//
// Every platform's image carries this machine's busybox binary, so only the
// machine's own platform runs; the others show what a multi-arch index holds.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/internal/ctdconfig"
	"github.com/ferry-oci/ferry/internal/sampleimages"
)

// imagesYAML is the image list; paths are relative to its directory.
const imagesYAML = `# Sample image list written by scripts/demoimages (ferry's YAML form).
images:
  # A multi-arch image from an OCI layout directory: its index is kept as is.
  - ref: oci:layouts/busybox:1.36
    name: docker.io/ferrydemo/busybox:1.36
  # Two per-arch images combined into one new multi-arch index.
  - name: docker.io/ferrydemo/app:1.0
    combine:
      linux/amd64: oci:layouts/app-amd64
      linux/arm64: oci:layouts/app-arm64
  # A single-platform Docker schema2 image.
  - ref: oci:layouts/tool:1
    name: quay.io/ferrydemo/tool:1
`

func main() {
	out := flag.String("out", "", "directory to write the layouts and images.yaml into (required)")
	ctd := flag.String("containerd", "", "also write the config of a private containerd daemon under this directory")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: demoimages -out DIR [-containerd DIR]")
		os.Exit(2)
	}
	if err := run(*out, *ctd); err != nil {
		fmt.Fprintln(os.Stderr, "demoimages:", err)
		os.Exit(1)
	}
}

func run(out, ctd string) error {
	busybox, err := sampleimages.Index([]string{"linux/amd64", "linux/arm64"})
	if err != nil {
		return err
	}
	if err := writeLayout(filepath.Join(out, "layouts", "busybox"), busybox, "1.36"); err != nil {
		return err
	}
	for _, arch := range []string{"amd64", "arm64"} {
		app, err := sampleimages.Image("linux/"+arch, sampleimages.WithCmd("/bin/echo", "hello from ferrydemo/app 1.0 (linux/"+arch+")"))
		if err != nil {
			return err
		}
		if err := writeLayout(filepath.Join(out, "layouts", "app-"+arch), app, ""); err != nil {
			return err
		}
	}
	tool, err := sampleimages.Image("linux/amd64", sampleimages.Docker(), sampleimages.WithCmd("/bin/ls", "/bin"))
	if err != nil {
		return err
	}
	if err := writeLayout(filepath.Join(out, "layouts", "tool"), tool, "1"); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "images.yaml"), []byte(imagesYAML), 0o644); err != nil {
		return err
	}
	if ctd != "" {
		return ctdconfig.For(ctd).Write()
	}
	return nil
}

// writeLayout writes x (a v1.Image or v1.ImageIndex) as the only image of a
// new OCI layout at dir, tagged tag (org.opencontainers.image.ref.name) when
// tag is not empty.
func writeLayout(dir string, x any, tag string) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("layout %s: %w", dir, err)
	}
	var opts []layout.Option
	if tag != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{ocispec.AnnotationRefName: tag}))
	}
	switch x := x.(type) {
	case v1.ImageIndex:
		err = p.AppendIndex(x, opts...)
	case v1.Image:
		err = p.AppendImage(x, opts...)
	default:
		err = fmt.Errorf("%T is neither an image nor an index", x)
	}
	if err != nil {
		return fmt.Errorf("layout %s: %w", dir, err)
	}
	return nil
}
