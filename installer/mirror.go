package installer

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ferry-oci/ferry/internal/atomicfile"
)

// MirrorOptions say which registries' pulls containerd should send to a
// mirror (a ferry serve, or any registry), through the hosts.toml files of
// its config_path (usually /etc/containerd/certs.d).
type MirrorOptions struct {
	// Server is the mirror's URL, e.g. https://10.0.0.5:5000.
	Server string
	// Mirrors are the registry hosts to redirect: docker.io, quay.io, ...
	Mirrors []string
	// Dir is containerd's config_path; each host gets Dir/HOST/hosts.toml.
	Dir string
	// CA, when set, is the mirror's CA certificate (PEM), written beside
	// each hosts.toml and trusted for the mirror.
	CA []byte
}

// MirrorFile is one file of a mirror configuration.
type MirrorFile struct {
	Path    string
	Content []byte
}

// upstreams are the real endpoints of registries whose name is not their host.
var upstreams = map[string]string{"docker.io": "https://registry-1.docker.io"}

// MirrorConfig renders the hosts.toml (and CA) files that send pulls for
// every mirrored host to the server, falling back to the real registry
// when the mirror lacks an image.
func MirrorConfig(opts MirrorOptions) ([]MirrorFile, error) {
	u, err := url.Parse(opts.Server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("mirror server %q: want http(s)://HOST[:PORT]", opts.Server)
	}
	if len(opts.Mirrors) == 0 {
		return nil, fmt.Errorf("mirror config: no --mirror hosts")
	}
	var files []MirrorFile
	for _, host := range opts.Mirrors {
		if host == "" || strings.ContainsAny(host, "/\\ ") || host == "." || host == ".." {
			return nil, fmt.Errorf("mirror host %q: want a registry host such as docker.io or quay.io:443", host)
		}
		dir := filepath.Join(opts.Dir, host)
		upstream := upstreams[host]
		if upstream == "" {
			upstream = "https://" + host
		}
		var b strings.Builder
		fmt.Fprintf(&b, "# Written by ferry: pulls for %s go to %s first.\n", host, opts.Server)
		fmt.Fprintf(&b, "server = %s\n\n", strconv.Quote(upstream))
		fmt.Fprintf(&b, "[host.%s]\n", strconv.Quote(strings.TrimSuffix(opts.Server, "/")))
		b.WriteString("  capabilities = [\"pull\", \"resolve\"]\n")
		if opts.CA != nil {
			caPath := filepath.Join(dir, "ferry-ca.crt")
			fmt.Fprintf(&b, "  ca = %s\n", strconv.Quote(caPath))
			files = append(files, MirrorFile{Path: caPath, Content: opts.CA})
		}
		files = append(files, MirrorFile{Path: filepath.Join(dir, "hosts.toml"), Content: []byte(b.String())})
	}
	return files, nil
}

// WriteMirrorConfig writes the files of MirrorConfig, each atomically.
func WriteMirrorConfig(opts MirrorOptions) ([]MirrorFile, error) {
	if opts.Dir == "" {
		return nil, fmt.Errorf("mirror config: no directory (containerd's config_path, e.g. /etc/containerd/certs.d)")
	}
	files, err := MirrorConfig(opts)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if err := atomicfile.Write(f.Path, f.Content, 0o644); err != nil {
			return nil, fmt.Errorf("mirror config: %w", err)
		}
	}
	return files, nil
}
