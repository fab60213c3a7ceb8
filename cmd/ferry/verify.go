package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/bundle/signature"
	"github.com/ferry-oci/ferry/manifests"
)

func init() { commands = append(commands, newVerifyCommand) }

// verifyResult is verify's -o json output: the bundle check and, with
// --key, the signature check.
type verifyResult struct {
	*bundle.VerifyReport
	Signatures *signature.Report `json:"signatures,omitempty"`
}

func newVerifyCommand(g *globalOptions) *cobra.Command {
	var (
		fast    bool
		bases   []string
		keyFile string
		images  []string
	)
	opts := bundle.VerifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify BUNDLE",
		Short: "Check every blob's digest and size and every reference of a bundle",
		Long: `Check a bundle: every descriptor reachable from index.json (images and their
referrers) is present with its size, every index and manifest parses, every
image has a unique name, every referrer's subject is in its image, and every
blob's bytes hash to its digest (--fast skips the hashing of layers and
configs). Exits 1 naming each bad blob and the images that use it.

A delta bundle (ferry build --base) is checked for what it holds; the blobs
it borrows are counted. With --base (its bases, in order), the base bundles
and the delta are checked as one: every image of both complete.

--key FILE (a PEM public key: ECDSA, Ed25519 or RSA) also checks, offline,
that every image (or those chosen with --only) carries a cosign signature
of its digest by that key; unsigned images and bad signatures are named.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Full = !fast
			var key *signature.Key
			if keyFile != "" {
				var err error
				if key, err = signature.LoadKeyFile(keyFile); err != nil {
					return err
				}
			}
			r, err := openWithBases(cmd, g, bases, args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			rep, verr := bundle.Verify(cmd.Context(), r, opts)
			if rep == nil {
				return verr
			}
			verr = shown(verr, "%s: %d problem(s), listed on standard output", bundle.ErrVerifyFailed, len(rep.Problems))
			res := verifyResult{VerifyReport: rep}
			var serr error
			if key != nil {
				selected, err := manifests.SelectImages(r.Images(), bundle.ImageName, images)
				if err != nil {
					return usageError{err}
				}
				if res.Signatures, serr = signature.VerifyBundle(cmd.Context(), r, key, selected); res.Signatures == nil {
					return serr
				}
				serr = shown(serr, "%s: listed on standard output", "images not signed by the key")
			}
			return report(cmd, g, res, func(w io.Writer) { printVerify(w, res) }, errors.Join(verr, serr))
		},
	}
	cmd.Flags().BoolVar(&fast, "fast", false, "check sizes and the graph only, without hashing every blob")
	cmd.Flags().IntVar(&opts.Jobs, "jobs", 0, "blobs hashed at once (0: 8)")
	cmd.Flags().StringArrayVar(&bases, "base", nil, "base bundle of a delta, checked with it (repeatable, in order)")
	cmd.Flags().StringVar(&keyFile, "key", "", "PEM public key: check that every image carries a cosign signature by it")
	bindOnly(cmd.Flags(), &images, "with --key, check only the images matching this pattern")
	return cmd
}

// printVerify prints verify's result as lines.
func printVerify(out io.Writer, res verifyResult) {
	for _, p := range res.Problems {
		fmt.Fprintf(out, "BAD %s\n", p.Error())
	}
	what := "sizes and graph"
	if res.Full {
		what = "digests and sizes"
	}
	fmt.Fprintf(out, "%d images, %d blobs, %s: %s checked, %d problem(s)\n",
		res.Images, res.Blobs, humanBytes(res.Bytes), what, len(res.Problems))
	if res.Delta != nil {
		fmt.Fprintf(out, "delta: %d blobs, %s, borrowed from its base %s (not checked; give --base to check them)\n",
			res.Delta.BorrowedBlobs, humanBytes(res.Delta.BorrowedBytes), digestList(res.Delta.Bases))
	}
	if res.Signatures == nil {
		return
	}
	bad := 0
	for _, img := range res.Signatures.Images {
		if img.Verified {
			fmt.Fprintf(out, "SIGNED %s %s\n", img.Name, img.Digest)
			continue
		}
		bad++
		fmt.Fprintf(out, "NOT SIGNED %s\n", img.Problem)
	}
	fmt.Fprintf(out, "%d of %d image(s) signed by the key\n", len(res.Signatures.Images)-bad, len(res.Signatures.Images))
}

// openWithBases opens a bundle alone, or after its bases as one.
func openWithBases(cmd *cobra.Command, g *globalOptions, bases []string, path string) (*bundle.Reader, error) {
	if len(bases) == 0 {
		return openBundle(cmd, g, path)
	}
	return openBundles(cmd, g, append(append([]string(nil), bases...), path))
}
