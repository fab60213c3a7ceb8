package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/manifests"
)

func init() { commands = append(commands, newInspectCommand) }

func newInspectCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect BUNDLE",
		Short: "List a bundle's images, platforms, digests and sizes",
		Long: `List every image of a bundle: name, root digest, media type, platforms and
size, each followed by its referrers (signatures, SBOMs, attestations:
artifact type, digest, what they refer to, size), then the bundle's blobs,
bytes and the bytes saved by storing shared blobs once, and the bundle's
digest (that of its index.json). For a delta bundle (ferry build --base),
its bases' digests and the blobs and bytes it borrows from them. -o json
prints the same as data.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := openBundle(cmd, g, args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			rep, err := bundle.Inspect(cmd.Context(), r)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd, rep)
			}
			return printInspect(cmd.OutOrStdout(), rep)
		},
	}
}

// printInspect prints a report as a table and a line of totals.
func printInspect(out io.Writer, rep *bundle.Report) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDIGEST\tTYPE\tPLATFORMS\tSIZE")
	for _, img := range rep.Images {
		platforms := strings.Join(img.Platforms, ",")
		if platforms == "" {
			platforms = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", img.Name, img.Digest, kind(img.MediaType), platforms, humanBytes(img.Size))
		for _, ref := range img.Referrers {
			fmt.Fprintf(tw, "  referrer %s\t%s\t%s\t-\t%s\n", ref.ArtifactType, ref.Digest, referrerKind(ref), humanBytes(ref.Size))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(out, "%d images, %d blobs, %s; %s saved by sharing\n",
		len(rep.Images), rep.Blobs, humanBytes(rep.Bytes), humanBytes(rep.SharedBytes))
	if err != nil || rep.Digest == "" {
		return err
	}
	if _, err := fmt.Fprintf(out, "bundle %s\n", rep.Digest); err != nil || rep.Delta == nil {
		return err
	}
	_, err = fmt.Fprintf(out, "delta of %s: holds %s, borrows %d blobs, %s, from its base\n",
		digestList(rep.Delta.Bases), humanBytes(rep.Bytes), rep.Delta.BorrowedBlobs, humanBytes(rep.Delta.BorrowedBytes))
	return err
}

// digestList lists digests, space-separated.
func digestList(ds []digest.Digest) string {
	return strings.Trim(fmt.Sprint(ds), "[]")
}

// referrerKind says what a referrer refers to: a cosign tag or a subject.
func referrerKind(ref bundle.ReferrerReport) string {
	if ref.Tag != "" {
		return "cosign " + ref.Tag[strings.LastIndex(ref.Tag, "."):] + " tag"
	}
	return "of " + ref.Subject.String()[:19]
}

// kind names a root media type briefly.
func kind(mediaType string) string {
	switch mediaType {
	case manifests.MediaTypeDockerManifestList:
		return "docker list"
	case manifests.MediaTypeDockerManifest:
		return "docker manifest"
	}
	switch {
	case manifests.IsIndex(mediaType):
		return "oci index"
	case manifests.IsManifest(mediaType):
		return "oci manifest"
	}
	return mediaType
}
