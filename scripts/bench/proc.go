package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// timeBinary is GNU time, which reports a command's peak RSS (%M, in KiB).
const timeBinary = "/usr/bin/time"

// startTimeout bounds how long a server may take to answer.
const startTimeout = 60 * time.Second

// stopTimeout is how long a server gets after SIGTERM before SIGKILL.
const stopTimeout = 10 * time.Second

// sample is one timed run.
type sample struct {
	dur   time.Duration
	rssKB int64 // peak RSS of the measured process(es); 0 when not measured
	// cpu is the user+system time of the measured commands, and serverCPU
	// that of the server they talked to during the run (-1: no server): it
	// says whose work the wall time was.
	cpu, serverCPU time.Duration
}

// command prepares a command whose output goes to a fresh log file under
// the work dir; the caller closes the returned file once the command has
// started. It runs in its own process group, which is killed when ctx ends
// (Ctrl-C), and dies with the bench.
func (b *bench) command(ctx context.Context, name string, args ...string) (*exec.Cmd, *os.File, error) {
	n := b.seq.Add(1)
	logPath := filepath.Join(b.logDir, fmt.Sprintf("%04d-%s.log", n, filepath.Base(name)))
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(logf, "$ %s %s\n", name, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = stopTimeout
	return cmd, logf, nil
}

// exec runs a command to completion, untimed.
func (b *bench) exec(ctx context.Context, name string, args ...string) error {
	cmd, logf, err := b.command(ctx, name, args...)
	if err != nil {
		return err
	}
	defer logf.Close()
	return b.wait(cmd, logf.Name(), cmd.Run())
}

// wait turns a command's failure into an error that quotes its log.
func (b *bench) wait(cmd *exec.Cmd, logPath string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %v; log %s:\n%s", strings.Join(cmd.Args, " "), err, logPath, tail(logPath, 15))
}

// meter measures one timed run that may consist of several commands.
type meter struct {
	b      *bench
	mu     sync.Mutex
	rssMax int64
	cpu    time.Duration
}

// measure times fn. The sample's RSS is the largest of its commands', its
// CPU time their sum; server, when not nil, is the server they talk to.
func (b *bench) measure(server *proc, fn func(m *meter) error) (sample, error) {
	m := &meter{b: b}
	before := server.cpuTime()
	start := time.Now()
	err := fn(m)
	s := sample{dur: time.Since(start), rssKB: m.rssMax, cpu: m.cpu, serverCPU: -1}
	if server != nil {
		s.serverCPU = server.cpuTime() - before
	}
	return s, err
}

// run runs one command of a measured run under GNU time, which records its
// peak RSS and CPU time.
func (m *meter) run(ctx context.Context, name string, args ...string) error {
	out := filepath.Join(m.b.logDir, fmt.Sprintf("time-%d", m.b.seq.Add(1)))
	cmd, logf, err := m.b.command(ctx, timeBinary, append([]string{"-f", "%M %U %S", "-o", out, name}, args...)...)
	if err != nil {
		return err
	}
	defer logf.Close()
	err = cmd.Run()
	kb, cpu := readTime(out)
	m.mu.Lock()
	m.rssMax = max(m.rssMax, kb) // overlapping commands (the pull clients) are not summed: close enough
	m.cpu += cpu
	m.mu.Unlock()
	return m.b.wait(cmd, logf.Name(), err)
}

// readTime reads GNU time's "%M %U %S" line, the last of its output (it
// writes "Command exited with non-zero status N" before it on failure).
func readTime(path string) (rssKB int64, cpu time.Duration) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(f) != 3 {
		return 0, 0
	}
	rssKB, _ = strconv.ParseInt(f[0], 10, 64)
	for _, v := range f[1:] {
		sec, _ := strconv.ParseFloat(v, 64)
		cpu += time.Duration(sec * float64(time.Second))
	}
	return rssKB, cpu
}

// proc is a long-running process: a registry, ferry serve, containerd.
type proc struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // Wait's result, once done is closed
}

// start starts a long-running process and registers it for cleanup.
func (b *bench) start(ctx context.Context, name string, args ...string) (*proc, error) {
	cmd, logf, err := b.command(ctx, name, args...)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the process has its own descriptor
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, logPath: logf.Name(), done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	b.mu.Lock()
	b.procs = append(b.procs, p)
	b.mu.Unlock()
	return p, nil
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process: SIGTERM to its group, SIGKILL after stopTimeout.
// It is idempotent.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// clockTick is the unit of /proc/PID/stat's times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuTime is the process's user+system time so far, or 0 (also for nil).
func (p *proc) cpuTime() time.Duration {
	if p == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after "(comm)": state is the first, utime the 12th, stime the 13th.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * clockTick
}

// peakRSSKB is the process's peak RSS so far (VmHWM), or 0.
func (p *proc) peakRSSKB() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "VmHWM:" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return 0
}

// server is a running registry: docker-registry or ferry serve.
type server struct {
	*proc
	host string // 127.0.0.1:PORT
	url  string // http://HOST or https://HOST
	ca   string // the CA certificate file of an https server
}

// registryListenRE matches distribution's "listening on 127.0.0.1:PORT" line.
var registryListenRE = regexp.MustCompile(`listening on 127\.0\.0\.1:([0-9]+)`)

// startRegistry starts docker-registry on 127.0.0.1 (port chosen by the
// kernel) with filesystem storage at storage, and waits for its first 200.
func (b *bench) startRegistry(ctx context.Context, storage string) (*server, error) {
	dir, err := os.MkdirTemp(b.work, "registry-")
	if err != nil {
		return nil, err
	}
	// JSON is YAML, and distribution reads its config with a YAML parser.
	cfg := fmt.Sprintf(`{"version": "0.1",
 "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": true}},
 "storage": {"filesystem": {"rootdirectory": %q}, "delete": {"enabled": true},
   "maintenance": {"uploadpurging": {"enabled": false}}},
 "http": {"addr": "127.0.0.1:0", "secret": "ferry-bench"}}`, storage)
	config := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	p, err := b.start(ctx, registryBinary, "serve", config)
	if err != nil {
		return nil, err
	}
	var port string
	err = poll(ctx, p, func() (bool, error) {
		data, err := os.ReadFile(p.logPath)
		if m := registryListenRE.FindSubmatch(data); m != nil {
			port = string(m[1])
			return true, nil
		}
		return false, err
	})
	if err == nil {
		err = b.wait200(ctx, p, "http://127.0.0.1:"+port, "")
	}
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("docker-registry: %w; log:\n%s", err, tail(p.logPath, 15))
	}
	return &server{proc: p, host: "127.0.0.1:" + port, url: "http://127.0.0.1:" + port}, nil
}

// startFerryServe starts `ferry serve` on the bundle, read-only on a
// kernel-chosen port, over plain HTTP or with a self-signed CA, and waits
// for its first 200.
func (b *bench) startFerryServe(ctx context.Context, useTLS bool) (*server, error) {
	n := b.seq.Add(1)
	ready := filepath.Join(b.work, fmt.Sprintf("ready-%d", n))
	args := []string{"serve", b.bundle, "--listen", "127.0.0.1:0", "--ready-file", ready, "--plain-http"}
	ca := ""
	if useTLS {
		ca = filepath.Join(b.work, fmt.Sprintf("ca-%d.crt", n))
		args = append(args[:len(args)-1], "--tls-self-signed", "--hostname", "127.0.0.1", "--ca-out", ca)
	}
	p, err := b.start(ctx, b.ferry, args...)
	if err != nil {
		return nil, err
	}
	var url string
	err = poll(ctx, p, func() (bool, error) {
		data, _ := os.ReadFile(ready)
		url = strings.TrimSpace(string(data))
		return url != "", nil
	})
	if err == nil {
		err = b.wait200(ctx, p, url, ca)
	}
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("ferry serve: %w; log:\n%s", err, tail(p.logPath, 15))
	}
	host := strings.TrimPrefix(strings.TrimPrefix(url, "http://"), "https://")
	return &server{proc: p, host: host, url: url, ca: ca}, nil
}

// wait200 polls GET url/v2/ until it answers 200, trusting ca (a PEM
// file) when it is set.
func (b *bench) wait200(ctx context.Context, p *proc, url, ca string) error {
	client, err := fetchClient(ca, 1)
	if err != nil {
		return err
	}
	client.Timeout = 5 * time.Second
	var last error
	err = poll(ctx, p, func() (bool, error) {
		resp, err := client.Get(url + "/v2/")
		if err != nil {
			last = err
			return false, nil
		}
		resp.Body.Close()
		last = fmt.Errorf("GET %s/v2/: %s", url, resp.Status)
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil && last != nil {
		return fmt.Errorf("%w (%v)", err, last)
	}
	return err
}

// poll calls cond every millisecond until it is true, the process exits,
// ctx ends or startTimeout passes.
func poll(ctx context.Context, p *proc, cond func() (bool, error)) error {
	deadline := time.Now().Add(startTimeout)
	for {
		ok, err := cond()
		switch {
		case ok:
			return nil
		case err != nil && !errors.Is(err, os.ErrNotExist):
			return err
		case p.exited():
			return fmt.Errorf("exited during start (%v)", p.err)
		case time.Now().After(deadline):
			return fmt.Errorf("not ready after %v", startTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// containerdConfig runs a private containerd with everything under one
// directory (%[1]s). The CRI plugin is off: an import with --no-unpack
// needs only the content store and the image service.
const containerdConfig = `version = 2
root = "%[1]s/root"
state = "%[1]s/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs",
]

[grpc]
  address = "%[1]s/c.sock"

[ttrpc]
  address = "%[1]s/c.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "%[1]s/opt"
`

// containerd is a running private containerd.
type containerd struct {
	*proc
	dir, socket string
}

// startContainerd starts a fresh containerd under a new directory and waits
// until `ctr version` answers.
func (b *bench) startContainerd(ctx context.Context) (*containerd, error) {
	dir, err := os.MkdirTemp(b.work, "ctd-")
	if err != nil {
		return nil, err
	}
	config := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(containerdConfig, dir)), 0o600); err != nil {
		return nil, err
	}
	p, err := b.start(ctx, "containerd", "--config", config)
	if err != nil {
		return nil, err
	}
	c := &containerd{proc: p, dir: dir, socket: filepath.Join(dir, "c.sock")}
	err = poll(ctx, p, func() (bool, error) {
		if _, err := os.Stat(c.socket); err != nil {
			return false, nil
		}
		out, err := exec.CommandContext(ctx, "ctr", "--address", c.socket, "version").CombinedOutput()
		return err == nil && bytes.Contains(out, []byte("Server:")), nil
	})
	if err != nil {
		c.remove()
		return nil, fmt.Errorf("containerd: %w; log:\n%s", err, tail(p.logPath, 15))
	}
	return c, nil
}

// remove stops containerd and deletes its directory.
func (c *containerd) remove() {
	c.stop()
	_ = os.RemoveAll(c.dir)
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
