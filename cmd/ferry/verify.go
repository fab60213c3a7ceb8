package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ferry-oci/ferry/bundle"
)

func init() { commands = append(commands, newVerifyCommand) }

func newVerifyCommand(g *globalOptions) *cobra.Command {
	var fast bool
	var bases []string
	opts := bundle.VerifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify BUNDLE",
		Short: "Check every blob's digest and size and every reference of a bundle",
		Long: `Check a bundle: every descriptor reachable from index.json is present with
its size, every index and manifest parses, every image has a unique name, and
every blob's bytes hash to its digest (--fast skips the hashing of layers and
configs). Exits 1 naming each bad blob and the images that use it.

A delta bundle (ferry build --base) is checked for what it holds; the blobs
it borrows are counted. With --base (its bases, in order), the base bundles
and the delta are checked as one: every image of both complete.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Full = !fast
			r, err := openWithBases(cmd, bases, args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			rep, verr := bundle.Verify(cmd.Context(), r, opts)
			if rep == nil {
				return verr
			}
			verr = shown(verr, "%s: %d problem(s), listed on standard output", bundle.ErrVerifyFailed, len(rep.Problems))
			if g.output == "json" {
				if err := printJSON(cmd, rep); err != nil {
					return err
				}
				return verr
			}
			out := cmd.OutOrStdout()
			for _, p := range rep.Problems {
				fmt.Fprintf(out, "BAD %s\n", p.Error())
			}
			what := "sizes and graph"
			if rep.Full {
				what = "digests and sizes"
			}
			fmt.Fprintf(out, "%d images, %d blobs, %s: %s checked, %d problem(s)\n",
				rep.Images, rep.Blobs, humanBytes(rep.Bytes), what, len(rep.Problems))
			if rep.Delta != nil {
				fmt.Fprintf(out, "delta: %d blobs, %s, borrowed from its base %s (not checked; give --base to check them)\n",
					rep.Delta.BorrowedBlobs, humanBytes(rep.Delta.BorrowedBytes), digestList(rep.Delta.Bases))
			}
			return verr
		},
	}
	cmd.Flags().BoolVar(&fast, "fast", false, "check sizes and the graph only, without hashing every blob")
	cmd.Flags().IntVar(&opts.Jobs, "jobs", 0, "blobs hashed at once (default: one per CPU)")
	cmd.Flags().StringArrayVar(&bases, "base", nil, "base bundle of a delta, checked with it (repeatable, in order)")
	return cmd
}

// openWithBases opens a bundle alone, or after its bases as one.
func openWithBases(cmd *cobra.Command, bases []string, path string) (*bundle.Reader, error) {
	if len(bases) == 0 {
		return bundle.Open(path)
	}
	return bundle.OpenAll(cmd.Context(), append(append([]string(nil), bases...), path)...)
}
