package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferry-oci/ferry/internal/atomicfile"
	"github.com/ferry-oci/ferry/registry"
)

func init() { commands = append(commands, newServeCommand) }

// selfSignedValidity is how long a --tls-self-signed server certificate
// (and a temporary CA) lasts; a CA kept in --ca-dir lasts caValidity.
const (
	selfSignedValidity = 365 * 24 * time.Hour
	caValidity         = 10 * selfSignedValidity
)

// defaultShutdownTimeout is how long an interrupted serve waits for
// requests in flight: short, so Ctrl-C stops ferry within 2 seconds.
const defaultShutdownTimeout = time.Second

type serveFlags struct {
	listen     string
	plainHTTP  bool
	selfSigned bool
	hostnames  []string
	caOut      string
	caDir      string
	tlsCert    string
	tlsKey     string
	htpasswd   string
	readOnly   bool
	writable   bool
	dataDir    string
	maxUpload  int64
	verify     string
	prefix     string
	readyFile  string
	shutdown   time.Duration
}

func newServeCommand(g *globalOptions) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve BUNDLE...",
		Short: "Serve a bundle as a registry, straight from the tarball",
		Long: `Serve runs an embedded registry (distribution) that serves every image of the
bundle without unpacking it, until SIGINT or SIGTERM; requests in flight then
get --shutdown-timeout to finish. Each image is served without and with its registry host
(library/nginx:1.25 and docker.io/library/nginx:1.25); containerd's ?ns= mirror
parameter selects the host-qualified one.

The registry is read-only unless --writable or --data-dir is given: pushes
are then kept in --data-dir (a temporary directory with --writable alone) and
read before the bundle, each upload is capped by --max-upload and stops short
of the last GiB of free space, and unfinished uploads are removed after an
hour. A writable registry on an address other than loopback needs --htpasswd.

Several bundles are served as one registry: a later bundle's image wins over
an earlier one of the same name, and a blob in several is served once. A
delta bundle (ferry build --base) is served after its bases:
ferry serve release-1.0.tar upgrade-1.1.tar.

Choose the transport explicitly: --plain-http, --tls-self-signed (a CA and a
certificate for every --hostname; the CA goes to --ca-out for clients to
trust, and is kept in --ca-dir across restarts) or --tls-cert and --tls-key. The default --listen is 127.0.0.1:5000;
give 0.0.0.0:5000 to serve other machines.`,
		Example: `  ferry serve release.tar --listen 0.0.0.0:5000 --tls-self-signed --hostname 10.0.0.5 --ca-out ca.crt
  ferry serve release.tar --listen 127.0.0.1:5000 --plain-http
  ferry serve release.tar --listen :5443 --tls-cert srv.crt --tls-key srv.key \
    --htpasswd users.htpasswd --data-dir /var/lib/ferry/pushed`,
		Args: minimumArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runServe(cmd, g, &f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:5000", "address to listen on (port 0 picks a free port)")
	f.bind(fl)
	fl.BoolVar(&f.writable, "writable", false, "accept pushes (into --data-dir, or a temporary directory removed on exit)")
	fl.StringVar(&f.dataDir, "data-dir", "", "accept pushes and keep them here (implies --writable)")
	fl.Int64Var(&f.maxUpload, "max-upload", registry.DefaultMaxUpload, "largest upload a writable registry accepts, in bytes")
	fl.StringVar(&f.prefix, "prefix", "", "serve every repository under PREFIX/")
	fl.StringVar(&f.verify, "verify", "first-read", "when blobs are checked against their digests: first-read (each before its first byte is sent) or full (all at start); once either way")
	return cmd
}

// bind binds the flags ferry serve and ferry install share.
func (f *serveFlags) bind(fl *pflag.FlagSet) {
	fl.BoolVar(&f.plainHTTP, "plain-http", false, "serve plain HTTP, without TLS")
	fl.BoolVar(&f.selfSigned, "tls-self-signed", false, "serve HTTPS with a certificate for every --hostname from a CA of ferry's (new at each start, or kept in --ca-dir)")
	fl.StringArrayVar(&f.hostnames, "hostname", nil, "name or IP clients reach the server by: in the self-signed certificate and the printed URL (repeatable)")
	fl.StringVar(&f.caOut, "ca-out", "", "write the self-signed CA certificate (PEM) to this file")
	fl.StringVar(&f.caDir, "ca-dir", "", "keep the self-signed CA in DIR (ca.crt, ca.key): reused when there, made when not, so clients keep trusting it across restarts")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM)")
	fl.StringVar(&f.tlsKey, "tls-key", "", "key (PEM) of --tls-cert")
	fl.StringVar(&f.htpasswd, "htpasswd", "", "require HTTP basic authentication against this htpasswd file (bcrypt)")
	fl.BoolVar(&f.readOnly, "read-only", false, "refuse pushes and deletes (the default)")
	fl.StringVar(&f.readyFile, "ready-file", "", "write the registry URL to this file once listening (removed on exit)")
	fl.DurationVar(&f.shutdown, "shutdown-timeout", defaultShutdownTimeout, "on SIGINT or SIGTERM, wait this long for requests in flight (a second signal exits at once)")
}

func runServe(cmd *cobra.Command, g *globalOptions, f *serveFlags, paths []string) error {
	if err := f.check(); err != nil {
		return err
	}
	f.clearReady()
	quietDistribution(g, cmd)
	if f.htpasswd != "" && f.plainHTTP {
		g.log.Warn("--htpasswd with --plain-http: passwords cross the network in clear text")
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", f.listen, err)
	}
	defer ln.Close()
	opts, err := f.options(g, ln.Addr())
	if err != nil {
		return err
	}
	if err := opts.CheckAddress(ln.Addr()); err != nil {
		return usageError{fmt.Errorf("%w (give --htpasswd, or listen on 127.0.0.1)", err)}
	}
	r, err := openBundles(cmd, g, paths)
	if err != nil {
		return err
	}
	defer r.Close()
	srv, err := registry.New(cmd.Context(), r, opts)
	if err != nil {
		return err
	}
	defer srv.Close()
	url := srv.URL(ln.Addr())
	if g.output == "json" {
		err = printJSON(cmd, map[string]any{"url": url, "images": srv.Images(), "repositories": srv.Repositories()})
	} else {
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "serving %d images on %s\n", srv.Images(), url)
	}
	if err != nil {
		return err
	}
	if err := f.ready(url); err != nil {
		return err
	}
	if f.readyFile != "" {
		defer os.Remove(f.readyFile)
	}
	return srv.Serve(cmd.Context(), ln)
}

// check refuses flag combinations that cannot work.
func (f *serveFlags) check() error {
	modes := 0
	for _, on := range []bool{f.plainHTTP, f.selfSigned, f.tlsCert != "" || f.tlsKey != ""} {
		if on {
			modes++
		}
	}
	switch {
	case modes != 1:
		return usageError{fmt.Errorf("choose one of --plain-http, --tls-self-signed, or --tls-cert with --tls-key")}
	case (f.tlsCert == "") != (f.tlsKey == ""):
		return usageError{fmt.Errorf("--tls-cert and --tls-key go together")}
	case f.selfSigned && f.caOut == "" && f.caDir == "":
		return usageError{fmt.Errorf("--tls-self-signed needs --ca-out FILE or --ca-dir DIR: clients must trust that CA")}
	case !f.selfSigned && (f.caOut != "" || f.caDir != ""):
		return usageError{fmt.Errorf("--ca-out and --ca-dir go with --tls-self-signed")}
	case f.readOnly && (f.dataDir != "" || f.writable):
		return usageError{fmt.Errorf("--writable and --data-dir accept pushes; --read-only refuses them")}
	case f.maxUpload < 1 && (f.writable || f.dataDir != ""):
		return usageError{fmt.Errorf("--max-upload must be at least 1 byte")}
	case f.verify != "" && f.verify != "first-read" && f.verify != "full":
		return usageError{fmt.Errorf("--verify is first-read or full, not %q", f.verify)}
	}
	return nil
}

// options are the registry options the flags say, for a server listening
// on addr.
func (f *serveFlags) options(g *globalOptions, addr net.Addr) (registry.Options, error) {
	tlsConfig, err := f.tlsConfig(g.log, addr)
	if err != nil {
		return registry.Options{}, err
	}
	opts := registry.Options{
		Writable:  f.writable || f.dataDir != "",
		DataDir:   f.dataDir,
		MaxUpload: f.maxUpload,
		VerifyAll: f.verify == "full",
		Prefix:    f.prefix,
		Htpasswd:  f.htpasswd,
		TLS:       tlsConfig,
		Log:       g.log,

		ShutdownTimeout: f.shutdown,
	}
	if len(f.hostnames) > 0 {
		opts.Hostname = f.hostnames[0]
	}
	return opts, nil
}

// clearReady removes the --ready-file a killed run left, so nobody takes
// it for this server before it serves.
func (f *serveFlags) clearReady() {
	if f.readyFile != "" {
		os.Remove(f.readyFile)
	}
}

// ready writes the registry's URL to --ready-file, if given.
func (f *serveFlags) ready(url string) error {
	if f.readyFile == "" {
		return nil
	}
	if err := atomicfile.Write(f.readyFile, []byte(url+"\n"), 0o644); err != nil {
		return fmt.Errorf("--ready-file: %w", err)
	}
	return nil
}

// tlsConfig loads or makes the server's certificate; a self-signed CA is
// written to --ca-out.
func (f *serveFlags) tlsConfig(log *logrus.Logger, addr net.Addr) (*tls.Config, error) {
	switch {
	case f.plainHTTP:
		return nil, nil
	case !f.selfSigned:
		return registry.LoadTLS(f.tlsCert, f.tlsKey)
	}
	ca, err := f.selfSignedCA(log)
	if err != nil {
		return nil, err
	}
	cfg, err := ca.ServerTLS(selfSignedHosts(f.hostnames, addr), selfSignedValidity)
	if err != nil {
		return nil, err
	}
	if f.caOut != "" {
		if err := atomicfile.Write(f.caOut, ca.CertPEM(), 0o644); err != nil {
			return nil, fmt.Errorf("--ca-out: %w", err)
		}
	}
	return cfg, nil
}

// selfSignedCA is the CA kept in --ca-dir, or a temporary one.
func (f *serveFlags) selfSignedCA(log *logrus.Logger) (*registry.CA, error) {
	if f.caDir == "" {
		log.Infof("TLS: the CA is temporary, new at every start: clients must trust the new %s each time (--ca-dir DIR keeps one)", f.caOut)
		return registry.NewCA(selfSignedValidity)
	}
	ca, created, err := registry.LoadOrCreateCA(f.caDir, caValidity)
	if err != nil {
		return nil, fmt.Errorf("--ca-dir: %w", err)
	}
	verb := "reused"
	if created {
		verb = "created"
	}
	log.Infof("TLS: CA %s %s; server certificate issued for the current --hostname list", filepath.Join(f.caDir, registry.CACertFile), verb)
	return ca, nil
}

// caFile is the PEM file of the self-signed CA that clients must trust.
func (f *serveFlags) caFile() string {
	if f.caOut != "" {
		return f.caOut
	}
	return filepath.Join(f.caDir, registry.CACertFile)
}

// selfSignedHosts is what a self-signed certificate covers: the given
// hostnames and the loopback names, plus the listening address, or, on an
// unspecified address with no --hostname, this machine's name and addresses.
func selfSignedHosts(given []string, addr net.Addr) []string {
	hosts := append(append([]string(nil), given...), "localhost", "127.0.0.1", "::1")
	if tcp, ok := addr.(*net.TCPAddr); ok {
		switch {
		case !tcp.IP.IsUnspecified():
			hosts = append(hosts, tcp.IP.String())
		case len(given) == 0:
			if name, err := os.Hostname(); err == nil {
				hosts = append(hosts, name)
			}
			if addrs, err := net.InterfaceAddrs(); err == nil {
				for _, a := range addrs {
					if ipnet, ok := a.(*net.IPNet); ok {
						hosts = append(hosts, ipnet.IP.String())
					}
				}
			}
		}
	}
	seen := map[string]bool{}
	out := hosts[:0]
	for _, h := range hosts {
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
}

// quietDistribution tunes the logger distribution logs through (logrus's
// standard logger): ferry's access lines already record every request, so
// only server errors (5xx) pass, unless --log-level is debug.
func quietDistribution(g *globalOptions, cmd *cobra.Command) {
	std := logrus.StandardLogger()
	std.SetOutput(cmd.ErrOrStderr())
	if g.log.IsLevelEnabled(logrus.DebugLevel) {
		std.SetLevel(logrus.DebugLevel)
		return
	}
	std.SetLevel(logrus.ErrorLevel)
	std.SetFormatter(serverErrorsOnly{&logrus.TextFormatter{}})
}

// serverErrorsOnly drops distribution's "response completed with error"
// lines of client errors (unknown blob or manifest, 401, ...): they are
// the normal course of pulls and pushes.
type serverErrorsOnly struct{ logrus.Formatter }

// Format implements logrus.Formatter.
func (f serverErrorsOnly) Format(e *logrus.Entry) ([]byte, error) {
	if status, ok := e.Data["http.response.status"].(int); ok && status < 500 {
		return nil, nil
	}
	return f.Formatter.Format(e)
}
