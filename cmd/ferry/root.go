package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/ferry-oci/ferry/manifests"
)

// Exit codes: 0 ok, 1 failure, 2 usage.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError marks errors in how ferry was called; it is a
// manifests.ErrInvalidArgument, like the library's own usage errors.
type usageError struct{ error }

// shownError is a command's error whose details the command has already
// printed (a verify's problems, an install's failed steps): execute
// prints only its summary, so each problem is printed once.
type shownError struct {
	summary string
	err     error
}

func (e shownError) Error() string { return e.err.Error() }
func (e shownError) Unwrap() error { return e.err }

// shown wraps err, when not nil, as already shown, with a summary.
func shown(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return shownError{summary: fmt.Sprintf(format, args...), err: err}
}

// Is makes a usageError match manifests.ErrInvalidArgument.
func (usageError) Is(target error) bool { return target == manifests.ErrInvalidArgument }

// exitCode maps an error to ferry's exit code, the one place that does: a
// usage error (a bad flag, or an option a package refused with
// manifests.ErrInvalidArgument) is 2, any other failure 1.
func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, manifests.ErrInvalidArgument):
		return exitUsage
	}
	return exitFailure
}

// globalOptions are the flags every command has.
type globalOptions struct {
	logLevel string
	output   string
	tmpDir   string
	log      *logrus.Logger
	// parsed is set once the command line is parsed and checked: an
	// error before that is a usage error.
	parsed bool
}

// newRootCommand builds the command tree, writing data to out and logs to errOut.
func newRootCommand(out, errOut io.Writer) (*cobra.Command, *globalOptions) {
	g := &globalOptions{log: logrus.New()}
	g.log.SetOutput(errOut)
	root := &cobra.Command{
		Use:           "ferry",
		Short:         "Carry container images across an air gap, OCI-native, no docker",
		Version:       readVersion().String(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			lvl, err := logrus.ParseLevel(g.logLevel)
			if err != nil {
				return usageError{fmt.Errorf("--log-level: %w", err)}
			}
			g.log.SetLevel(lvl)
			if err := checkOutput(cmd, g); err != nil {
				return err
			}
			warnRenamed(cmd, g)
			g.parsed = true
			return nil
		},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "text", "output format for data: text or json")
	root.PersistentFlags().StringVar(&g.tmpDir, "tmp-dir", "", "where a .tar.zst or piped bundle is copied to be read; it needs room for the whole tar (default $TMPDIR)")
	for _, add := range commands {
		root.AddCommand(add(g))
	}
	return root, g
}

// commands lists the constructors of ferry's subcommands; each command's
// file adds itself in init.
var commands []func(*globalOptions) *cobra.Command

// execute runs ferry with args and returns the exit code. A failure is
// printed as one plain "Error: ..." line (logs are for what happens on the
// way); a usage error adds where to find the usage and exits 2; a command
// stopped by SIGINT or SIGTERM exits 128+signal.
func execute(ctx context.Context, args []string, out, errOut io.Writer) int {
	root, g := newRootCommand(out, errOut)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	msg := err.Error()
	var se shownError
	if errors.As(err, &se) {
		msg = se.summary
	}
	fmt.Fprintf(errOut, "Error: %s\n", strings.TrimRight(msg, "\n"))
	var intr interrupted
	if errors.As(context.Cause(ctx), &intr) {
		return intr.exitCode()
	}
	code := exitCode(err)
	if !g.parsed {
		code = exitUsage
	}
	if code == exitUsage {
		fmt.Fprintf(errOut, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// printJSON writes v as indented JSON to the command's output.
func printJSON(cmd *cobra.Command, v any) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// report prints a command's result, as JSON with -o json or as text, and
// then returns the command's own error, so a partial failure still shows
// what worked.
func report(cmd *cobra.Command, g *globalOptions, result any, text func(io.Writer), err error) error {
	if g.output == "json" {
		if perr := printJSON(cmd, result); perr != nil {
			return perr
		}
		return err
	}
	text(cmd.OutOrStdout())
	return err
}

// exactArgs is cobra.ExactArgs returning a usage error.
func exactArgs(n int) cobra.PositionalArgs { return usageArgs(cobra.ExactArgs(n)) }

// minimumArgs is cobra.MinimumNArgs returning a usage error.
func minimumArgs(n int) cobra.PositionalArgs { return usageArgs(cobra.MinimumNArgs(n)) }

func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}
