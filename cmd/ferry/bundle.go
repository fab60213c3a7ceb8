package main

import (
	"github.com/spf13/cobra"

	"github.com/ferry-oci/ferry/bundle"
)

// openBundle opens the bundle a command reads; a compressed or piped one
// is copied into --tmp-dir first.
func openBundle(cmd *cobra.Command, g *globalOptions, path string) (*bundle.Reader, error) {
	return bundle.Open(cmd.Context(), path, bundle.WithTempDir(g.tmpDir))
}

// openBundles opens bundles as one (bundle.OpenAll): a delta after its
// bases.
func openBundles(cmd *cobra.Command, g *globalOptions, paths []string) (*bundle.Reader, error) {
	return bundle.OpenAll(cmd.Context(), paths, bundle.WithTempDir(g.tmpDir))
}
