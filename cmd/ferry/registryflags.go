package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferry-oci/ferry/internal/remote"
)

// registryFlags are the flags that say how to reach a registry, shared by
// build (its sources), push and install (spelt with the prefix "push-").
type registryFlags struct {
	passwordStdin bool
	prefix        string
}

// bind binds the registry flags into opts.
func (f *registryFlags) bind(fl *pflag.FlagSet, prefix string, opts *remote.Options) {
	fl.BoolVar(&opts.PlainHTTP, prefix+"plain-http", false, "talk plain HTTP to the registry (to localhost too; never otherwise)")
	fl.BoolVar(&opts.Insecure, prefix+"insecure", false, "skip TLS certificate verification")
	fl.StringVar(&opts.CAFile, prefix+"ca-file", "", "PEM file of CA certificates to trust for the registry")
	fl.StringVar(&opts.Username, prefix+"username", "", "registry user name (with --"+prefix+"password-stdin)")
	fl.BoolVar(&f.passwordStdin, prefix+"password-stdin", false, "read the registry password from standard input")
	f.prefix = prefix
}

// complete checks the credential flags and reads the password.
func (f *registryFlags) complete(cmd *cobra.Command, opts *remote.Options) error {
	if (opts.Username != "") != f.passwordStdin {
		return usageError{fmt.Errorf("--%[1]susername and --%[1]spassword-stdin go together", f.prefix)}
	}
	if !f.passwordStdin {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 64<<10))
	if err != nil {
		return fmt.Errorf("read password from stdin: %w", err)
	}
	opts.Password = strings.TrimRight(string(b), "\r\n")
	if opts.Password == "" {
		return usageError{fmt.Errorf("--%spassword-stdin: standard input is empty", f.prefix)}
	}
	return nil
}
