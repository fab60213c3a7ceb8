// Command ferry carries container images across an air gap: it packs many
// multi-arch images into one OCI layout tarball, serves it as a registry,
// pushes it into any registry and imports it into containerd.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
)

func main() {
	stopProfile := startCPUProfile(os.Getenv("FERRY_CPUPROFILE"))
	ctx, stop := notifyInterrupt(context.Background(), os.Stderr, func(code int) {
		stopProfile()
		os.Exit(code)
	})
	code := execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	stopProfile()
	os.Exit(code)
}

// startCPUProfile writes a CPU profile of the whole run to path (the
// FERRY_CPUPROFILE environment variable, for `go tool pprof`; see
// docs/benchmarks.md) until the returned function is called.
func startCPUProfile(path string) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferry: FERRY_CPUPROFILE:", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
