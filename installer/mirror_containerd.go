package installer

import (
	"fmt"
	"strconv"

	"github.com/ferry-oci/ferry/manifests"
)

// ContainerdRegistryConfig returns the containerd config that makes the
// CRI plugin of containerd major version major (1 or 2) read the hosts.toml
// files under configPath, with a comment saying where it goes: config
// version 2's io.containerd.grpc.v1.cri registry for 1.x, version 3's
// io.containerd.cri.v1.images registry for 2.x.
func ContainerdRegistryConfig(major int, configPath string) (string, error) {
	var where, table string
	var version int
	switch major {
	case 1:
		version, table = 2, `plugins."io.containerd.grpc.v1.cri".registry`
		where = "# containerd 1.x: merge into /etc/containerd/config.toml (config version 2;\n" +
			"# a file imported from it would replace the CRI plugin's whole section),\n" +
			"# then restart containerd.\n"
	case 2:
		version, table = 3, `plugins."io.containerd.cri.v1.images".registry`
		where = "# containerd 2.x: save as /etc/containerd/conf.d/ferry.toml when the config\n" +
			"# imports /etc/containerd/conf.d/*.toml (2.x's default config does), or merge\n" +
			"# into /etc/containerd/config.toml (config version 3); then restart containerd.\n"
	default:
		return "", fmt.Errorf("containerd %d.x: ferry knows the config of containerd 1.x and 2.x: %w", major, manifests.ErrInvalidArgument)
	}
	return fmt.Sprintf("%sversion = %d\n\n[%s]\n  config_path = %s\n", where, version, table, strconv.Quote(configPath)), nil
}
