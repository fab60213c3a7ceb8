package installer_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/installer"
	"github.com/ferry-oci/ferry/installer/containerd"
	"github.com/ferry-oci/ferry/internal/remote"
	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
	"github.com/ferry-oci/ferry/registry"
)

// installBundle writes a small release: a multi-arch busybox image from
// docker.io and a single-arch tool from quay.io.
func installBundle(t *testing.T) *bundle.Reader {
	t.Helper()
	path := testbundle.Write(t, filepath.Join(t.TempDir(), "release.tar"), map[string]testbundle.Image{
		"docker.io/ferrytest/busybox:1.36": testimages.Index(t, []string{"linux/amd64", "linux/arm64"}),
		"quay.io/ferrytest/tool:1":         testimages.Image(t, "linux/amd64", testimages.WithRandomLayers(1, 4096)),
	})
	r, err := bundle.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestInstall runs the whole flow against a real containerd of each
// release line (1.6 and 2.x) and a real docker-registry, and checks it as a
// node and an operator would. Each containerd gets its CRI registry
// config_path only from the config ferry prints for its version
// (ContainerdRegistryConfig, `ferry mirror-config --print-containerd-config`).
func TestInstall(t *testing.T) {
	for _, v := range testenv.ContainerdVersions {
		t.Run(v.String(), func(t *testing.T) { testInstall(t, v) })
	}
}

// nodeContainerd starts a containerd of version v whose CRI reads the
// hosts.toml files of the returned directory, as configured by the config
// ferry prints for the version `containerd --version` reports.
func nodeContainerd(t *testing.T, v testenv.ContainerdVersion) (*testenv.ContainerdServer, string) {
	t.Helper()
	_, major, err := containerd.BinaryVersion(context.Background(), testenv.ContainerdBinaries(t, v).Containerd)
	if err != nil {
		t.Fatal(err)
	}
	certs := t.TempDir()
	conf, err := installer.ContainerdRegistryConfig(major, certs)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ferry.toml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return testenv.StartContainerd(t, testenv.ContainerdOptions{Version: v, RegistryConfig: path}), certs
}

func testInstall(t *testing.T, v testenv.ContainerdVersion) {
	ctd, certs := nodeContainerd(t, v)
	target := testenv.Registry(t)
	r := installBundle(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	steps := make(chan installer.StepResult, 16)
	type outcome struct {
		res *installer.InstallResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := installer.Install(ctx, r, installer.InstallOptions{
			Listener: ln,
			Serve:    registry.Options{},
			Mirror:   installer.MirrorOptions{Mirrors: []string{"docker.io", "quay.io"}, Dir: certs},
			Import:   &containerd.ImportOptions{Address: ctd.Address, Images: []string{"docker.io/ferrytest/busybox:1.36"}},
			Push:     &installer.PushOptions{Options: remote.Options{PlainHTTP: true}, To: target.Host + "/mirror"},
			StepDone: func(s installer.StepResult) {
				steps <- s
			},
		})
		done <- outcome{res, err}
	}()
	waitServing(t, steps)

	busybox, err := r.Image("docker.io/ferrytest/busybox:1.36")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("ctr pulls through the written hosts.toml", func(t *testing.T) {
		ctd.Ctr(t, "-n", "mirror", "images", "pull", "--hosts-dir", certs, "docker.io/ferrytest/busybox:1.36")
		listed := ctd.Ctr(t, "-n", "mirror", "images", "ls")
		if !strings.Contains(listed, busybox.Descriptor.Digest.String()) {
			t.Errorf("pulled image does not carry the bundle's digest %s:\n%s", busybox.Descriptor.Digest, listed)
		}
	})

	t.Run("the CRI plugin pulls through config_path", func(t *testing.T) {
		if listed := ctd.Ctr(t, "-n", "k8s.io", "images", "ls", "-q"); strings.Contains(listed, "quay.io/ferrytest/tool") {
			t.Fatalf("the tool image was imported, so a pull would not prove the mirror:\n%s", listed)
		}
		conn, err := grpc.NewClient("unix://"+ctd.Address, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
		defer pcancel()
		resp, err := runtimeapi.NewImageServiceClient(conn).PullImage(pctx, &runtimeapi.PullImageRequest{
			Image: &runtimeapi.ImageSpec{Image: "quay.io/ferrytest/tool:1"},
		})
		if err != nil {
			t.Fatalf("CRI PullImage through the mirror: %v", err)
		}
		if resp.ImageRef == "" {
			t.Error("CRI PullImage returned no image ref")
		}
	})

	t.Run("imported image complete, seen by the CRI, runs", func(t *testing.T) {
		ctd.CheckComplete(t, "k8s.io", containerd.DefaultSnapshotter, []string{"docker.io/ferrytest/busybox:1.36"}, true)
		ctd.WaitCRIImages(t, []string{"docker.io/ferrytest/busybox:1.36", "docker.io/ferrytest/busybox@" + busybox.Descriptor.Digest.String()})
		out := ctd.Ctr(t, "-n", "k8s.io", "run", "--rm", "docker.io/ferrytest/busybox:1.36", testenv.ContainerID("install-run"), "/bin/echo", "installed by ferry")
		if !strings.Contains(out, "installed by ferry") {
			t.Errorf("container printed %q", out)
		}
	})

	t.Run("target registry holds every index with its digest", func(t *testing.T) {
		for _, img := range r.Images() {
			path := strings.SplitN(img.Name, "/", 2)[1]
			raw := testenv.Skopeo(t, append([]string{"inspect", "--raw"}, append(target.SkopeoFlags(""), "docker://"+target.Ref("mirror/"+path))...)...)
			if got := digest.FromString(raw); got != img.Descriptor.Digest {
				t.Errorf("%s: target has %s, bundle %s", img.Name, got, img.Descriptor.Digest)
			}
		}
	})

	cancel()
	out := <-done
	if out.err != nil {
		t.Fatalf("install: %v", out.err)
	}
	want := []string{installer.StepVerify, installer.StepServe, installer.StepMirror, installer.StepImport, installer.StepPush, installer.StepServe}
	if len(out.res.Steps) != len(want) {
		t.Fatalf("steps %+v, want %v", out.res.Steps, want)
	}
	for i, s := range out.res.Steps {
		if s.Name != want[i] || s.Error != "" {
			t.Errorf("step %d: %s %q, want %s ok", i, s.Name, s.Error, want[i])
		}
	}
}

// TestInstallStepFails checks that a failed step is reported, the other
// steps still run, and the error names it.
func TestInstallStepFails(t *testing.T) {
	ctd := testenv.Containerd(t)
	r := installBundle(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()

	res, err := installer.Install(context.Background(), r, installer.InstallOptions{
		VerifyFull: true,
		Push:       &installer.PushOptions{Options: remote.Options{PlainHTTP: true}, To: down},
		Import:     &containerd.ImportOptions{Address: ctd.Address, NoUnpack: true},
	})
	if !errors.Is(err, installer.ErrStepsFailed) || !strings.Contains(err.Error(), "push failed") {
		t.Fatalf("error %v, want the push step named as failed", err)
	}
	var failed []string
	for _, s := range res.Failed() {
		failed = append(failed, s.Name)
	}
	if len(failed) != 1 || failed[0] != installer.StepPush {
		t.Errorf("failed steps %v, want [push]", failed)
	}
	if listed := ctd.Ctr(t, "-n", "k8s.io", "images", "ls", "-q"); !strings.Contains(listed, "docker.io/ferrytest/busybox:1.36") {
		t.Errorf("import did not run after the push failed:\n%s", listed)
	}
}

// waitServing waits until Install has run its steps and serves on,
// failing the test on any failed step.
func waitServing(t *testing.T, steps <-chan installer.StepResult) {
	t.Helper()
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case s := <-steps:
			t.Logf("step %s: %s %s", s.Name, s.Summary, s.Error)
			if s.Error != "" {
				t.Fatalf("step %s failed: %s", s.Name, s.Error)
			}
			if s.Name == installer.StepServe && strings.HasPrefix(s.Summary, "steps done") {
				return
			}
		case <-timeout:
			t.Fatal("install did not finish its steps in 2 minutes")
		}
	}
}
