package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-oci/ferry/internal/ctdconfig"
)

// containerdStartTimeout bounds how long Containerd waits for the socket.
const containerdStartTimeout = 30 * time.Second

// containerdStopTimeout is how long Stop waits after SIGTERM before SIGKILL.
const containerdStopTimeout = 10 * time.Second

// ContainerdServer is a running containerd daemon private to one test, with the
// CRI plugin loaded and all state under one short temp dir.
type ContainerdServer struct {
	// Address is the gRPC unix socket path (containerd.New(Address)).
	Address string
	// Root and State are containerd's root and state directories.
	Root, State string
	// CertsDir is the CRI registry config_path: hosts.toml files go in
	// CertsDir/<host>/hosts.toml.
	CertsDir string
	// ConfigPath is the containerd config file (version 2 for 1.x, 3 for 2.x).
	ConfigPath string
	// Version is the containerd release line running, and Binary its
	// containerd program (`Binary --version` names the version).
	Version ContainerdVersion
	Binary  string
	// Dir is the temp dir that holds everything above.
	Dir string
	// LogPath is containerd's log (stdout and stderr).
	LogPath string

	ctr  string
	cmd  *exec.Cmd
	done chan struct{}
}

// ContainerdOptions choose the containerd that StartContainerd runs.
type ContainerdOptions struct {
	// Version is the release line; 0 means Containerd1.
	Version ContainerdVersion
	// RegistryConfig, when set, is a containerd config file of the
	// version's config form holding the CRI registry config_path (as
	// `ferry mirror-config --print-containerd-config` prints it), used
	// instead of the daemon's own config_path = CertsDir (see
	// ctdconfig.Daemon.RegistryConfig).
	RegistryConfig string
}

// Containerd starts Debian's containerd 1.6: StartContainerd with the
// zero ContainerdOptions.
func Containerd(t testing.TB) *ContainerdServer {
	t.Helper()
	return StartContainerd(t, ContainerdOptions{})
}

// StartContainerd starts a real containerd of opts.Version as root with its
// own config, root, state and socket under a temp dir made with
// os.MkdirTemp("", "ctd") (unix socket paths must stay short). It waits
// until the socket answers. At the end of the test it is stopped (SIGTERM,
// then SIGKILL after 10s), leftover mounts under the dir are unmounted and
// the dir is removed; if the test failed, the last 50 log lines are logged.
func StartContainerd(t testing.TB, opts ContainerdOptions) *ContainerdServer {
	t.Helper()
	if opts.Version == 0 {
		opts.Version = Containerd1
	}
	bins := ContainerdBinaries(t, opts.Version)
	if os.Geteuid() != 0 {
		t.Fatalf("testenv: containerd needs root (euid %d); run the tests as root", os.Geteuid())
	}

	dir, err := os.MkdirTemp("", "ctd")
	if err != nil {
		t.Fatalf("testenv: containerd: %v", err)
	}
	// Resolve symlinks so mountinfo paths (always resolved) match dir.
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d
	}
	d := ctdconfig.For(dir)
	d.Major, d.RegistryConfig = int(opts.Version), opts.RegistryConfig
	c := &ContainerdServer{
		Address:    d.Address,
		Root:       d.Root,
		State:      d.State,
		CertsDir:   d.CertsDir,
		ConfigPath: d.ConfigPath,
		Dir:        dir,
		LogPath:    filepath.Join(dir, "containerd.log"),
		Version:    opts.Version,
		Binary:     bins.Containerd,
		ctr:        bins.Ctr,
	}
	t.Cleanup(func() {
		c.stop(t)
		if t.Failed() {
			t.Logf("containerd log (%s), last 50 lines:\n%s", c.LogPath, tailFile(c.LogPath, 50))
		}
		c.cleanupDir(t)
	})
	if err := d.Write(); err != nil {
		t.Fatalf("testenv: %v (set TMPDIR to a short dir if the path is too long)", err)
	}

	c.start(t, bins)
	c.waitReady(t)
	return c
}

// start runs the daemon with its log in LogPath; it is killed if the test
// binary dies.
func (c *ContainerdServer) start(t testing.TB, bins ContainerdBins) {
	t.Helper()
	logf, err := os.Create(c.LogPath)
	if err != nil {
		t.Fatalf("testenv: containerd: %v", err)
	}
	defer logf.Close()
	cmd := exec.Command(bins.Containerd, "--config", c.ConfigPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = c.Dir
	// The daemon finds its shim (containerd-shim-runc-v2) on PATH first.
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bins.Shim)+string(os.PathListSeparator)+os.Getenv("PATH"))
	// If the test binary dies (go test -timeout), do not leave a daemon behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: containerd: start %s: %v", bins.Containerd, err)
	}
	c.cmd, c.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(c.done) }()
}

// waitReady waits until the daemon answers `ctr version`, failing the test
// with its log when it exits or does not answer in time.
func (c *ContainerdServer) waitReady(t testing.TB) {
	t.Helper()
	var lastErr error
	exited := false
	ok := poll(containerdStartTimeout, 50*time.Millisecond, func() bool {
		select {
		case <-c.done:
			exited = true
			return true
		default:
		}
		if _, err := os.Stat(c.Address); err != nil {
			lastErr = err
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, lastErr = c.run(ctx, "version")
		return lastErr == nil
	})
	switch {
	case exited:
		t.Fatalf("testenv: containerd exited during start (%v); log:\n%s", c.cmd.ProcessState, tailFile(c.LogPath, 50))
	case !ok:
		t.Fatalf("testenv: containerd did not answer on %s within %v: %v; log:\n%s", c.Address, containerdStartTimeout, lastErr, tailFile(c.LogPath, 50))
	}
}

// Ctr runs `ctr --address Address args...` and returns its stdout; it fails
// the test with stderr when ctr fails.
func (c *ContainerdServer) Ctr(t testing.TB, args ...string) string {
	t.Helper()
	out, err := c.CtrErr(t, args...)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return out
}

// CtrErr is Ctr for negative tests: it returns stdout and an error holding
// stderr instead of failing the test.
func (c *ContainerdServer) CtrErr(t testing.TB, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return c.run(ctx, args...)
}

func (c *ContainerdServer) run(ctx context.Context, args ...string) (string, error) {
	full := append([]string{"--address", c.Address}, c.ownRuncRoot(args)...)
	return output(exec.CommandContext(ctx, c.ctr, full...), "ctr", full)
}

// ownRuncRoot gives `ctr run` a runc state directory under this
// containerd's state, not the machine's /run/containerd/runc, which every
// containerd of the machine (other tests, other runs) shares: a container
// ID there collides with another's ("container with given ID already
// exists").
func (c *ContainerdServer) ownRuncRoot(args []string) []string {
	for i, a := range args {
		if a == "run" && (i == 0 || (args[i-1] != "-n" && args[i-1] != "--namespace")) {
			out := append(slices.Clone(args[:i+1]), "--runc-root", filepath.Join(c.State, "runc"))
			return append(out, args[i+1:]...)
		}
	}
	return args
}

// ContainerID returns prefix with a random suffix: a container ID no other
// test or run uses.
func ContainerID(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// stop ends containerd: SIGTERM, then SIGKILL after containerdStopTimeout,
// then any shim it left behind for this socket.
func (c *ContainerdServer) stop(t testing.TB) {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(containerdStopTimeout):
		t.Logf("testenv: containerd did not stop within %v of SIGTERM; killing it", containerdStopTimeout)
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	c.cmd = nil
	c.killShims(t)
}

// killShims kills containerd-shim processes started for this daemon: their
// command line names this daemon's socket, which no other process uses.
func (c *ContainerdServer) killShims(t testing.TB) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if !strings.Contains(filepath.Base(args[0]), "containerd-shim") {
			continue
		}
		for _, a := range args {
			if a == c.Address || strings.HasPrefix(a, c.Dir+"/") {
				t.Logf("testenv: killing leftover shim pid %d", pid)
				_ = syscall.Kill(pid, syscall.SIGKILL)
				break
			}
		}
	}
}

// cleanupDir unmounts whatever is still mounted under Dir (overlay snapshot
// mounts, deepest first) and removes Dir.
func (c *ContainerdServer) cleanupDir(t testing.TB) {
	for _, m := range mountsUnder(c.Dir) {
		if err := syscall.Unmount(m, 0); err != nil {
			if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
				t.Logf("testenv: unmount %s: %v", m, err)
			}
		}
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		t.Logf("testenv: remove %s: %v", c.Dir, err)
	}
}

// mountsUnder returns the mount points at or under dir from
// /proc/self/mountinfo, deepest first.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountinfo(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// unescapeMountinfo decodes the octal escapes (\040 for space, ...) that
// /proc/self/mountinfo uses in paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
