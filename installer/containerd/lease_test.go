package containerd

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	ctdclient "github.com/containerd/containerd"
	"github.com/containerd/containerd/leases"
	"github.com/containerd/containerd/namespaces"

	"github.com/ferry-oci/ferry/internal/testenv"
)

// TestRemoveStaleLeases puts leases in a real containerd: import leases of
// this (live) process, of a process that ended, of a machine boot that is
// over and of another PID namespace, and a lease another tool made. Only
// the ended process's and the old boot's are removed.
func TestRemoveStaleLeases(t *testing.T) {
	ctd := testenv.Containerd(t)
	client, err := ctdclient.New(ctd.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := namespaces.WithNamespace(context.Background(), "stale")
	lm := client.LeasesService()

	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	ended := processID(sleep.Process.Pid)
	sleep.Process.Kill()
	sleep.Wait()
	self := strings.Split(processID(os.Getpid()), "/")
	otherBoot := strings.Join(append([]string{"00000000-0000-0000-0000-000000000000"}, self[1:]...), "/")
	otherNS := strings.Join([]string{self[0], "pid:[1]", self[2], self[3]}, "/")
	for id, labels := range map[string]map[string]string{
		importLeasePrefix + "live":       {importLeaseOwner: processID(os.Getpid())},
		importLeasePrefix + "ended":      {importLeaseOwner: ended},
		importLeasePrefix + "other-boot": {importLeaseOwner: otherBoot},
		importLeasePrefix + "other-ns":   {importLeaseOwner: otherNS},
		"another-tool":                   {importLeaseOwner: ended},
	} {
		if _, err := lm.Create(ctx, leases.WithID(id), leases.WithLabels(labels), leases.WithExpiration(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := removeStaleLeases(ctx, lm)
	if err != nil {
		t.Fatal(err)
	}
	all, err := lm.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, l := range all {
		left = append(left, l.ID)
	}
	slices.Sort(left)
	want := []string{"another-tool", importLeasePrefix + "live", importLeasePrefix + "other-ns"}
	if n != 2 || !slices.Equal(left, want) {
		t.Errorf("removed %d, left %v; want 2 removed, %v left", n, left, want)
	}
}
