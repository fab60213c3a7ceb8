package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/bundle/build"
	"github.com/ferry-oci/ferry/internal/remote"
	"github.com/ferry-oci/ferry/manifests/imagelist"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/ferry-oci/ferry/manifests"
)

func init() { commands = append(commands, newBuildCommand) }

type buildFlags struct {
	file                  string
	bundle                string
	images                imageArgs
	platforms             []string
	allowMissingPlatforms bool
	keepGoing             bool
	insecure              []string // --insecure-registry, deprecated
	registry              remote.Options
	registryFlags         registryFlags
	jobs                  int
	referrers             string
	artifactTypes         []string
	bases                 []string
}

func newBuildCommand(g *globalOptions) *cobra.Command {
	var f buildFlags
	cmd := &cobra.Command{
		Use:   "build -f images.yaml -b bundle.tar",
		Short: "Pack many multi-arch images into one deterministic OCI layout tarball",
		Long: `Build resolves every image of the list (registry references, oci:DIR[:NAME],
oci-archive:FILE, docker-archive:FILE[:NAME], and per-arch images to combine),
filters platforms and writes one OCI image-layout tarball. Upstream digests
are kept unless filtering or combining had to make a new index.
Every referrer of each image and of its platform manifests travels with it
(signatures, SBOMs, attestations: OCI 1.1 referrers, found through the
registry's referrers API or the referrers tag schema, and cosign's
sha256-<hex>.sig/.att/.sbom tags), referrers of referrers too;
--referrers=none leaves them out, --artifact-type keeps only those types.
SOURCE_DATE_EPOCH sets the entries' time (default 0), so builds reproduce.

Registries are reached as ferry push reaches them: credentials from the
docker config (DOCKER_CONFIG, docker login), REGISTRY_AUTH_FILE or
--username and --password-stdin; TLS verified unless --insecure; plain HTTP
only with --plain-http, for localhost and private addresses too.

Images can be given on the command line too: each --image SOURCE, in the
forms of a list, may be followed by --name NAME, the name to give it in the
bundle (needed for an oci: layout whose image is named by a bare tag).

With --base OLD.tar (repeatable; a delta base after its own bases) it writes
a delta: every image of the list in index.json, every index, manifest and
config, but only the layers no base holds (never downloaded). ferry merge
makes the full bundle from the base and the delta.`,
		Example: `  ferry build -f images.yaml -b release.tar
  ferry build --image docker.io/library/nginx:1.25 --image oci:layouts/busybox:1.36 \
    --name docker.io/ferrydemo/busybox:1.36 --platform linux/amd64,linux/arm64 -b release.tar.zst`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := f.options()
			if err != nil {
				return err
			}
			if err := f.registryFlags.complete(cmd, &opts.Registry); err != nil {
				return err
			}
			if len(f.insecure) > 0 {
				g.log.Warnf("--insecure-registry is deprecated: use --plain-http (and --insecure for unverified TLS), which apply to every registry of the build")
			}
			prog := newProgress(g, cmd.ErrOrStderr(), "building")
			opts.Observer = prog
			res, err := build.Build(cmd.Context(), opts)
			prog.Wait()
			if res == nil {
				return err
			}
			err = shown(err, "build: %d of %d images failed and were left out of %s", len(res.Failed), len(opts.List.Images), f.bundle)
			return report(cmd, g, newBuildSummary(f.bundle, res), func(w io.Writer) { printBuild(w, f.bundle, res) }, err)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.file, "file", "f", "", "image list: plain list, ferry YAML or mindthegap YAML")
	bindBundlePath(cmd, &f.bundle, "bundle to write")
	fl.Var(sourceFlag{&f.images}, "image", "add an image: a registry reference, oci:DIR[:NAME], oci-archive:FILE or docker-archive:FILE[:NAME] (repeatable)")
	fl.Var(nameFlag{&f.images}, "name", "name the image of the --image before it in the bundle, e.g. docker.io/library/busybox:1.36")
	fl.StringSliceVar(&f.platforms, "platform", nil, "keep only these platforms, e.g. linux/amd64,linux/arm64")
	fl.BoolVar(&f.allowMissingPlatforms, "allow-missing-platforms", false, "keep images that lack some requested platforms")
	fl.BoolVar(&f.keepGoing, "keep-going", false, "write the bundle without the images that fail, name them, and exit 1")
	f.registryFlags.bind(fl, "", &f.registry)
	fl.StringArrayVar(&f.insecure, "insecure-registry", nil, "registry HOST[:PORT] reachable over plain HTTP or unverified TLS (repeatable)")
	fl.MarkHidden("insecure-registry") //nolint:errcheck // defined above
	fl.IntVar(&f.jobs, "jobs", 0, "blobs downloaded at once (0: 8)")
	fl.StringVar(&f.referrers, "referrers", string(manifests.ReferrersAll), "referrers carried with the images: all or none")
	fl.StringArrayVar(&f.artifactTypes, "artifact-type", nil, "carry only referrers of this artifact type (repeatable)")
	fl.StringArrayVar(&f.bases, "base", nil, "write a delta holding only the layers this bundle lacks (repeatable, bases first)")
	return cmd
}

func (f *buildFlags) options() (build.Options, error) {
	if f.bundle == "" {
		return build.Options{}, usageError{fmt.Errorf("-b/--bundle BUNDLE.tar is required")}
	}
	if err := bundle.CheckPath(f.bundle); err != nil {
		return build.Options{}, usageError{err}
	}
	list := &imagelist.List{}
	if f.file != "" {
		var err error
		if list, err = imagelist.Load(f.file); err != nil {
			return build.Options{}, err
		}
	}
	if err := list.AddArgs(f.images); err != nil {
		return build.Options{}, usageError{err}
	}
	if len(list.Images) == 0 {
		return build.Options{}, usageError{fmt.Errorf("no images: give -f FILE or --image REF")}
	}
	platforms, err := manifests.ParsePlatforms(f.platforms)
	if err != nil {
		return build.Options{}, usageError{err}
	}
	mode, err := manifests.ParseReferrersMode(f.referrers)
	if err != nil {
		return build.Options{}, usageError{fmt.Errorf("--referrers: %w", err)}
	}
	opts := build.Options{
		List:                  list,
		Output:                f.bundle,
		Platforms:             platforms,
		AllowMissingPlatforms: f.allowMissingPlatforms,
		KeepGoing:             f.keepGoing,
		Jobs:                  f.jobs,
		Referrers:             mode,
		ArtifactTypes:         f.artifactTypes,
		Bases:                 f.bases,
	}
	opts.Registry = f.registry
	if len(f.insecure) > 0 { // the deprecated --insecure-registry: plain HTTP or unverified TLS
		opts.Registry.PlainHTTP, opts.Registry.Insecure = true, true
	}
	if epoch := os.Getenv("SOURCE_DATE_EPOCH"); epoch != "" {
		sec, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil {
			return opts, usageError{fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since the epoch", epoch)}
		}
		opts.ModTime = time.Unix(sec, 0)
	}
	return opts, nil
}

// buildSummary is the -o json form of a build's result.
type buildSummary struct {
	Bundle      string       `json:"bundle"`
	Images      []builtImage `json:"images"`
	Blobs       int          `json:"blobs"`
	Bytes       int64        `json:"bytes"`
	SharedBytes int64        `json:"sharedBytes"`
	Seconds     float64      `json:"seconds"`
	// BorrowedBlobs and BorrowedBytes, for a delta (--base), count the
	// blobs left to its base.
	BorrowedBlobs int   `json:"borrowedBlobs,omitempty"`
	BorrowedBytes int64 `json:"borrowedBytes,omitempty"`
	// Failed are the images --keep-going left out.
	Failed []buildFailure `json:"failed,omitempty"`
}

// buildFailure is an image list entry a build left out.
type buildFailure struct {
	Image string `json:"image"`
	File  string `json:"file,omitempty"`
	Line  int    `json:"line,omitempty"`
	Error string `json:"error"`
}

// builtImage is an image a build wrote.
type builtImage struct {
	Name   string        `json:"name"`
	Digest digest.Digest `json:"digest"`
}

func newBuildSummary(path string, res *build.Result) buildSummary {
	s := buildSummary{Bundle: path, Blobs: res.Blobs, Bytes: res.Bytes, SharedBytes: res.SharedBytes, Seconds: res.Duration.Seconds(),
		BorrowedBlobs: res.BorrowedBlobs, BorrowedBytes: res.BorrowedBytes}
	for _, img := range res.Names {
		s.Images = append(s.Images, builtImage{Name: img.Name, Digest: img.Descriptor.Digest})
	}
	for _, f := range res.Failed {
		s.Failed = append(s.Failed, buildFailure{Image: f.Image, File: f.File, Line: f.Line, Error: f.Err.Error()})
	}
	return s
}

// printBuild says what a build wrote, and what it left out.
func printBuild(w io.Writer, path string, res *build.Result) {
	for _, f := range res.Failed {
		fmt.Fprintf(w, "LEFT OUT %s\n", f)
	}
	fmt.Fprintf(w, "wrote %s: %d images, %d blobs, %s (%s saved by sharing) in %s\n",
		path, res.Images, res.Blobs, humanBytes(res.Bytes), humanBytes(res.SharedBytes), res.Duration.Round(time.Millisecond))
	if res.BorrowedBlobs > 0 {
		fmt.Fprintf(w, "delta: %d blobs, %s, left to the base\n", res.BorrowedBlobs, humanBytes(res.BorrowedBytes))
	}
}

// imageArgs are build's `--image SOURCE [--name NAME]` pairs, in the
// order given.
type imageArgs []imagelist.Arg

// sourceFlag is --image: each use adds an image.
type sourceFlag struct{ args *imageArgs }

func (v sourceFlag) Set(s string) error {
	src, err := manifests.ParseSource(strings.TrimSpace(s))
	if err != nil {
		return err
	}
	*v.args = append(*v.args, imagelist.Arg{Source: src})
	return nil
}
func (v sourceFlag) String() string { return "" }
func (v sourceFlag) Type() string   { return "SOURCE" }

// nameFlag is --name: it names the image of the --image before it.
type nameFlag struct{ args *imageArgs }

func (v nameFlag) Set(s string) error {
	args := *v.args
	if len(args) == 0 {
		return fmt.Errorf("give --name after the --image it names")
	}
	last := &args[len(args)-1]
	if last.Name != "" {
		return fmt.Errorf("--image %s is already named %s", last.Source, last.Name)
	}
	last.Name = s
	return nil
}
func (v nameFlag) String() string { return "" }
func (v nameFlag) Type() string   { return "NAME" }
