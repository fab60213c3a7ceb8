package installer

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ferry-oci/ferry/internal/atomicfile"
	"github.com/ferry-oci/ferry/manifests"
)

// Mirror configuration formats: the node kinds' own files.
const (
	// FormatHostsTOML is containerd's hosts.toml, one per mirrored host
	// under the CRI registry config_path (containerd 1.5 and later, 2.x,
	// and k3s/RKE2's own certs.d).
	FormatHostsTOML = "hosts.toml"
	// FormatRegistriesConf is a containers-registries.conf drop-in for
	// registries.conf.d/, with the CA under certs.d/HOST/ (CRI-O, podman,
	// skopeo, buildah).
	FormatRegistriesConf = "registries.conf"
	// FormatK3s is k3s's and RKE2's registries.yaml.
	FormatK3s = "k3s"
)

// MirrorFormats are the formats MirrorConfig writes, with the directory
// each belongs in on a node (MirrorOptions.Dir).
var MirrorFormats = map[string]string{
	FormatHostsTOML:      "/etc/containerd/certs.d",
	FormatRegistriesConf: "/etc/containers",
	FormatK3s:            "/etc/rancher/k3s",
}

// MirrorOptions say which registries' pulls a node should send to a mirror
// (a ferry serve, or any registry), in the configuration format of the
// node's container engine.
type MirrorOptions struct {
	// Server is the mirror's URL, e.g. https://10.0.0.5:5000.
	Server string
	// Mirrors are the registry hosts to redirect: docker.io, quay.io, ...
	Mirrors []string
	// Format is one of FormatHostsTOML (the default when ""),
	// FormatRegistriesConf and FormatK3s.
	Format string
	// Dir is where the files go (see MirrorFormats): containerd's
	// config_path, where each host gets Dir/HOST/hosts.toml; the
	// containers config directory, which gets
	// Dir/registries.conf.d/ferry-mirrors.conf and Dir/certs.d/SERVER/ca.crt;
	// or k3s's config directory, which gets Dir/registries.yaml.
	Dir string
	// CA, when set, is the mirror's CA certificate (PEM), written beside
	// the configuration and trusted for the mirror.
	CA []byte
}

// MirrorFile is one file of a mirror configuration.
type MirrorFile struct {
	Path    string
	Content []byte
	// Config is set on the configuration files, unset on CA certificates.
	Config bool
}

// ferryHeader starts every configuration file ferry writes; a file that
// ferry must not overwrite unasked is recognized by its absence.
const ferryHeader = "# Written by ferry"

// upstreams are the real endpoints of registries whose name is not their host.
var upstreams = map[string]string{"docker.io": "https://registry-1.docker.io"}

// MirrorConfig renders the files that send pulls for every mirrored host
// to the server, falling back to the real registry when the mirror lacks
// an image.
func MirrorConfig(opts MirrorOptions) ([]MirrorFile, error) {
	u, err := url.Parse(opts.Server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("mirror server %q: want http(s)://HOST[:PORT]: %w", opts.Server, manifests.ErrInvalidArgument)
	}
	if len(opts.Mirrors) == 0 {
		return nil, fmt.Errorf("mirror config: no --mirror hosts: %w", manifests.ErrInvalidArgument)
	}
	for _, host := range opts.Mirrors {
		if host == "" || strings.ContainsAny(host, "/\\ \"'") || host == "." || host == ".." {
			return nil, fmt.Errorf("mirror host %q: want a registry host such as docker.io or quay.io:443: %w", host, manifests.ErrInvalidArgument)
		}
	}
	// The files name each other (ca = ..., ca_file: ...) by absolute path.
	if opts.Dir != "" {
		if opts.Dir, err = filepath.Abs(opts.Dir); err != nil {
			return nil, fmt.Errorf("mirror config: %w", err)
		}
	}
	switch opts.Format {
	case "", FormatHostsTOML:
		return hostsTOML(opts), nil
	case FormatRegistriesConf:
		return registriesConf(opts, u)
	case FormatK3s:
		return k3sRegistries(opts, u)
	}
	return nil, fmt.Errorf("mirror config format %q: want %s, %s or %s: %w", opts.Format, FormatHostsTOML, FormatRegistriesConf, FormatK3s, manifests.ErrInvalidArgument)
}

// hostsTOML renders containerd's hosts.toml (and CA) files.
func hostsTOML(opts MirrorOptions) []MirrorFile {
	var files []MirrorFile
	for _, host := range opts.Mirrors {
		dir := filepath.Join(opts.Dir, host)
		upstream := upstreams[host]
		if upstream == "" {
			upstream = "https://" + host
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s: pulls for %s go to %s first.\n", ferryHeader, host, opts.Server)
		fmt.Fprintf(&b, "server = %s\n\n", strconv.Quote(upstream))
		fmt.Fprintf(&b, "[host.%s]\n", strconv.Quote(strings.TrimSuffix(opts.Server, "/")))
		b.WriteString("  capabilities = [\"pull\", \"resolve\"]\n")
		if opts.CA != nil {
			caPath := filepath.Join(dir, "ferry-ca.crt")
			fmt.Fprintf(&b, "  ca = %s\n", strconv.Quote(caPath))
			files = append(files, MirrorFile{Path: caPath, Content: opts.CA})
		}
		files = append(files, MirrorFile{Path: filepath.Join(dir, "hosts.toml"), Content: []byte(b.String()), Config: true})
	}
	return files
}

// WriteMirrorConfig writes the files of MirrorConfig, each atomically. It
// refuses to replace a configuration file that ferry did not write (k3s's
// registries.yaml may hold the node's other registries), naming it.
func WriteMirrorConfig(opts MirrorOptions) ([]MirrorFile, error) {
	if opts.Dir == "" {
		return nil, fmt.Errorf("mirror config: no directory (containerd's config_path, e.g. /etc/containerd/certs.d): %w", manifests.ErrInvalidArgument)
	}
	files, err := MirrorConfig(opts)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if err := checkOwned(f); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		if err := atomicfile.Write(f.Path, f.Content, 0o644); err != nil {
			return nil, fmt.Errorf("mirror config: %w", err)
		}
	}
	return files, nil
}

// checkOwned fails when f is a configuration file that exists and was not
// written by ferry.
func checkOwned(f MirrorFile) error {
	if !f.Config {
		return nil
	}
	old, err := os.ReadFile(f.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("mirror config: %w", err)
	case !bytes.HasPrefix(old, []byte(ferryHeader)):
		return fmt.Errorf("mirror config: %s exists and was not written by ferry; add the printed settings to it by hand (run without --dir to print them), or move it away: %w", f.Path, fs.ErrExist)
	}
	return nil
}
