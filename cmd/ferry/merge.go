package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/internal/transfer"
)

func init() { commands = append(commands, newMergeCommand) }

func newMergeCommand(g *globalOptions) *cobra.Command {
	var output string
	var jobs int
	cmd := &cobra.Command{
		Use:   "merge BASE... DELTA -o FULL.tar",
		Short: "Write the full bundle of a delta's images from the delta and its base",
		Long: `Merge reads a delta bundle (ferry build --base) with its base bundles, given
before it in the order they were built on, and writes the full bundle of the
delta's images: byte-identical to a full ferry build of the same list with
the same SOURCE_DATE_EPOCH. Bundles that are not the delta's recorded bases,
or lack blobs it borrows, are refused.`,
		Example: `  ferry merge release-1.0.tar upgrade-1.1.tar -o release-1.1.tar
  ferry merge release-1.0.tar upgrade-1.1.tar upgrade-1.2.tar -o release-1.2.tar`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usageError{fmt.Errorf("give the base bundle(s), then the delta")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" {
				return usageError{fmt.Errorf("-o/--output FULL.tar is required")}
			}
			bases, deltaPath := args[:len(args)-1], args[len(args)-1]
			base, err := bundle.OpenAll(cmd.Context(), bases...)
			if err != nil {
				return err
			}
			defer base.Close()
			delta, err := bundle.Open(deltaPath)
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
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d images, %d blobs, %s\n", output, res.Images, res.Blobs, humanBytes(res.Bytes))
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "full bundle path (.tar, or .tar.zst for zstd)")
	cmd.Flags().IntVar(&jobs, "jobs", transfer.DefaultJobs, "blobs copied at once")
	return cmd
}
