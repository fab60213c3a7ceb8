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
)

// Daemon names the files of a private containerd daemon under Dir.
type Daemon struct {
	// Dir holds everything below.
	Dir string
	// ConfigPath is the config file (version 2): containerd --config ConfigPath.
	ConfigPath string
	// Address is the gRPC unix socket (ctr --address, containerd.New).
	Address string
	// Root and State are containerd's root and state directories.
	Root, State string
	// CertsDir is the CRI registry config_path: hosts.toml files go in
	// CertsDir/<host>/hosts.toml.
	CertsDir string
}

// For returns the paths of a daemon in dir. Unix socket paths are limited
// to 107 bytes, so dir should be short (a temp dir under /tmp).
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

// config is the daemon's config; %[1]s is its directory. Snapshotters that
// cannot work on a plain machine are disabled; the CRI stream server binds
// 127.0.0.1 with a kernel-chosen port.
const config = `version = 2
root = "%[1]s/root"
state = "%[1]s/state"
temp = "%[1]s/tmp"
disabled_plugins = [
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs",
]

[grpc]
  address = "%[1]s/containerd.sock"

[ttrpc]
  address = "%[1]s/containerd.sock.ttrpc"

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins]
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
    [plugins."io.containerd.grpc.v1.cri".registry]
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
	if err := os.WriteFile(d.ConfigPath, []byte(fmt.Sprintf(config, d.Dir)), 0o600); err != nil {
		return fmt.Errorf("containerd config: %w", err)
	}
	return nil
}
