package containerd

// Node detection: which containerd runs on this node, and its version.

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-oci/ferry/manifests"
)

// Socket is a place a node's containerd listens.
type Socket struct {
	// Path is the gRPC unix socket.
	Path string
	// Kind says whose containerd listens there: "containerd", "k3s/RKE2".
	Kind string
}

// String is "PATH (KIND)".
func (s Socket) String() string { return s.Path + " (" + s.Kind + ")" }

// Sockets are the documented sockets of the node kinds ferry knows, in
// the order they are tried: containerd's own default, and the one k3s and
// RKE2 both run their embedded containerd on (RKE2's docs: "The Containerd
// socket is located at /run/k3s/containerd/containerd.sock").
var Sockets = []Socket{
	{Path: DefaultContainerdAddress, Kind: "containerd"},
	{Path: "/run/k3s/containerd/containerd.sock", Kind: "k3s/RKE2"},
}

// dialTimeout bounds each candidate's connection attempt.
const dialTimeout = 2 * time.Second

// FindSocket returns the one candidate a process accepts connections on.
// A socket file nobody listens on (left by a containerd that died) does
// not count. It fails with manifests.ErrUnreachable, naming why each
// candidate failed, when none answers, and with
// manifests.ErrInvalidArgument when more than one does:
// images imported into the wrong containerd would be invisible to the
// kubelet, so the caller must choose.
func FindSocket(ctx context.Context, candidates []Socket) (Socket, error) {
	var found []Socket
	var why []string
	for _, s := range candidates {
		dctx, cancel := context.WithTimeout(ctx, dialTimeout)
		var d net.Dialer
		conn, err := d.DialContext(dctx, "unix", s.Path)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return Socket{}, ctx.Err()
			}
			why = append(why, fmt.Sprintf("%s: %v", s, err))
			continue
		}
		conn.Close()
		found = append(found, s)
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return Socket{}, fmt.Errorf("no running containerd found: %w (tried %s); start it, or give its socket with --address", manifests.ErrUnreachable, strings.Join(why, "; "))
	}
	names := make([]string, len(found))
	for i, s := range found {
		names[i] = s.String()
	}
	return Socket{}, fmt.Errorf("more than one containerd running (%s answer): choose the kubelet's with --address: %w", strings.Join(names, ", "), manifests.ErrInvalidArgument)
}

// versionRE finds the version in `containerd --version` output, e.g.
// "containerd github.com/containerd/containerd/v2 2.4.2+unknown" or
// "containerd github.com/k3s-io/containerd v1.7.27-k3s1 ...".
var versionRE = regexp.MustCompile(`^containerd \S+ v?(([0-9]+)\.[0-9]+\S*)`)

// ParseVersion reads `containerd --version` output and returns the
// version and its major number.
func ParseVersion(out string) (version string, major int, err error) {
	m := versionRE.FindStringSubmatch(strings.TrimSpace(out))
	if m == nil {
		return "", 0, fmt.Errorf("%w: unexpected `containerd --version` output %q", ErrVersion, out)
	}
	major, err = strconv.Atoi(m[2])
	if err != nil {
		return "", 0, fmt.Errorf("%w: %q: %w", ErrVersion, out, err)
	}
	return m[1], major, nil
}

// BinaryVersion runs `binary --version` and returns containerd's version
// and major number.
func BinaryVersion(ctx context.Context, binary string) (version string, major int, err error) {
	out, err := exec.CommandContext(ctx, binary, "--version").Output()
	if err != nil {
		return "", 0, fmt.Errorf("%w: %s --version: %w", ErrVersion, binary, err)
	}
	return ParseVersion(string(out))
}
