package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creack/pty"
)

// binDir holds the ferry binary the pseudo-terminal tests run; TestMain
// removes it.
var binDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// ferryBinary installs ferry once per test run with `make install
// PREFIX=DIR`, as a user would, so the tests drive the real binary: its
// signal handling, its terminal detection, its build information.
var ferryBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "ferry-bin")
	if err != nil {
		return "", err
	}
	binDir = dir
	make := exec.Command("make", "-s", "-C", "../..", "install", "PREFIX="+dir, "GO="+filepath.Join(runtime.GOROOT(), "bin", "go"))
	if out, err := make.CombinedOutput(); err != nil {
		return "", fmt.Errorf("make install PREFIX=%s: %w\n%s", dir, err, out)
	}
	return filepath.Join(dir, "bin", "ferry"), nil
})

// ptyRun is ferry running on a pseudo-terminal, as on a user's terminal:
// stdout and stderr are the terminal, and ^C typed on it is SIGINT.
type ptyRun struct {
	cmd  *exec.Cmd
	tty  *os.File
	out  syncBuffer
	done chan struct{}
}

// startPTY starts the ferry binary with args on a new pseudo-terminal.
func startPTY(t *testing.T, args ...string) *ptyRun {
	t.Helper()
	bin, err := ferryBinary()
	if err != nil {
		t.Fatalf("build ferry: %v", err)
	}
	r := &ptyRun{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	r.tty, err = pty.StartWithSize(r.cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		t.Fatal(err)
	}
	copied := make(chan struct{})
	go func() {
		io.Copy(&r.out, r.tty) //nolint:errcheck // ends with EIO when ferry exits
		close(copied)
	}()
	go func() {
		r.cmd.Wait() //nolint:errcheck // the exit code is read from ProcessState
		<-copied
		close(r.done)
	}()
	t.Cleanup(func() {
		r.cmd.Process.Kill() //nolint:errcheck // may have exited
		r.tty.Close()
		<-r.done
	})
	return r
}

// ctrlC types ^C on the terminal.
func (r *ptyRun) ctrlC(t *testing.T) {
	t.Helper()
	if _, err := r.tty.Write([]byte{0x03}); err != nil {
		t.Fatal(err)
	}
}

// exited reports whether ferry has exited.
func (r *ptyRun) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// waitExit waits up to within for ferry to exit and returns its exit code
// and what it printed; it fails the test if ferry runs on.
func (r *ptyRun) waitExit(t *testing.T, within time.Duration) (int, string) {
	t.Helper()
	select {
	case <-r.done:
		return r.cmd.ProcessState.ExitCode(), r.out.String()
	case <-time.After(within):
		t.Fatalf("ferry %s still runs %v after the interrupt; its terminal:\n%s",
			strings.Join(r.cmd.Args[1:], " "), within, r.out.String())
		return 0, ""
	}
}

// waitFor waits until cond holds, failing the test after a minute or if
// ferry exits first.
func (r *ptyRun) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(10 * time.Millisecond) {
		if r.exited() {
			t.Fatalf("ferry exited (%d) before %s; its terminal:\n%s", r.cmd.ProcessState.ExitCode(), what, r.out.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after a minute; ferry's terminal:\n%s", what, r.out.String())
		}
	}
}

// slowProxy forwards connections to a server (a registry's TCP port or
// containerd's unix socket) at a bounded rate shared by all connections,
// so a test can interrupt ferry while bytes move. It counts the bytes.
type slowProxy struct {
	// Addr is where to connect: host:port for tcp, a socket path for unix.
	Addr  string
	Bytes atomic.Int64

	rate int64 // bytes per second
	mu   sync.Mutex
	next time.Time
}

func newSlowProxy(t *testing.T, network, target string, rate int64) *slowProxy {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "proxy.sock")
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &slowProxy{Addr: ln.Addr().String(), rate: rate}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial(network, target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, d)
			mu.Unlock()
			go p.pipe(c, d)
			go p.pipe(d, c)
		}
	}()
	return p
}

// pipe copies from src to dst at the proxy's rate.
func (p *slowProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 16<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.wait(n)
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			p.Bytes.Add(int64(n))
		}
		if err != nil {
			return
		}
	}
}

// wait sleeps until n more bytes fit the rate.
func (p *slowProxy) wait(n int) {
	p.mu.Lock()
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	p.next = p.next.Add(time.Duration(int64(n) * int64(time.Second) / p.rate))
	d := time.Until(p.next)
	p.mu.Unlock()
	time.Sleep(d)
}
