package installer_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/installer"
	"github.com/ferry-oci/ferry/internal/remote"
	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
	"github.com/ferry-oci/ferry/manifests"
)

// faultBundle holds n images in n repositories: single images and
// two-platform indexes, all sharing the busybox layer, each with a small
// layer of its own.
func faultBundle(t *testing.T, n int) *bundle.Reader {
	t.Helper()
	images := map[string]testbundle.Image{}
	for i := range n {
		name := fmt.Sprintf("docker.io/library/img%02d:1", i)
		if i%4 == 0 {
			images[name] = testimages.Index(t, twoPlatforms, testimages.WithRandomLayers(1, 2<<10))
		} else {
			images[name] = testimages.Image(t, "linux/amd64", testimages.WithRandomLayers(1, 2<<10))
		}
	}
	return testbundle.Open(t, testbundle.Write(t, filepath.Join(t.TempDir(), "bundle.tar"), images))
}

// checkPullable pulls the image at path straight from reg (no proxy) and
// checks its digest, then every blob's digest and size with
// go-containerregistry's validate (indexes down to every layer).
func checkPullable(t *testing.T, reg *testenv.RegistryServer, path string, want digest.Digest) {
	t.Helper()
	desc, err := ggcr.Get(ref(t, reg, path), ggcr.WithTransport(reg.Transport()))
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	if desc.Digest.String() != want.String() {
		t.Errorf("%s: digest %s, want %s", path, desc.Digest, want)
	}
	if manifests.IsIndex(string(desc.MediaType)) {
		idx, err := desc.ImageIndex()
		if err == nil {
			err = validate.Index(idx)
		}
		if err != nil {
			t.Errorf("%s: %v", path, err)
		}
		return
	}
	img, err := desc.Image()
	if err == nil {
		err = validate.Image(img)
	}
	if err != nil {
		t.Errorf("%s: %v", path, err)
	}
}

// pushThroughFaults pushes r through a fault proxy failing rate of the
// requests, seeded; it checks that every image reported pushed pulls whole
// from the registry and that every failed one names itself, and returns
// the result and the number of failed images.
func pushThroughFaults(t *testing.T, reg *testenv.RegistryServer, r *bundle.Reader, rate float64, seed uint64) (*installer.PushResult, int) {
	t.Helper()
	proxy := testenv.StartFaultProxy(t, reg, rate, seed)
	prefix := fmt.Sprintf("faults%d-%d", int(rate*100), seed)
	res, err := installer.Push(context.Background(), r, pushOptions(reg, proxy.Host, prefix))
	if res == nil {
		t.Fatalf("push through %.0f%% faults (seed %d): no result: %v (proxy: %s)", rate*100, seed, err, proxy.Report())
	}
	failed := res.Failed()
	t.Logf("%.0f%% faults, seed %d: %d images pushed, %d failed, %d requests retried, %v; proxy: %s",
		rate*100, seed, len(res.Images)-len(failed), len(failed), res.Retried, res.Duration.Round(1e6), proxy.Report())
	if got, failed := proxy.Requests("GET /v2/"); got-failed != 1 {
		t.Errorf("the registry answered GET /v2/ %d times, want once (the answer is kept for the push)", got-failed)
	}
	for _, img := range res.Images {
		_, repo, tag, _ := manifests.SplitReference(img.Name)
		if img.Err != nil {
			t.Logf("  %s: %v", img.Name, img.Err)
			continue
		}
		checkPullable(t, reg, prefix+"/"+repo+":"+tag, img.Digest)
	}
	return res, len(failed)
}

// TestPushThroughFaults: a push through 5% faults (500, 503, 429 with
// Retry-After, connection resets before and after the registry handled
// the request, on every request kind, GET /v2/ included) completes, every
// image pullable with its digest, over several seeds.
func TestPushThroughFaults(t *testing.T) {
	reg := testenv.Registry(t)
	r := faultBundle(t, 20)
	for _, seed := range []uint64{1, 2, 3, 4} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			if _, failed := pushThroughFaults(t, reg, r, 0.05, seed); failed > 0 {
				t.Errorf("%d images failed", failed)
			}
		})
	}
}

// TestPushFaultReport reports pushes through 5% and 20% faults (images
// pushed and failed, requests retried): whatever fails is named, and
// whatever is reported pushed is there, whole.
func TestPushFaultReport(t *testing.T) {
	reg := testenv.Registry(t)
	r := faultBundle(t, 20)
	for _, rate := range []float64{0.05, 0.20} {
		for _, seed := range []uint64{11, 12} {
			t.Run(fmt.Sprintf("%.0f%% seed %d", rate*100, seed), func(t *testing.T) {
				pushThroughFaults(t, reg, r, rate, seed)
			})
		}
	}
}

// TestPushRetries: a registry that keeps failing GET /v2/ is reported
// unreachable after the policy's attempts, never as speaking plain HTTP;
// a 429's Retry-After is waited for.
func TestPushRetries(t *testing.T) {
	reg := testenv.Registry(t)
	proxy := newRegProxy(t, reg)
	r := faultBundle(t, 2)

	t.Run("failing ping is not plain HTTP", func(t *testing.T) {
		var pings atomic.Int32
		proxy.setHook(func(w http.ResponseWriter, req *http.Request) bool {
			if req.URL.Path != "/v2/" {
				return false
			}
			pings.Add(1)
			http.Error(w, "injected", http.StatusServiceUnavailable)
			return true
		})
		defer proxy.setHook(nil)
		o := pushOptions(reg, proxy.Host, "ping")
		o.Retry = remote.RetryPolicy{Attempts: 3}
		_, err := installer.Push(context.Background(), r, o)
		if !errors.Is(err, manifests.ErrUnreachable) || errors.Is(err, manifests.ErrPlainHTTP) || strings.Contains(err.Error(), "plain-http") {
			t.Errorf("push: %v; want manifests.ErrUnreachable, with no word of plain HTTP", err)
		}
		if got := pings.Load(); got != 3 {
			t.Errorf("GET /v2/ sent %d times, want 3 (the policy's attempts)", got)
		}
	})

	t.Run("Retry-After is honoured", func(t *testing.T) {
		var (
			mu    sync.Mutex
			first string // the URL path refused
			times []time.Time
		)
		proxy.setHook(func(w http.ResponseWriter, req *http.Request) bool {
			mu.Lock()
			defer mu.Unlock()
			if req.Method != http.MethodHead || (first != "" && req.URL.Path != first) {
				return false
			}
			first = req.URL.Path
			times = append(times, time.Now())
			if len(times) > 1 {
				return false
			}
			w.Header().Set("Retry-After", "2")
			http.Error(w, "injected", http.StatusTooManyRequests)
			return true
		})
		defer proxy.setHook(nil)
		res := mustPush(t, r, pushOptions(reg, proxy.Host, "after"))
		mu.Lock()
		defer mu.Unlock()
		if gap := times[1].Sub(times[0]); gap < 2*time.Second {
			t.Errorf("HEAD retried after %v, want the 2s Retry-After asked", gap)
		}
		if res.Retried != 1 {
			t.Errorf("%d requests retried, want 1", res.Retried)
		}
	})

	t.Run("the timeout ends the retries", func(t *testing.T) {
		proxy.setHook(func(w http.ResponseWriter, req *http.Request) bool {
			if req.Method != http.MethodHead {
				return false
			}
			http.Error(w, "injected", http.StatusServiceUnavailable)
			return true
		})
		defer proxy.setHook(nil)
		o := pushOptions(reg, proxy.Host, "timeout")
		o.Timeout = 2 * time.Second
		res, err := installer.Push(context.Background(), r, o)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timeout") {
			t.Errorf("push: %v; want the timeout named", err)
		}
		if res == nil || len(res.Failed()) != len(res.Images) {
			t.Errorf("result %+v: want every image failed", res)
		}
	})
}
