package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// environment describes the machine and the tools of a run.
type environment struct {
	started, finished  time.Time
	cpus               int
	cpuModel, memory   string
	kernel, filesystem string
	loadStart, loadEnd string
	commit             string
	versions           [][2]string // tool, version (ferry's is commit)
}

func (b *bench) environment(ctx context.Context) environment {
	e := environment{started: time.Now(), cpus: runtime.NumCPU(), loadStart: loadAverage()}
	e.cpuModel = procField("/proc/cpuinfo", "model name")
	e.memory = procField("/proc/meminfo", "MemTotal")
	if kb, err := strconv.ParseFloat(strings.TrimSuffix(e.memory, " kB"), 64); err == nil {
		e.memory = fmt.Sprintf("%.1f GB", kb*1024/1e9)
	}
	e.kernel = firstLine(execOutput(ctx, "uname", "-r"))
	e.filesystem = firstLine(execOutput(ctx, "sh", "-c", `df -T "$1" | awk 'NR==2 {print $2 " on " $1}'`, "sh", b.work))
	e.commit = firstLine(execOutput(ctx, "git", "describe", "--always", "--dirty", "--abbrev=12"))
	for _, v := range [][]string{
		{"skopeo", "skopeo", "--version"},
		{"crane", b.crane, "version"},
		{"docker-registry", registryBinary, "--version"},
		{"containerd", "containerd", "--version"},
		{"ctr", "ctr", "--version"},
		{"go", "go", "version"},
		{"tar", "tar", "--version"},
	} {
		e.versions = append(e.versions, [2]string{v[0], firstLine(execOutput(ctx, v[1], v[2:]...))})
	}
	return e
}

// execOutput runs a quick command and returns its stdout and stderr.
func execOutput(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// firstLine is the first line of a command's output, or "unknown" when it failed.
func firstLine(out string, err error) string {
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	return line
}

// procField returns the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// loadAverage is /proc/loadavg's 1, 5 and 15 minute averages: other work on
// the machine skews every number, so the report shows it.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
