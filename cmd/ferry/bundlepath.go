package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-oci/ferry/bundle"
)

// bundleFlagAnnotation marks a command that writes a bundle: its value is
// the name of the flag that takes the bundle's path.
const bundleFlagAnnotation = "ferry/bundle-flag"

// bindBundlePath binds -b/--bundle, the path of the bundle a command
// writes. -o/--output is the output format everywhere; `-o FILE.tar`, the
// old spelling, still works with a warning (see legacyBundleOutput).
func bindBundlePath(cmd *cobra.Command, path *string, usage string) {
	cmd.Flags().StringVarP(path, "bundle", "b", "", usage+" (.tar, or .tar.zst for zstd)")
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[bundleFlagAnnotation] = "bundle"
}

// checkOutput checks -o/--output: text or json, or, for a command that
// writes a bundle and has no --bundle, a bundle path given the old way.
func checkOutput(cmd *cobra.Command, g *globalOptions) error {
	if g.output == "text" || g.output == "json" {
		return nil
	}
	flag, writes := cmd.Annotations[bundleFlagAnnotation]
	if !writes {
		return usageError{fmt.Errorf("-o/--output must be text or json, not %q", g.output)}
	}
	if cmd.Flags().Changed(flag) || !strings.Contains(g.output, ".") {
		return usageError{fmt.Errorf("-o/--output is the output format, text or json, not %q; the bundle path is -b/--%s", g.output, flag)}
	}
	if err := bundle.CheckPath(g.output); err != nil {
		return usageError{err}
	}
	g.log.Warnf("-o %s: -o/--output is the output format now (text or json); give the bundle path with -b/--%s", g.output, flag)
	if err := cmd.Flags().Set(flag, g.output); err != nil {
		return err
	}
	g.output = "text"
	return nil
}
