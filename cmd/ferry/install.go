package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-oci/ferry/bundle/signature"
	"github.com/ferry-oci/ferry/installer"
	"github.com/ferry-oci/ferry/installer/containerd"
)

func init() { commands = append(commands, newInstallCommand) }

// installFlags are ferry install's own flags; the steps' flags are bound by
// the commands that run each step alone.
type installFlags struct {
	verify     string
	verifyKey  string
	serve      string
	serveFlags serveFlags
	mirrors    []string
	configDir  string
	doImport   bool
	importOpts containerd.ImportOptions
	pushOpts   installer.PushOptions
	pushFlags  pushFlags
	serveFor   time.Duration
	noServe    bool
	jobs       int
}

func newInstallCommand(g *globalOptions) *cobra.Command {
	var f installFlags
	cmd := &cobra.Command{
		Use:   "install BUNDLE...",
		Short: "The whole air-gapped flow in one command: verify, serve, mirror-config, import, push",
		Long: `Install runs, in order: verify the bundle (--verify fast checks sizes and the
index graph, full hashes every blob; --verify-key FILE also checks that every
image carries a cosign signature by that public key, and stops on failure); serve it as a registry (--serve ADDR, with
ferry serve's TLS and auth flags) and write, for every --mirror host, a containerd
hosts.toml under --containerd-config-dir sending that registry's pulls to it;
import the node's images into containerd (--import, with ferry import's flags);
push every image to a long-lived registry (--push-to, with ferry push's flags
spelled --push-*). It then keeps serving for --serve-for, or until SIGINT or
SIGTERM, or stops at once with --no-serve. A failed step is reported and the
others still run; the exit code is then 1.

Several bundles are installed as one, as ferry serve serves them: a delta
bundle after its bases (install release-1.0.tar upgrade-1.1.tar).`,
		Example: `  ferry install release.tar \
    --serve 0.0.0.0:5000 --tls-self-signed --hostname 10.0.0.5 --ca-out /etc/ferry/ca.crt \
    --mirror docker.io --mirror quay.io --mirror registry.example.com \
    --containerd-config-dir /etc/containerd/certs.d \
    --import \
    --push-to harbor.local/tke --push-ca-file harbor-ca.crt`,
		Args: minimumArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInstall(cmd, g, &f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.verify, "verify", "fast", "bundle check before anything else: fast (sizes and index graph) or full (hash every blob)")
	fl.StringVar(&f.verifyKey, "verify-key", "", "PEM public key: before anything else, check that every image carries a cosign signature by it (as verify --key)")
	fl.StringVar(&f.serve, "serve", "", "serve the bundle on this address while installing, e.g. 0.0.0.0:5000")
	f.serveFlags.bind(fl)
	fl.Lookup("ready-file").Usage = "write the registry URL to this file once the steps are done and it serves on (removed on exit)"
	fl.StringArrayVar(&f.mirrors, "mirror", nil, "registry host whose pulls go to the served bundle (repeatable): docker.io, quay.io, ...")
	fl.StringVar(&f.configDir, "containerd-config-dir", "/etc/containerd/certs.d", "containerd's config_path, where the hosts.toml files go")
	fl.BoolVar(&f.doImport, "import", false, "import the node's images into containerd")
	bindImportFlags(fl, &f.importOpts)
	f.pushFlags.bind(fl, "push-", &f.pushOpts)
	fl.DurationVar(&f.serveFor, "serve-for", 0, "keep serving this long after the steps (default: until interrupted)")
	fl.BoolVar(&f.noServe, "no-serve", false, "stop serving as soon as the steps are done")
	fl.IntVar(&f.jobs, "jobs", 0, "blobs in flight at once, per step (0: 8)")
	return cmd
}

func runInstall(cmd *cobra.Command, g *globalOptions, f *installFlags, paths []string) error {
	f.serveFlags.clearReady()
	opts, err := f.options(cmd, g)
	if err != nil {
		return err
	}
	r, err := openBundles(cmd, g, paths)
	if err != nil {
		return err
	}
	defer r.Close()
	if f.serve != "" {
		quietDistribution(g, cmd)
		ln, err := net.Listen("tcp", f.serve)
		if err != nil {
			return fmt.Errorf("--serve %s: %w", f.serve, err)
		}
		if opts.Serve, err = f.serveFlags.options(g, ln.Addr()); err != nil {
			ln.Close()
			return err
		}
		opts.Listener = ln
		opts.Ready = f.serveFlags.ready
		if f.serveFlags.selfSigned {
			if opts.Mirror.CA, err = os.ReadFile(f.serveFlags.caFile()); err != nil {
				ln.Close()
				return err
			}
		}
		if f.serveFlags.readyFile != "" {
			defer os.Remove(f.serveFlags.readyFile)
		}
	}
	opts.StepDone = func(s installer.StepResult) {
		if s.Error != "" {
			g.log.Errorf("%s failed: %s", s.Name, s.Error)
			return
		}
		if s.Duration == 0 {
			g.log.Infof("%s: %s", s.Name, s.Summary)
			return
		}
		g.log.Infof("%s: %s (%s)", s.Name, s.Summary, s.Duration.Round(time.Millisecond))
	}
	prog := newProgress(g, cmd.ErrOrStderr(), "installing")
	if opts.Ready != nil {
		// The steps are done: end the bars before serving on.
		ready := opts.Ready
		opts.Ready = func(url string) error {
			prog.Wait()
			return ready(url)
		}
	}
	if opts.Import != nil {
		opts.Import.Observer = prog
	}
	if opts.Push != nil {
		opts.Push.Observer = prog
	}
	res, err := installer.Install(cmd.Context(), r, opts)
	prog.Wait()
	if res == nil {
		return err
	}
	var failed []string
	for _, s := range res.Failed() {
		failed = append(failed, s.Name)
	}
	if len(failed) > 0 { // StepDone logged each failure as it happened
		err = shown(err, "install: %s failed", strings.Join(failed, ", "))
	}
	return report(cmd, g, res, func(w io.Writer) { printInstall(w, res) }, err)
}

// options checks the flags and builds the install's options; the serve
// options wait for the listener.
func (f *installFlags) options(cmd *cobra.Command, g *globalOptions) (installer.InstallOptions, error) {
	var opts installer.InstallOptions
	switch f.verify {
	case "fast":
	case "full":
		opts.VerifyFull = true
	default:
		return opts, usageError{fmt.Errorf("--verify must be fast or full, not %q", f.verify)}
	}
	if f.verifyKey != "" {
		key, err := signature.LoadKeyFile(f.verifyKey)
		if err != nil {
			return opts, err
		}
		opts.VerifyKey = key
	}
	if f.serve == "" {
		if len(f.mirrors) > 0 {
			return opts, usageError{fmt.Errorf("--mirror needs --serve: the mirrors point at the served bundle")}
		}
	} else if err := f.serveFlags.check(); err != nil {
		return opts, err
	}
	opts.Mirror.Mirrors = f.mirrors
	opts.Mirror.Dir = f.configDir
	if f.doImport {
		f.importOpts.Jobs = f.jobs
		opts.Import = &f.importOpts
	}
	if f.pushOpts.To != "" || f.pushFlags.passwordStdin {
		f.pushOpts.Jobs = f.jobs
		if err := f.pushFlags.complete(cmd, &f.pushOpts); err != nil {
			return opts, err
		}
		opts.Push = &f.pushOpts
	}
	if opts.Import == nil && opts.Push == nil && f.serve == "" {
		return opts, usageError{fmt.Errorf("nothing to do: give --serve, --import and/or --push-to")}
	}
	opts.ServeFor, opts.NoServe = f.serveFor, f.noServe
	return opts, nil
}

// printInstall prints one line per step; a failed step's error is in the
// log line of its end.
func printInstall(w io.Writer, res *installer.InstallResult) {
	for _, s := range res.Steps {
		status := "ok"
		if s.Error != "" {
			status = "FAILED"
		}
		fmt.Fprintf(w, "%-14s %-8s %s %s\n", s.Name, s.Duration.Round(time.Millisecond), status, s.Summary)
	}
}
