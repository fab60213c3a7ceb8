// Package ctdconfig writes the configuration of a private containerd daemon
// whose root, state, sockets, CNI directories and CRI registry config_path
// all live under one directory, so it runs beside (and never touches) the
// machine's own containerd. ferry's tests (internal/testenv) and the demo
// (scripts/demoimages) start their daemons from it.
package ctdconfig

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/pelletier/go-toml"
)

// Daemon names the files of a private containerd daemon under Dir.
type Daemon struct {
	// Dir holds everything below.
	Dir string
	// Major is the containerd major version the config is written for: 1
	// (the default when 0) gets config version 2, 2 gets config version 3,
	// where the CRI plugin is split into io.containerd.cri.v1.images and
	// io.containerd.cri.v1.runtime.
	Major int
	// ConfigPath is the config file: containerd --config ConfigPath.
	ConfigPath string
	// Address is the gRPC unix socket (ctr --address, containerd.New).
	Address string
	// Root and State are containerd's root and state directories.
	Root, State string
	// CertsDir is the CRI registry config_path: hosts.toml files go in
	// CertsDir/<host>/hosts.toml.
	CertsDir string
	// RegistryConfig, when set, is a containerd config file (of the
	// config version of Major) that sets the CRI registry config instead
	// of the daemon's own config_path = CertsDir, as a node's
	// administrator adds it: containerd 2.x imports the file (imports =
	// [...], like /etc/containerd/conf.d/*.toml), and for 1.x its settings
	// are merged into the config file (1.x's imports replace whole plugin
	// sections, the CRI's other settings with them).
	RegistryConfig string
}

// For returns the paths of a containerd 1.x daemon in dir (set Major for
// 2.x). Unix socket paths are limited to 107 bytes, so dir should be short
// (a temp dir under /tmp).
func For(dir string) Daemon {
	return Daemon{
		Dir:        dir,
		ConfigPath: filepath.Join(dir, "config.toml"),
		Address:    filepath.Join(dir, "containerd.sock"),
		Root:       filepath.Join(dir, "root"),
		State:      filepath.Join(dir, "state"),
		CertsDir:   filepath.Join(dir, "certs.d"),
	}
}

// daemonConfig starts every daemon's config: %[1]s is its directory, %[2]d
// the config version, %[3]s the plugins disabled besides the snapshotters
// that cannot work on a plain machine.
const daemonConfig = `version = %[2]d
root = "%[1]s/root"
state = "%[1]s/state"
temp = "%[1]s/tmp"
disabled_plugins = [
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
%[3]s]

[grpc]
  address = "%[1]s/containerd.sock"

[ttrpc]
  address = "%[1]s/containerd.sock.ttrpc"

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

`

// plugins1 is a containerd 1.x daemon's plugin config (config version 2);
// %[1]s is its directory. The CRI stream server binds 127.0.0.1 with a
// kernel-chosen port.
const plugins1 = `[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "%[1]s/opt"
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "ferry.invalid/pause:test"
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "%[1]s/cni/bin"
      conf_dir = "%[1]s/cni/conf"
`

// registry1 is plugins1's CRI registry setting.
const registry1 = `    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "%[1]s/certs.d"
`

// plugins2 is a containerd 2.x daemon's plugin config (config version 3),
// plugins1 in 2.x's layout. Besides, shim sockets, CDI specs and the
// transfer service's hosts.toml directory are kept under the daemon's
// directory too.
const plugins2 = `[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "%[1]s/opt"
  [plugins."io.containerd.shim.v1.manager"]
    socket_dir = "%[1]s/s"
  [plugins."io.containerd.grpc.v1.cri"]
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
  [plugins."io.containerd.cri.v1.images"]
    [plugins."io.containerd.cri.v1.images".pinned_images]
      sandbox = "ferry.invalid/pause:test"
  [plugins."io.containerd.cri.v1.runtime"]
    cdi_spec_dirs = ["%[1]s/cdi"]
    [plugins."io.containerd.cri.v1.runtime".cni]
      bin_dirs = ["%[1]s/cni/bin"]
      conf_dir = "%[1]s/cni/conf"
  [plugins."io.containerd.transfer.v1.local"]
    config_path = "%[1]s/certs.d"
`

// registry2 is plugins2's CRI registry setting.
const registry2 = `  [plugins."io.containerd.cri.v1.images".registry]
    config_path = "%[1]s/certs.d"
`

// maxSocketPath is the longest path a unix socket address may have.
const maxSocketPath = 107

// Write creates the daemon's directories and writes its config file.
func (d Daemon) Write() error {
	if len(d.Address)+len(".ttrpc") > maxSocketPath {
		return fmt.Errorf("containerd config: socket path %q too long for a unix socket", d.Address)
	}
	for _, dir := range []string{d.CertsDir, filepath.Join(d.Dir, "cni", "bin"), filepath.Join(d.Dir, "cni", "conf"), filepath.Join(d.Dir, "tmp")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("containerd config: %w", err)
		}
	}
	config, err := d.render()
	if err != nil {
		return fmt.Errorf("containerd config: %w", err)
	}
	if err := os.WriteFile(d.ConfigPath, []byte(config), 0o600); err != nil {
		return fmt.Errorf("containerd config: %w", err)
	}
	return nil
}

// render returns the daemon's config text.
func (d Daemon) render() (string, error) {
	var plugins, registry, disabled string
	var version int64
	switch d.Major {
	case 0, 1:
		plugins, registry, version = plugins1, registry1, 2
		disabled = "  \"io.containerd.snapshotter.v1.aufs\",\n"
	case 2:
		// NRI would listen on /var/run/nri/nri.sock.
		plugins, registry, version = plugins2, registry2, 3
		disabled = "  \"io.containerd.nri.v1.nri\",\n"
	default:
		return "", fmt.Errorf("no config for containerd %d.x", d.Major)
	}
	config := fmt.Sprintf(daemonConfig, d.Dir, version, disabled) + fmt.Sprintf(plugins, d.Dir)
	if d.RegistryConfig == "" {
		return config + fmt.Sprintf(registry, d.Dir), nil
	}
	extra, err := toml.LoadFile(d.RegistryConfig)
	if err != nil {
		return "", err
	}
	if v, _ := extra.Get("version").(int64); v != version {
		return "", fmt.Errorf("%s: config version %v, containerd %d.x's is %d", d.RegistryConfig, extra.Get("version"), max(d.Major, 1), version)
	}
	if d.Major == 2 {
		return fmt.Sprintf("imports = [%s]\n", strconv.Quote(d.RegistryConfig)) + config, nil
	}
	base, err := toml.Load(config)
	if err != nil {
		return "", err
	}
	if err := extra.Delete("version"); err != nil {
		return "", err
	}
	merge(base, extra)
	return base.String(), nil
}

// merge sets every value of from into to, descending into the tables both
// have.
func merge(to, from *toml.Tree) {
	for _, k := range from.Keys() {
		sub, isTree := from.GetPath([]string{k}).(*toml.Tree)
		dst, hasTree := to.GetPath([]string{k}).(*toml.Tree)
		if isTree && hasTree {
			merge(dst, sub)
			continue
		}
		to.SetPath([]string{k}, from.GetPath([]string{k}))
	}
}
