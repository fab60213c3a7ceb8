// Command benchcorpus generates the deterministic benchmark corpus (see
// internal/benchcorpus) and pushes it into a plain-HTTP registry on
// 127.0.0.1, for running ferry and its peers by hand:
//
//	go run ./scripts/benchcorpus -size small -registry 127.0.0.1:5000 -dir /tmp/corpus
//
// It prints the corpus summary as JSON. scripts/bench.sh does all of this
// itself; this is the stand-alone form.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/ferry-oci/ferry/internal/benchcorpus"
)

func main() {
	size := flag.String("size", "small", "corpus size: "+strings.Join(benchcorpus.Sizes(), ", "))
	registry := flag.String("registry", "", "HOST:PORT of a plain-HTTP registry on 127.0.0.1 (required)")
	dir := flag.String("dir", "", "directory for the layers and the image lists (required)")
	jobs := flag.Int("jobs", 0, "layers generated and uploaded at once (0: number of CPUs)")
	flag.Parse()
	if *registry == "" || *dir == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := generate(ctx, *size, *registry, *dir, *jobs); err != nil {
		fmt.Fprintln(os.Stderr, "benchcorpus:", err)
		stop()
		os.Exit(1)
	}
}

func generate(ctx context.Context, size, registry, dir string, jobs int) error {
	spec, err := benchcorpus.ForSize(size)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "benchcorpus: "+format+"\n", args...) }
	c, err := benchcorpus.Generate(ctx, spec, benchcorpus.Options{Dir: dir, Registry: registry, Jobs: jobs, Logf: logf})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(c)
}
