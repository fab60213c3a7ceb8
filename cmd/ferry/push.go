package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferry-oci/ferry/installer"
	"github.com/ferry-oci/ferry/manifests"
)

func init() { commands = append(commands, newPushCommand) }

// pushFlags are the flags of ferry push that do not map one to one onto
// installer.PushOptions.
type pushFlags struct {
	platforms []string
	referrers string
	registryFlags
}

func newPushCommand(g *globalOptions) *cobra.Command {
	var (
		opts installer.PushOptions
		f    pushFlags
	)
	cmd := &cobra.Command{
		Use:   "push BUNDLE --to HOST[/PREFIX]",
		Short: "Push every image of a bundle into a registry, indexes intact, digests unchanged",
		Long: `Push copies every image of a bundle into a registry: blobs, platform manifests,
indexes, then tags, each only if the registry lacks it. docker.io/library/nginx:1.25
goes to HOST/PREFIX/library/nginx:1.25 (HOST/PREFIX/docker.io/library/nginx:1.25
with --keep-host). Digests are preserved unless --platform filters the indexes.

Credentials come from --username and --password-stdin, or else from the docker
config or a containers auth file (REGISTRY_AUTH_FILE, as skopeo login writes it). TLS is verified unless --insecure; plain HTTP is
used only with --plain-http, for localhost and private addresses too.`,
		Example: `  ferry push release.tar --to harbor.local/tke
  ferry push release.tar --to 127.0.0.1:5000 --plain-http
  echo "$PASSWORD" | ferry push release.tar --to reg.example.com:8443/mirror --ca-file ca.crt --username admin --password-stdin
  ferry push release.tar --to reg.local --keep-host
  ferry push release.tar --to reg.local --only 'library/*' --platform linux/arm64`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.complete(cmd, &opts); err != nil {
				return err
			}
			return runPush(cmd, g, args[0], opts)
		},
	}
	fl := cmd.Flags()
	f.bind(fl, "", &opts)
	bindOnly(fl, &opts.Images, "push only images matching this pattern, e.g. 'library/*'")
	fl.StringArrayVar(&f.platforms, "platform", nil, "push indexes filtered to these platforms, os/arch[/variant][,...] (changes their digests)")
	fl.IntVarP(&opts.Jobs, "jobs", "j", 0, "blobs in flight at once (0: 8)")
	fl.BoolVar(&opts.FailFast, "fail-fast", false, "stop at the first failed image")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "list what would be pushed where, without contacting the registry")
	return cmd
}

// bind binds the flags ferry push and ferry install share; install spells
// them with the prefix "push-".
func (f *pushFlags) bind(fl *pflag.FlagSet, prefix string, opts *installer.PushOptions) {
	fl.StringVar(&opts.To, prefix+"to", "", "destination registry host with an optional repository prefix")
	fl.BoolVar(&opts.KeepHost, prefix+"keep-host", false, "keep the source registry host in the destination path")
	fl.StringVar(&opts.OnExistingTag, prefix+"on-existing-tag", installer.TagOverwrite,
		"when a tag at the destination points at other content: overwrite (move it; the summary names it), skip (leave it and the image), or fail")
	fl.StringVar(&f.referrers, prefix+"referrers", string(manifests.ReferrersAll), "referrers (signatures, SBOMs, attestations) pushed after their images: all or none")
	fl.DurationVar(&opts.Timeout, prefix+"timeout", 0, "stop the push after this long, retries included (0: no limit)")
	f.registryFlags.bind(fl, prefix, &opts.Options)
}

// complete checks the flags and fills what they imply into opts.
func (f *pushFlags) complete(cmd *cobra.Command, opts *installer.PushOptions) error {
	if opts.To == "" {
		return usageError{fmt.Errorf("--%sto is required", f.prefix)}
	}
	platforms, err := manifests.ParsePlatforms(f.platforms)
	if err != nil {
		return usageError{fmt.Errorf("--platform: %w", err)}
	}
	opts.Platforms = platforms
	if opts.Referrers, err = manifests.ParseReferrersMode(f.referrers); err != nil {
		return usageError{fmt.Errorf("--%sreferrers: %w", f.prefix, err)}
	}
	return f.registryFlags.complete(cmd, &opts.Options)
}

func runPush(cmd *cobra.Command, g *globalOptions, file string, opts installer.PushOptions) error {
	r, err := openBundle(cmd, g, file)
	if err != nil {
		return err
	}
	defer r.Close()
	var prog *progress
	if !opts.DryRun {
		prog = newProgress(g, cmd.ErrOrStderr(), "pushing")
		opts.Observer = prog
	}
	res, err := installer.Push(cmd.Context(), r, opts)
	if prog != nil {
		prog.Wait()
	}
	if res == nil {
		return err
	}
	for _, img := range res.Images {
		if img.MovedFrom != "" {
			g.log.Infof("moved tag %s from %s to %s", img.Destination, img.MovedFrom, img.Digest)
		}
	}
	return report(cmd, g, newPushSummary(res, opts.DryRun), func(w io.Writer) { printPush(w, res, opts.DryRun) }, err)
}

// pushSummary is the -o json form of a push result.
type pushSummary struct {
	DryRun       bool              `json:"dryRun,omitempty"`
	Images       []pushImageResult `json:"images"`
	Pushed       int               `json:"pushed"`
	Failed       int               `json:"failed"`
	Skipped      int               `json:"skipped"`
	TagsMoved    int               `json:"tagsMoved"`
	BlobsSent    int               `json:"blobsSent"`
	BlobsSkipped int               `json:"blobsSkipped"`
	BlobsMounted int               `json:"blobsMounted"`
	BytesSent    int64             `json:"bytesSent"`
	BytesSkipped int64             `json:"bytesSkipped"`
	Seconds      float64           `json:"seconds"`
}

type pushImageResult struct {
	Name          string   `json:"name"`
	Destination   string   `json:"destination"`
	Digest        string   `json:"digest"`
	SourceDigest  string   `json:"sourceDigest"`
	DigestChanged bool     `json:"digestChanged"`
	Platforms     []string `json:"platforms,omitempty"`
	Referrers     int      `json:"referrers"`
	MovedFrom     string   `json:"movedFrom,omitempty"`
	Skipped       string   `json:"skipped,omitempty"`
	Error         string   `json:"error,omitempty"`
}

func newPushSummary(res *installer.PushResult, dryRun bool) pushSummary {
	s := pushSummary{
		DryRun:       dryRun,
		Images:       make([]pushImageResult, 0, len(res.Images)),
		BlobsSent:    res.Stats.Copied,
		BlobsSkipped: res.Stats.Skipped,
		BlobsMounted: res.Stats.Mounted,
		BytesSent:    res.Stats.BytesCopied,
		BytesSkipped: res.Stats.BytesSkipped,
		Seconds:      res.Duration.Seconds(),
	}
	for _, img := range res.Images {
		v := pushImageResult{
			Name: img.Name, Destination: img.Destination, Digest: img.Digest.String(),
			SourceDigest: img.SourceDigest.String(), DigestChanged: img.DigestChanged(), Platforms: img.Platforms,
			Referrers: img.Referrers, MovedFrom: img.MovedFrom.String(), Skipped: img.Skipped,
		}
		switch {
		case img.Err != nil:
			v.Error = img.Err.Error()
			s.Failed++
		case img.Skipped != "":
			s.Skipped++
		default:
			s.Pushed++
		}
		if img.MovedFrom != "" {
			s.TagsMoved++
		}
		s.Images = append(s.Images, v)
	}
	return s
}

// printPush writes one line per image and a summary.
func printPush(w io.Writer, res *installer.PushResult, dryRun bool) {
	s := newPushSummary(res, dryRun)
	verb := "pushed"
	if dryRun {
		verb = "would push"
	}
	for _, img := range s.Images {
		switch {
		case img.Error != "":
			fmt.Fprintf(w, "FAILED %s -> %s: %s\n", img.Name, img.Destination, img.Error)
			continue
		case img.Skipped != "":
			fmt.Fprintf(w, "SKIPPED %s: %s\n", img.Name, img.Skipped)
			continue
		}
		fmt.Fprintf(w, "%s %s -> %s@%s [%s]%s\n", verb, img.Name, img.Destination, img.Digest, strings.Join(img.Platforms, ","), referrersNote(img.Referrers))
		if img.DigestChanged {
			fmt.Fprintf(w, "  digest changed: filtered from %s\n", img.SourceDigest)
		}
		if img.MovedFrom != "" {
			fmt.Fprintf(w, "  tag moved: it pointed at %s\n", img.MovedFrom)
		}
	}
	if dryRun {
		fmt.Fprintf(w, "%d images would be pushed, %d failed\n", s.Pushed, s.Failed)
		return
	}
	fmt.Fprintf(w, "%d images pushed (%d tags moved), %d skipped, %d failed in %s; blobs: %d sent (%s), %d skipped, %d mounted (%s not sent)\n",
		s.Pushed, s.TagsMoved, s.Skipped, s.Failed, res.Duration.Round(time.Millisecond), s.BlobsSent, humanBytes(s.BytesSent),
		s.BlobsSkipped, s.BlobsMounted, humanBytes(s.BytesSkipped))
}

// referrersNote says how many referrers went with an image, if any.
func referrersNote(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" + %d referrers", n)
}
