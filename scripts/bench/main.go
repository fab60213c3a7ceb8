// Command bench measures ferry against skopeo, crane, ctr and
// docker-registry on the same generated corpus in the same run, alternating
// the tools run by run, and writes the medians to docs/benchmarks.md.
//
// scripts/bench.sh builds and runs it (`make bench`, BENCH_SIZE=small|large):
// it needs GNU time, skopeo, docker-registry, containerd and ctr from the
// Debian packages, crane (installed by bench.sh under .bench/bin) and root
// for containerd. Every server listens on 127.0.0.1 on a port chosen at run
// time; everything lives under -work and is stopped when the bench ends,
// Ctrl-C included.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/internal/benchcorpus"
)

// stepNames name the steps of run, in order, for -steps.
var stepNames = []string{"limits", "build", "serve", "pull", "cluster", "push", "import", "delta"}

// registryBinary is distribution 2.8 from Debian's docker-registry package.
const registryBinary = "/usr/bin/docker-registry"

type options struct {
	size  string
	runs  int
	work  string
	ferry string
	crane string
	out   string
	repro string
	jobs  int
	steps string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "fetch" {
		if err := fetchMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "fetch:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.StringVar(&o.size, "size", "small", "corpus size: "+strings.Join(benchcorpus.Sizes(), ", "))
	flag.IntVar(&o.runs, "runs", 3, "timed runs of every tool in every step (the median is reported)")
	flag.StringVar(&o.work, "work", "", "empty scratch directory for corpora, bundles and servers (required)")
	flag.StringVar(&o.ferry, "ferry", "bin/ferry", "the ferry binary")
	flag.StringVar(&o.crane, "crane", ".bench/bin/crane", "the crane binary")
	flag.StringVar(&o.out, "out", "docs/benchmarks.md", "report to write (the section of this size is replaced)")
	flag.StringVar(&o.repro, "command", "", "the command that reproduces the run, for the report")
	flag.IntVar(&o.jobs, "jobs", 8, "--jobs of ferry and concurrent pull clients")
	flag.StringVar(&o.steps, "steps", "", "run only these steps, comma-separated ("+strings.Join(stepNames, ",")+"); the report then has only their rows, so give -out another file")
	flag.Parse()
	if o.work == "" || flag.NArg() > 0 || o.runs < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if o.repro == "" {
		o.repro = "BENCH_SIZE=" + o.size + " make bench"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// bench is one benchmark run.
type bench struct {
	options
	logDir    string
	transport *http.Transport
	seq       atomic.Int64

	mu    sync.Mutex
	procs []*proc

	env        environment
	corpus     *benchcorpus.Corpus
	src        *server // the corpus registry
	ferryOK    map[string]bool
	bundle     string // the ferry bundle every later step uses
	bundleSize int64  // its size in bytes
	images     []image
	layout     string // the bundle extracted (skopeo's and crane's push source)
	served     string // docker-registry storage holding the bundle's images
	delta      *deltaSizes

	rows  []*row
	notes []string
}

// image is one image of the bundle.
type image struct {
	name string // full reference, as in the bundle
	path string // repository:tag without the registry host, as served and pushed
}

func run(ctx context.Context, o options) error {
	b := &bench{options: o, logDir: filepath.Join(o.work, "logs")}
	b.transport = http.DefaultTransport.(*http.Transport).Clone()
	b.transport.Proxy = nil // 127.0.0.1 only
	if err := os.MkdirAll(b.logDir, 0o755); err != nil {
		return err
	}
	defer b.stopAll()

	spec, err := benchcorpus.ForSize(o.size)
	if err != nil {
		return err
	}
	b.env = b.environment(ctx)
	if err := b.setup(ctx, spec); err != nil {
		return err
	}
	steps := []func(context.Context) error{b.machineLimits, b.stepBuild, b.stepServe, b.stepPull, b.stepServeCluster, b.stepPush, b.stepImport, b.stepDelta}
	for i, step := range steps {
		if o.steps != "" && !slices.Contains(strings.Split(o.steps, ","), stepNames[i]) {
			continue
		}
		if err := step(ctx); err != nil {
			return err
		}
	}
	b.env.loadEnd = loadAverage()
	b.env.finished = time.Now()
	if err := b.writeReport(); err != nil {
		return err
	}
	b.logf("wrote %s", b.out)
	return nil
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func (b *bench) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	b.logf("note: %s", msg)
	b.notes = append(b.notes, msg)
}

// stopAll stops every process still running.
func (b *bench) stopAll() {
	b.mu.Lock()
	procs := b.procs
	b.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop()
	}
}

// setup starts the corpus registry, fills it, builds the bundle every later
// step uses (untimed; it also warms the page cache) and prepares the
// peers' inputs.
func (b *bench) setup(ctx context.Context, spec benchcorpus.Spec) error {
	b.ferryOK = ferryCommands(ctx, b.ferry)
	if !b.ferryOK["build"] {
		return fmt.Errorf("%s has no build command: nothing to measure", b.ferry)
	}
	var err error
	if b.src, err = b.startRegistry(ctx, filepath.Join(b.work, "source-storage")); err != nil {
		return err
	}
	b.logf("generating the %s corpus into %s", b.size, b.src.host)
	corpusDir := filepath.Join(b.work, "corpus")
	if err := os.MkdirAll(corpusDir, 0o755); err != nil {
		return err
	}
	b.corpus, err = benchcorpus.Generate(ctx, spec, benchcorpus.Options{Dir: corpusDir, Registry: b.src.host, Logf: b.logf, Upgrade: true})
	if err != nil {
		return err
	}
	// The layer files are in the registry now.
	if err := os.RemoveAll(filepath.Join(corpusDir, "layers")); err != nil {
		return err
	}
	b.logf("corpus: %d images (%d references), %d blobs, %s", b.corpus.Images, len(b.corpus.Refs), b.corpus.Blobs, mb(b.corpus.Bytes))

	b.bundle = filepath.Join(b.work, "bundle.tar")
	if err := b.exec(ctx, b.ferry, b.ferryBuildArgs(b.bundle)...); err != nil {
		return fmt.Errorf("ferry build (setup): %w", err)
	}
	st, err := os.Stat(b.bundle)
	if err != nil {
		return err
	}
	b.bundleSize = st.Size()
	r, err := bundle.Open(ctx, b.bundle)
	if err != nil {
		return err
	}
	defer r.Close()
	for _, img := range r.Images() {
		ref, err := name.ParseReference(img.Name, name.Insecure)
		if err != nil {
			return fmt.Errorf("bundle image %q: %w", img.Name, err)
		}
		b.images = append(b.images, image{name: img.Name, path: ref.Context().RepositoryStr() + ":" + ref.Identifier()})
	}
	b.logf("bundle: %d images, %s", len(b.images), mb(b.bundleSize))

	b.layout = filepath.Join(b.work, "layout")
	if err := os.MkdirAll(b.layout, 0o755); err != nil {
		return err
	}
	return b.exec(ctx, "tar", "-xf", b.bundle, "-C", b.layout)
}

func (b *bench) ferryBuildArgs(out string) []string {
	return []string{"build", "-f", b.corpus.ImageList, "-b", out, "--plain-http", "--jobs", fmt.Sprint(b.jobs)}
}

// ferryCommands lists the subcommands `ferry --help` offers: the
// installer commands land while the bench is written, and a step whose
// command is missing prints "not available" instead of failing.
func ferryCommands(ctx context.Context, ferry string) map[string]bool {
	out, err := execOutput(ctx, ferry, "--help")
	cmds := map[string]bool{}
	if err != nil {
		return cmds
	}
	in := false
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "Available Commands:"):
			in = true
		case in && strings.TrimSpace(line) == "":
			in = false
		case in:
			if f := strings.Fields(line); len(f) > 0 {
				cmds[f[0]] = true
			}
		}
	}
	return cmds
}

// mb formats bytes as MB (10^6), the unit of every throughput here.
func mb(n int64) string {
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}
