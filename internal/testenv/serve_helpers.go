package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// MirrorHosts writes a containerd hosts directory under dir (for ctr
// --hosts-dir or the CRI config_path) that sends the pulls for each of hosts
// ("docker.io", "quay.io", ...) to mirror, a URL such as
// "https://127.0.0.1:PORT", trusting caFile when it is not empty. Every
// host's upstream server is an unreachable local address, so a pull the
// mirror cannot serve fails instead of leaving 127.0.0.1.
func MirrorHosts(t testing.TB, dir, mirror, caFile string, hosts ...string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", "http://127.0.0.1:1", mirror)
	if caFile != "" {
		fmt.Fprintf(&b, "  ca = %q\n", caFile)
	}
	for _, h := range hosts {
		hostDir := filepath.Join(dir, h)
		if err := os.MkdirAll(hostDir, 0o755); err != nil {
			t.Fatalf("testenv: hosts dir: %v", err)
		}
		if err := os.WriteFile(filepath.Join(hostDir, "hosts.toml"), []byte(b.String()), 0o644); err != nil {
			t.Fatalf("testenv: hosts dir: %v", err)
		}
	}
}
