package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ferry-oci/ferry/bundle"
)

func init() { commands = append(commands, newMergeCommand) }

func newMergeCommand(g *globalOptions) *cobra.Command {
	var output string
	var jobs int
	cmd := &cobra.Command{
		Use:   "merge BASE... DELTA -b FULL.tar",
		Short: "Write the full bundle of a delta's images from the delta and its base",
		Long: `Merge reads a delta bundle (ferry build --base) with its base bundles, given
before it in the order they were built on, and writes the full bundle of the
delta's images: byte-identical to a full ferry build of the same list with
the same SOURCE_DATE_EPOCH. Bundles that are not the delta's recorded bases,
or lack blobs it borrows, are refused.`,
		Example: `  ferry merge release-1.0.tar upgrade-1.1.tar -b release-1.1.tar
  ferry merge release-1.0.tar upgrade-1.1.tar upgrade-1.2.tar -b release-1.2.tar`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usageError{fmt.Errorf("give the base bundle(s), then the delta")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" {
				return usageError{fmt.Errorf("-b/--bundle FULL.tar is required")}
			}
			if err := bundle.CheckPath(output); err != nil {
				return usageError{err}
			}
			bases, deltaPath := args[:len(args)-1], args[len(args)-1]
			base, err := openBundles(cmd, g, bases)
			if err != nil {
				return err
			}
			defer base.Close()
			delta, err := openBundle(cmd, g, deltaPath)
			if err != nil {
				return err
			}
			defer delta.Close()
			prog := newProgress(g, cmd.ErrOrStderr(), "merging")
			res, err := bundle.Merge(cmd.Context(), output, base, delta, bundle.WriteOptions{Jobs: jobs, Observer: prog})
			prog.Wait()
			if err != nil {
				return err
			}
			summary := map[string]any{"bundle": output, "images": res.Images, "blobs": res.Blobs, "bytes": res.Bytes}
			return report(cmd, g, summary, func(w io.Writer) {
				fmt.Fprintf(w, "wrote %s: %d images, %d blobs, %s\n", output, res.Images, res.Blobs, humanBytes(res.Bytes))
			}, nil)
		},
	}
	bindBundlePath(cmd, &output, "full bundle to write")
	cmd.Flags().IntVar(&jobs, "jobs", 0, "blobs copied at once (0: 8)")
	return cmd
}
