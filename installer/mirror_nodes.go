package installer

import (
	"bytes"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/pelletier/go-toml"
	"gopkg.in/yaml.v3"
)

// containersRegistries is the part of containers-registries.conf(5)
// (version 2) that a mirror drop-in uses.
type containersRegistries struct {
	Registry []containersRegistry `toml:"registry"`
}

type containersRegistry struct {
	Prefix   string             `toml:"prefix"`
	Location string             `toml:"location"`
	Mirror   []containersMirror `toml:"mirror"`
}

type containersMirror struct {
	Location string `toml:"location"`
	// Insecure allows plain HTTP (and unverified TLS) to the mirror.
	Insecure bool `toml:"insecure,omitempty"`
}

// registriesConf renders a registries.conf.d drop-in with one [[registry]]
// per mirrored host, whose mirror is the server under that host's name
// (SERVER/docker.io/library/nginx: the names ferry serve serves every image
// under, and a registry seeded by `ferry push --keep-host` holds), and the
// CA under certs.d/SERVER/ca.crt, where containers/image looks for it.
func registriesConf(opts MirrorOptions, u *url.URL) ([]MirrorFile, error) {
	base := u.Host + strings.TrimSuffix(u.Path, "/")
	var conf containersRegistries
	for _, host := range opts.Mirrors {
		conf.Registry = append(conf.Registry, containersRegistry{
			Prefix:   host,
			Location: host,
			Mirror:   []containersMirror{{Location: base + "/" + host, Insecure: u.Scheme == "http"}},
		})
	}
	b, err := toml.Marshal(conf)
	if err != nil {
		return nil, fmt.Errorf("registries.conf: %w", err)
	}
	head := fmt.Sprintf("%s: pulls for %s go to %s first.\n# A drop-in for /etc/containers/registries.conf.d/ (CRI-O, podman, skopeo, buildah).\n\n",
		ferryHeader, strings.Join(opts.Mirrors, ", "), opts.Server)
	files := []MirrorFile{{Path: filepath.Join(opts.Dir, "registries.conf.d", "ferry-mirrors.conf"), Content: append([]byte(head), b...), Config: true}}
	if opts.CA != nil {
		files = append(files, MirrorFile{Path: filepath.Join(opts.Dir, "certs.d", u.Host, "ca.crt"), Content: opts.CA})
	}
	return files, nil
}

// k3sFile is k3s's and RKE2's registries.yaml, the fields ferry
// writes (docs.k3s.io/installation/private-registry).
type k3sFile struct {
	Mirrors map[string]k3sMirror `yaml:"mirrors"`
	Configs map[string]k3sConfig `yaml:"configs,omitempty"`
}

// k3sMirror lists a registry's mirror endpoints.
type k3sMirror struct {
	Endpoint []string `yaml:"endpoint"`
}

// k3sConfig is the TLS configuration of one endpoint host.
type k3sConfig struct {
	TLS k3sTLS `yaml:"tls"`
}

// k3sTLS names the CA that endpoint's certificate is checked with.
type k3sTLS struct {
	CAFile string `yaml:"ca_file"`
}

// k3sRegistries renders registries.yaml, with the CA beside it as
// ferry-ca.crt.
func k3sRegistries(opts MirrorOptions, u *url.URL) ([]MirrorFile, error) {
	conf := k3sFile{Mirrors: map[string]k3sMirror{}}
	for _, host := range opts.Mirrors {
		conf.Mirrors[host] = k3sMirror{Endpoint: []string{strings.TrimSuffix(opts.Server, "/")}}
	}
	var files []MirrorFile
	if opts.CA != nil {
		caPath := filepath.Join(opts.Dir, "ferry-ca.crt")
		conf.Configs = map[string]k3sConfig{u.Host: {TLS: k3sTLS{CAFile: caPath}}}
		files = append(files, MirrorFile{Path: caPath, Content: opts.CA})
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(conf); err != nil {
		return nil, fmt.Errorf("registries.yaml: %w", err)
	}
	head := fmt.Sprintf("%s: pulls for %s go to %s first.\n# k3s: /etc/rancher/k3s/registries.yaml, RKE2: /etc/rancher/rke2/registries.yaml; restart k3s (rke2-server or rke2-agent) to apply.\n",
		ferryHeader, strings.Join(opts.Mirrors, ", "), opts.Server)
	return append(files, MirrorFile{Path: filepath.Join(opts.Dir, "registries.yaml"), Content: append([]byte(head), b.Bytes()...), Config: true}), nil
}
