package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferry-oci/ferry/installer/containerd"
)

func init() { commands = append(commands, newImportCommand) }

func newImportCommand(g *globalOptions) *cobra.Command {
	var opts containerd.ImportOptions
	cmd := &cobra.Command{
		Use:   "import BUNDLE",
		Short: "Load a bundle's images into containerd's content store and unpack them",
		Long: `Import writes the images of a bundle straight into containerd's content store
(blobs containerd already has are skipped), creates the image records (the
full reference, and repository@digest as the CRI's pulls do), and unpacks them
into the snapshotter, so the kubelet (CRI) and ctr use the images at once; no
docker and no registry needed. Re-running it writes only what is missing.

By default only the node's platform is written and unpacked; the image record
still names the whole index. Run it as root (containerd's socket is root's).`,
		Example: `  ferry import release.tar
  ferry import release.tar --address /run/k3s/containerd/containerd.sock --namespace k8s.io
  ferry import release.tar --all-platforms --no-unpack
  ferry import release.tar --only 'tkestack/*' --snapshotter overlayfs`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := openBundle(cmd, g, args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			prog := newProgress(g, cmd.ErrOrStderr(), "importing")
			opts.Observer = prog
			res, err := containerd.Import(cmd.Context(), r, opts)
			prog.Wait()
			if res == nil {
				return err
			}
			if res.Detected != "" {
				g.log.Infof("no --address given: imported into %s", res.Where())
			}
			return report(cmd, g, res, func(w io.Writer) { printImportResult(w, res) }, err)
		},
	}
	fl := cmd.Flags()
	bindImportFlags(fl, &opts)
	bindOnly(fl, &opts.Images, "import only images matching this pattern, e.g. 'tkestack/*'")
	fl.IntVar(&opts.Jobs, "jobs", 0, "blobs written at once (0: 8)")
	return cmd
}

// bindImportFlags binds the flags ferry import and ferry install share.
func bindImportFlags(fl *pflag.FlagSet, opts *containerd.ImportOptions) {
	fl.StringVar(&opts.Address, "address", "", "containerd's gRPC socket (default: the one a containerd runs on, of "+socketList()+")")
	fl.StringVar(&opts.Namespace, "namespace", containerd.DefaultNamespace, "containerd namespace (k8s.io is the kubelet's)")
	fl.StringVar(&opts.Platform, "platform", "", "platform to write and unpack, os/arch[/variant] (default: the node's)")
	fl.BoolVar(&opts.RequirePlatform, "require-platform", false, "fail, importing nothing, when an image lacks the platform (default: import the images that have it and name the others)")
	fl.BoolVar(&opts.AllPlatforms, "all-platforms", false, "write every platform of every image (the node's, or --platform, is unpacked)")
	fl.BoolVar(&opts.NoUnpack, "no-unpack", false, "do not unpack the images into the snapshotter")
	fl.StringVar(&opts.Snapshotter, "snapshotter", containerd.DefaultSnapshotter, "snapshotter to unpack into")
}

// socketList names the sockets import tries when --address is not given.
func socketList() string {
	names := make([]string, len(containerd.Sockets))
	for i, s := range containerd.Sockets {
		names[i] = s.String()
	}
	return strings.Join(names, ", ")
}

// printImportResult prints one line per image and a summary.
func printImportResult(out io.Writer, res *containerd.ImportResult) {
	skipped := 0
	for _, img := range res.Images {
		switch {
		case img.Error != "":
			fmt.Fprintf(out, "FAILED %s: %s\n", img.Name, img.Error)
			continue
		case img.Skipped != "":
			fmt.Fprintf(out, "SKIPPED %s\n", img.Skipped)
			skipped++
			continue
		}
		unpacked := "not unpacked"
		if img.Unpacked {
			unpacked = "unpacked"
		}
		fmt.Fprintf(out, "%s %s %s %s %s\n", img.Name, img.Digest, strings.Join(img.Platforms, ","), img.Record, unpacked)
	}
	into := "not unpacked"
	if res.Snapshotter != "" {
		into = fmt.Sprintf("%s unpacked into %s", res.Unpack, res.Snapshotter)
	}
	if skipped > 0 {
		fmt.Fprintf(out, "%d images skipped: they lack platform %s (--require-platform makes that an error)\n", skipped, res.Platform)
	}
	fmt.Fprintf(out, "%d images into containerd %s (namespace %s, platform %s, %s): %d blobs written (%s), %d skipped (%s) in %s\n",
		len(res.Images)-skipped, res.Where(), res.Namespace, res.Platform, into,
		res.BlobsWritten, humanBytes(res.BytesWritten), res.BlobsSkipped, humanBytes(res.BytesSkipped),
		res.Duration.Round(time.Millisecond))
	if res.ReferrersLeftOut > 0 {
		fmt.Fprintf(out, "%d referrers (signatures, SBOMs, attestations) left out: containerd does not use them; push or serve carries them\n", res.ReferrersLeftOut)
	}
}
