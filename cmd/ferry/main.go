// Command ferry carries container images across an air gap: it packs many
// multi-arch images into one OCI layout tarball, serves it as a registry,
// pushes it into any registry and imports it into containerd.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
