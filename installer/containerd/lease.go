package containerd

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd/leases"

	"github.com/ferry-oci/ferry/bundle"
)

// An import holds one lease on what it writes until its images are
// recorded. The lease's ID starts with importLeasePrefix, its
// importLeaseOwner label names the process (see processID), and it
// expires on its own (containerd.io/gc.expire) after importLeaseMinimum
// plus the time the bundle takes at importLeaseRate, not containerd's
// default 24 hours, should the import be killed before it ends the lease.
// The next import removes the leases of imports whose process is gone.
const (
	importLeasePrefix  = "ferry-import-"
	importLeaseOwner   = "io.github.ferry-oci.import.owner"
	importLeaseMinimum = 30 * time.Minute
	importLeaseRate    = 10 << 20 // bytes per second: a slow disk
)

// contentBytes is the size of every blob of the bundle r.
func contentBytes(r *bundle.Reader) int64 {
	var n int64
	for _, d := range r.Digests() {
		size, _ := r.Size(d)
		n += size
	}
	return n
}

// importLeaseOpts are the options of an import's lease for bytes of content.
func importLeaseOpts(bytes int64) []leases.Opt {
	return []leases.Opt{
		leases.WithID(importLeasePrefix + strconv.FormatInt(time.Now().UnixNano(), 36)),
		leases.WithLabels(map[string]string{importLeaseOwner: processID(os.Getpid())}),
		leases.WithExpiration(leaseDuration(bytes)),
	}
}

// leaseDuration is how long an import's lease lasts: long enough to write
// bytes on a slow disk, short enough that a killed import's content is not
// kept for a day.
func leaseDuration(bytes int64) time.Duration {
	return importLeaseMinimum + time.Duration(bytes/importLeaseRate)*time.Second
}

// removeStaleLeases deletes the import leases in ctx's namespace whose
// process is gone (killed imports), and returns how many it deleted. A
// lease of a live import, or of a process in another PID namespace, is
// left to end or expire.
func removeStaleLeases(ctx context.Context, lm leases.Manager) (int, error) {
	all, err := lm.List(ctx)
	if err != nil {
		return 0, fmt.Errorf("list leases: %w", err)
	}
	removed := 0
	for _, l := range all {
		if !strings.HasPrefix(l.ID, importLeasePrefix) || !ownerGone(l.Labels[importLeaseOwner]) {
			continue
		}
		if err := lm.Delete(ctx, l); err != nil {
			return removed, fmt.Errorf("delete lease %s of a killed import: %w", l.ID, err)
		}
		removed++
	}
	return removed, nil
}

// processID names the process pid across PID reuse and reboots: boot ID,
// PID namespace, PID and start time.
func processID(pid int) string {
	boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	ns, _ := os.Readlink("/proc/self/ns/pid")
	return strings.Join([]string{strings.TrimSpace(string(boot)), ns, strconv.Itoa(pid), startTime(pid)}, "/")
}

// startTime is the start time of process pid (field 22 of its stat),
// or "" when there is no such process.
func startTime(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(fields) < 20 {
		return ""
	}
	return fields[19]
}

// ownerGone says whether the process an owner label names has ended: the
// machine rebooted since, or no process of that PID and start time runs in
// this PID namespace. An owner it cannot judge (another PID namespace, no
// label) is not gone.
func ownerGone(owner string) bool {
	parts := strings.Split(owner, "/")
	if len(parts) != 4 {
		return false
	}
	self := strings.Split(processID(os.Getpid()), "/")
	switch {
	case parts[0] != self[0]:
		return true
	case parts[1] != self[1]:
		return false
	}
	pid, err := strconv.Atoi(parts[2])
	return err == nil && startTime(pid) != parts[3]
}
