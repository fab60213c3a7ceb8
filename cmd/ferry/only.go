package main

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// renamedAnnotation marks a hidden flag kept under its old name: its
// value is the flag's new name (see warnRenamed).
const renamedAnnotation = "ferry/renamed-to"

// bindOnly binds --only, the image filter of the commands that read a
// bundle (push, import, verify): manifests.SelectImages' one glob rule.
// build's --image names a source, so the filter's old spelling --image
// is kept here only as a hidden alias that warns.
func bindOnly(fl *pflag.FlagSet, patterns *[]string, usage string) {
	fl.StringArrayVar(patterns, "only", nil, usage+" (repeatable; README: Selecting images)")
	fl.StringArrayVar(patterns, "image", nil, "the old name of --only")
	fl.MarkHidden("image")                                         //nolint:errcheck // defined above
	fl.SetAnnotation("image", renamedAnnotation, []string{"only"}) //nolint:errcheck // defined above
}

// warnRenamed logs a warning, not data on stdout, for each flag given by
// its old name.
func warnRenamed(cmd *cobra.Command, g *globalOptions) {
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if to := f.Annotations[renamedAnnotation]; len(to) == 1 {
			g.log.Warnf("--%s is deprecated here: use --%s (--image names an image source in ferry build)", f.Name, to[0])
		}
	})
}
