package testenv

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// criListTimeout bounds how long WaitCRIImages waits for the CRI to list
// an image: the CRI learns of images from containerd's events.
const criListTimeout = 15 * time.Second

// CtrRows runs ctr and splits its output into fields, without the header.
func (c *ContainerdServer) CtrRows(t testing.TB, args ...string) [][]string {
	t.Helper()
	var rows [][]string
	for _, line := range strings.Split(c.Ctr(t, args...), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == "REF" || f[0] == "DIGEST" {
			continue
		}
		rows = append(rows, f)
	}
	return rows
}

// CheckComplete checks with `ctr images check` (the node's platform) that
// each image of namespace ns is complete, and unpacked into snapshotter
// when unpacked is set.
func (c *ContainerdServer) CheckComplete(t testing.TB, ns, snapshotter string, names []string, unpacked bool) {
	t.Helper()
	rows := map[string][]string{}
	for _, f := range c.CtrRows(t, "-n", ns, "images", "check", "--snapshotter", snapshotter) {
		rows[f[0]] = f
	}
	for _, name := range names {
		f := rows[name]
		switch {
		case len(f) < 6:
			t.Errorf("ctr images check has no %s", name)
		case f[3] != "complete" || (unpacked && f[len(f)-1] != "true"):
			t.Errorf("ctr images check: %s", strings.Join(f, " "))
		}
	}
}

// WaitCRIImages waits until the CRI image service (the kubelet's view)
// lists every one of refs as a repo tag or repo digest of an image, and
// fails the test when it does not within 15s.
func (c *ContainerdServer) WaitCRIImages(t testing.TB, refs []string) {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+c.Address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cri := runtimeapi.NewImageServiceClient(conn)
	for deadline := time.Now().Add(criListTimeout); ; time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := cri.ListImages(ctx, &runtimeapi.ListImagesRequest{})
		cancel()
		if err != nil {
			t.Fatalf("CRI ListImages: %v", err)
		}
		listed := map[string]bool{}
		for _, img := range resp.Images {
			for _, s := range append(img.RepoTags, img.RepoDigests...) {
				listed[s] = true
			}
		}
		var missing []string
		for _, ref := range refs {
			if !listed[ref] {
				missing = append(missing, ref)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("CRI ListImages lacks %v; it lists %v", missing, resp.Images)
		}
	}
}
