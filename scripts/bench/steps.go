package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// Step names, in report order.
const (
	stepLimit    = "machine limit"
	stepBuild    = "build"
	stepServe    = "serve start-up"
	stepPull     = "pull (8 clients)"
	stepPush     = "push"
	stepRepush   = "re-push"
	stepImport   = "import"
	stepReimport = "re-import"
)

// row is one tool in one step of the results.
type row struct {
	step, tool string
	cmd        string   // what runs, for the report
	samples    []sample // timed runs
	bytes      int64    // bytes one run moves (for MB/s); 0 for none
	rssKB      int64    // peak RSS measured outside the runs (a server), or 0
	err        string   // why samples are missing: "not available ..." or a failure
}

func (b *bench) addRow(step, tool, cmd string, bytes int64) *row {
	r := &row{step: step, tool: tool, cmd: cmd, bytes: bytes}
	b.rows = append(b.rows, r)
	return r
}

func (b *bench) findRow(step, tool string) *row {
	for _, r := range b.rows {
		if r.step == step && r.tool == tool {
			return r
		}
	}
	return nil
}

// trial is one tool's turn in a step: one run of it, which may time several
// steps (push, then re-push into the same registry).
type trial struct {
	tool string
	run  func(ctx context.Context) (map[string]sample, error)
}

// alternate runs each trial b.runs times, tool after tool, rotating the
// order from one round to the next so that no tool always runs first (on a
// cold cache) or last, and records the samples in the rows of steps. A tool
// that fails is not run again; its rows say why.
func (b *bench) alternate(ctx context.Context, steps []string, trials []trial) error {
	failed := map[string]bool{}
	for round := 0; round < b.runs; round++ {
		for i := range trials {
			t := trials[(i+round)%len(trials)]
			if failed[t.tool] {
				continue
			}
			res, err := t.run(ctx)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				failed[t.tool] = true
				msg := "failed: " + err.Error()
				b.logf("%s: %s", t.tool, msg)
				for _, step := range steps {
					b.findRow(step, t.tool).err = msg
				}
				continue
			}
			for _, step := range steps {
				s, ok := res[step]
				if !ok {
					continue
				}
				r := b.findRow(step, t.tool)
				r.samples = append(r.samples, s)
				b.logf("%s, %s, round %d/%d: %.3fs, CPU %.2fs + server %.2fs, peak RSS %d MB",
					step, t.tool, round+1, b.runs, s.dur.Seconds(), s.cpu.Seconds(), s.serverCPU.Seconds(), s.rssKB/1024)
			}
		}
	}
	return nil
}

// unavailable marks the rows of a ferry command the binary lacks.
func (b *bench) unavailable(command string, rows ...*row) bool {
	if b.ferryOK[command] {
		return false
	}
	for _, r := range rows {
		r.err = fmt.Sprintf("not available (no `ferry %s` in this build)", command)
	}
	return true
}

// machineLimits measures what this machine does with the bundle's bytes
// without ferry: hash them, read them, copy them.
func (b *bench) machineLimits(ctx context.Context) error {
	b.addRow(stepLimit, "sha256 in Go", "read + sha256 of the bundle in one goroutine", b.bundleSize)
	b.addRow(stepLimit, "cat", "cat bundle > /dev/null", b.bundleSize)
	b.addRow(stepLimit, "cp", "cp bundle copy.tar && sync copy.tar", b.bundleSize)
	b.addRow(stepLimit, "sendfile", "the bundle over a loopback TCP connection: io.Copy from the file (sendfile) to a reader that discards; CPU of the sending thread", b.bundleSize)
	dst := filepath.Join(b.work, "copy.tar")
	return b.alternate(ctx, []string{stepLimit}, []trial{
		{"sha256 in Go", func(context.Context) (map[string]sample, error) {
			before := selfCPU()
			s, err := b.measure(nil, func(*meter) error { return hashFile(b.bundle) })
			s.cpu = selfCPU() - before
			return map[string]sample{stepLimit: s}, err
		}},
		{"cat", func(ctx context.Context) (map[string]sample, error) {
			s, err := b.measure(nil, func(m *meter) error {
				return m.run(ctx, "sh", "-c", `cat "$1" > /dev/null`, "sh", b.bundle)
			})
			return map[string]sample{stepLimit: s}, err
		}},
		{"sendfile", func(context.Context) (map[string]sample, error) {
			var cpu time.Duration
			s, err := b.measure(nil, func(*meter) (err error) {
				cpu, err = b.sendfileLimit()
				return err
			})
			s.cpu = cpu
			return map[string]sample{stepLimit: s}, err
		}},
		{"cp", func(ctx context.Context) (map[string]sample, error) {
			s, err := b.measure(nil, func(m *meter) error {
				return m.run(ctx, "sh", "-c", `cp "$1" "$2" && sync "$2"`, "sh", b.bundle, dst)
			})
			os.Remove(dst)
			return map[string]sample{stepLimit: s}, err
		}},
	})
}

// selfCPU is this process's user+system time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func hashFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(sha256.New(), f)
	return err
}

// stepBuild: the bundle from the corpus registry, by ferry (with its image
// list, which combines the pairs) and by skopeo and crane (every reference,
// both images of each pair, into one OCI layout, then tar).
func (b *bench) stepBuild(ctx context.Context) error {
	refs := b.corpus.Refs
	b.addRow(stepBuild, "ferry", fmt.Sprintf("ferry build -f images.yaml -b bundle.tar --jobs %d", b.jobs), b.corpus.Bytes)
	b.addRow(stepBuild, "skopeo", fmt.Sprintf("%d × skopeo copy --all docker://REF oci:layout:REF; tar -cf", len(refs)), b.corpus.Bytes)
	b.addRow(stepBuild, "crane", fmt.Sprintf("crane pull --format=oci --annotate-ref REF×%d layout; tar -cf", len(refs)), b.corpus.Bytes)
	dir := filepath.Join(b.work, "build")
	once := func(fn func(m *meter) error) (map[string]sample, error) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		s, err := b.measure(b.src.proc, fn)
		return map[string]sample{stepBuild: s}, err
	}
	layout, tarball := filepath.Join(dir, "layout"), filepath.Join(dir, "bundle.tar")
	tarLayout := func(ctx context.Context, m *meter) error { return m.run(ctx, "tar", "-cf", tarball, "-C", layout, ".") }
	return b.alternate(ctx, []string{stepBuild}, []trial{
		{"ferry", func(ctx context.Context) (map[string]sample, error) {
			return once(func(m *meter) error { return m.run(ctx, b.ferry, b.ferryBuildArgs(tarball)...) })
		}},
		{"skopeo", func(ctx context.Context) (map[string]sample, error) {
			return once(func(m *meter) error {
				for _, ref := range refs {
					if err := m.run(ctx, "skopeo", "copy", "--all", "--quiet", "--src-tls-verify=false", "docker://"+ref, "oci:"+layout+":"+ref); err != nil {
						return err
					}
				}
				return tarLayout(ctx, m)
			})
		}},
		{"crane", func(ctx context.Context) (map[string]sample, error) {
			return once(func(m *meter) error {
				args := append([]string{"pull", "--insecure", "--format=oci", "--annotate-ref"}, refs...)
				if err := m.run(ctx, b.crane, append(args, layout)...); err != nil {
					return err
				}
				return tarLayout(ctx, m)
			})
		}},
	})
}

// prepareServed fills a docker-registry storage with the bundle's images,
// once: the peer of `ferry serve` for start-up and pulls. ferry push does it
// when it works, skopeo otherwise.
func (b *bench) prepareServed(ctx context.Context) error {
	b.served = filepath.Join(b.work, "served-storage")
	srv, err := b.startRegistry(ctx, b.served)
	if err != nil {
		return err
	}
	defer srv.stop()
	if b.ferryOK["push"] {
		err := b.exec(ctx, b.ferry, "push", b.bundle, "--to", srv.host, "--plain-http", "--jobs", fmt.Sprint(b.jobs))
		if err == nil || ctx.Err() != nil {
			return errors.Join(err, b.checkCatalog(ctx, srv.host))
		}
		b.note("ferry push could not fill the docker-registry for the serve and pull steps (skopeo did): %v", firstLineOf(err))
	}
	for _, img := range b.images {
		if err := b.exec(ctx, "skopeo", "copy", "--all", "--quiet", "--dest-tls-verify=false", "oci:"+b.layout+":"+img.name, "docker://"+srv.host+"/"+img.path); err != nil {
			return err
		}
	}
	return b.checkCatalog(ctx, srv.host)
}

// stepServe: from nothing to the first 200 on /v2/. ferry serves the
// bundle as it is; the peer extracts it (tar -x) and starts docker-registry
// on a storage that already holds the images (prepareServed). Turning an
// extracted OCI layout into distribution's storage is a push and is not
// counted, so the peer's time is a lower bound.
func (b *bench) stepServe(ctx context.Context) error {
	if err := b.prepareServed(ctx); err != nil {
		return err
	}
	fr := b.addRow(stepServe, "ferry", "ferry serve bundle.tar --listen 127.0.0.1:0 --plain-http, until GET /v2/ is 200", 0)
	b.addRow(stepServe, "docker-registry", "tar -xf bundle.tar; docker-registry serve (storage prepared once), until GET /v2/ is 200", 0)
	trials := []trial{{"docker-registry", func(ctx context.Context) (map[string]sample, error) {
		dir, err := os.MkdirTemp(b.work, "extract-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		var srv *server
		s, err := b.measure(nil, func(m *meter) error {
			if err := m.run(ctx, "tar", "-xf", b.bundle, "-C", dir); err != nil {
				return err
			}
			srv, err = b.startRegistry(ctx, b.served)
			return err
		})
		if srv != nil {
			s.rssKB, s.cpu = max(s.rssKB, srv.peakRSSKB()), s.cpu+srv.cpuTime()
			srv.stop()
		}
		return map[string]sample{stepServe: s}, err
	}}}
	if !b.unavailable("serve", fr) {
		trials = append(trials, trial{"ferry", func(ctx context.Context) (map[string]sample, error) {
			var srv *server
			s, err := b.measure(nil, func(*meter) error {
				var err error
				srv, err = b.startFerryServe(ctx, false)
				return err
			})
			if srv != nil {
				s.rssKB, s.cpu = srv.peakRSSKB(), srv.cpuTime()
				srv.stop()
			}
			return map[string]sample{stepServe: s}, err
		}})
	}
	return b.alternate(ctx, []string{stepServe}, trials)
}

// stepPull: every image of the bundle pulled (skopeo copy --all into an OCI
// layout per client) by b.jobs parallel clients, from ferry serve and from
// docker-registry holding the same images.
func (b *bench) stepPull(ctx context.Context) error {
	clients := b.jobs
	what := fmt.Sprintf("%d parallel clients, each: skopeo copy --all docker://%%s/PATH oci:dir:PATH for its share of the %d images", clients, len(b.images))
	fr := b.addRow(stepPull, "ferry", fmt.Sprintf(what, "FERRY-SERVE"), 0)
	dr := b.addRow(stepPull, "docker-registry", fmt.Sprintf(what, "DOCKER-REGISTRY"), 0)

	pull := func(tool string, r *row, srv *server) trial {
		return trial{tool, func(ctx context.Context) (map[string]sample, error) {
			dir := filepath.Join(b.work, "pull")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, err
			}
			defer os.RemoveAll(dir)
			s, err := b.measure(srv.proc, func(m *meter) error {
				g, gctx := errgroup.WithContext(ctx)
				for c := 0; c < clients; c++ {
					g.Go(func() error {
						for i := c; i < len(b.images); i += clients {
							img := b.images[i]
							dst := fmt.Sprintf("oci:%s/client-%d:%s", dir, c, img.path)
							if err := m.run(gctx, "skopeo", "copy", "--all", "--quiet", "--src-tls-verify=false", "docker://"+srv.host+"/"+img.path, dst); err != nil {
								return err
							}
						}
						return nil
					})
				}
				return g.Wait()
			})
			if err == nil {
				r.bytes = dirBytes(dir)
			}
			s.rssKB = 0 // the clients'; the row shows the server's
			return map[string]sample{stepPull: s}, err
		}}
	}
	reg, err := b.startRegistry(ctx, b.served)
	if err != nil {
		return err
	}
	defer reg.stop()
	trials := []trial{pull("docker-registry", dr, reg)}
	var ferrySrv *server
	if !b.unavailable("serve", fr) {
		if ferrySrv, err = b.startFerryServe(ctx, false); err != nil {
			fr.err = "failed: " + err.Error()
		} else {
			defer ferrySrv.stop()
			trials = append(trials, pull("ferry", fr, ferrySrv))
		}
	}
	if err := b.alternate(ctx, []string{stepPull}, trials); err != nil {
		return err
	}
	dr.rssKB = reg.peakRSSKB()
	if ferrySrv != nil {
		fr.rssKB = ferrySrv.peakRSSKB()
	}
	return nil
}

// dirBytes is the total size of the regular files under dir.
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// stepPush: every image of the bundle into a fresh docker-registry, then
// the same again (everything present). skopeo and crane read the extracted
// bundle (extraction not counted): skopeo image by image from the OCI
// layout, crane image by image from one-image layouts that share its blobs.
func (b *bench) stepPush(ctx context.Context) error {
	n := len(b.images)
	fp := b.addRow(stepPush, "ferry", fmt.Sprintf("ferry push bundle.tar --to HOST --plain-http --jobs %d", b.jobs), b.bundleSize)
	b.addRow(stepPush, "skopeo", fmt.Sprintf("%d × skopeo copy --all oci:layout:NAME docker://HOST/PATH", n), b.bundleSize)
	b.addRow(stepPush, "crane", fmt.Sprintf("%d × crane push one-image-layout HOST/PATH", n), b.bundleSize)
	fr := b.addRow(stepRepush, "ferry", "the same ferry push again", 0)
	b.addRow(stepRepush, "skopeo", "the same skopeo copies again", 0)
	b.addRow(stepRepush, "crane", "the same crane pushes again", 0)

	layouts, err := b.oneImageLayouts()
	if err != nil {
		return err
	}
	twice := func(tool string, push func(ctx context.Context, m *meter, host string) error) trial {
		return trial{tool, func(ctx context.Context) (map[string]sample, error) {
			storage, err := os.MkdirTemp(b.work, "push-storage-")
			if err != nil {
				return nil, err
			}
			defer os.RemoveAll(storage)
			srv, err := b.startRegistry(ctx, storage)
			if err != nil {
				return nil, err
			}
			defer srv.stop()
			res := map[string]sample{}
			for _, step := range []string{stepPush, stepRepush} {
				s, err := b.measure(srv.proc, func(m *meter) error { return push(ctx, m, srv.host) })
				if err != nil {
					return nil, fmt.Errorf("%s: %w", step, err)
				}
				if err := b.checkCatalog(ctx, srv.host); err != nil {
					return nil, fmt.Errorf("%s: %w", step, err)
				}
				res[step] = s
			}
			return res, nil
		}}
	}
	trials := []trial{
		twice("skopeo", func(ctx context.Context, m *meter, host string) error {
			for _, img := range b.images {
				if err := m.run(ctx, "skopeo", "copy", "--all", "--quiet", "--dest-tls-verify=false", "oci:"+b.layout+":"+img.name, "docker://"+host+"/"+img.path); err != nil {
					return err
				}
			}
			return nil
		}),
		twice("crane", func(ctx context.Context, m *meter, host string) error {
			for i, img := range b.images {
				if err := m.run(ctx, b.crane, "push", "--insecure", layouts[i], host+"/"+img.path); err != nil {
					return err
				}
			}
			return nil
		}),
	}
	if !b.unavailable("push", fp, fr) {
		trials = append(trials, twice("ferry", func(ctx context.Context, m *meter, host string) error {
			return m.run(ctx, b.ferry, "push", b.bundle, "--to", host, "--plain-http", "--jobs", fmt.Sprint(b.jobs))
		}))
	}
	return b.alternate(ctx, []string{stepPush, stepRepush}, trials)
}

// oneImageLayouts makes, for each image of the bundle, an OCI layout whose
// index.json holds that image only and whose blobs are the extracted
// bundle's (a symlink): what `crane push` takes.
func (b *bench) oneImageLayouts() ([]string, error) {
	data, err := os.ReadFile(filepath.Join(b.layout, "index.json"))
	if err != nil {
		return nil, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, err
	}
	byName := map[string]ocispec.Descriptor{}
	for _, d := range idx.Manifests {
		byName[d.Annotations[ocispec.AnnotationRefName]] = d
	}
	var dirs []string
	for i, img := range b.images {
		d, ok := byName[img.name]
		if !ok {
			return nil, fmt.Errorf("%s: not in the extracted bundle's index.json", img.name)
		}
		dir := filepath.Join(b.work, "crane-layouts", fmt.Sprint(i))
		one, err := json.Marshal(ocispec.Index{Versioned: idx.Versioned, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{d}})
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "index.json"), one, 0o644); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
			return nil, err
		}
		if err := os.Symlink(filepath.Join(b.layout, "blobs"), filepath.Join(dir, "blobs")); err != nil {
			return nil, err
		}
		dirs = append(dirs, dir)
	}
	return dirs, nil
}

// checkCatalog makes sure a push reached the registry: every repository of
// the bundle is in its catalog.
func (b *bench) checkCatalog(ctx context.Context, host string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/v2/_catalog?n=1000", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: b.transport, Timeout: time.Minute}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("catalog of %s: %s", host, resp.Status)
	}
	var cat struct{ Repositories []string }
	if err := json.NewDecoder(resp.Body).Decode(&cat); err != nil {
		return fmt.Errorf("catalog of %s: %w", host, err)
	}
	have := map[string]bool{}
	for _, r := range cat.Repositories {
		have[r] = true
	}
	for _, img := range b.images {
		repo, _, _ := strings.Cut(img.path, ":")
		if !have[repo] {
			return fmt.Errorf("after the push, %s lacks repository %s", host, repo)
		}
	}
	return nil
}

// stepImport: the bundle into a fresh containerd (all platforms, no
// unpack), then the same again (everything present).
func (b *bench) stepImport(ctx context.Context) error {
	const ns = "bench"
	fi := b.addRow(stepImport, "ferry", "ferry import bundle.tar --address SOCK --namespace bench --all-platforms --no-unpack", b.bundleSize)
	ci := b.addRow(stepImport, "ctr", "ctr --address SOCK -n bench images import --all-platforms --no-unpack bundle.tar", b.bundleSize)
	fr := b.addRow(stepReimport, "ferry", "the same ferry import again", 0)
	cr := b.addRow(stepReimport, "ctr", "the same ctr import again", 0)
	if os.Geteuid() != 0 {
		for _, r := range []*row{fi, ci, fr, cr} {
			r.err = "not available (containerd needs root)"
		}
		return nil
	}
	twice := func(tool string, args func(sock string) []string) trial {
		return trial{tool, func(ctx context.Context) (map[string]sample, error) {
			c, err := b.startContainerd(ctx)
			if err != nil {
				return nil, err
			}
			defer c.remove()
			res := map[string]sample{}
			for _, step := range []string{stepImport, stepReimport} {
				a := args(c.socket)
				s, err := b.measure(c.proc, func(m *meter) error { return m.run(ctx, a[0], a[1:]...) })
				if err != nil {
					return nil, fmt.Errorf("%s: %w", step, err)
				}
				if err := b.checkImages(ctx, c.socket, ns); err != nil {
					return nil, fmt.Errorf("%s: %w", step, err)
				}
				res[step] = s
			}
			return res, nil
		}}
	}
	trials := []trial{twice("ctr", func(sock string) []string {
		return []string{"ctr", "--address", sock, "-n", ns, "images", "import", "--all-platforms", "--no-unpack", b.bundle}
	})}
	if !b.unavailable("import", fi, fr) {
		trials = append(trials, twice("ferry", func(sock string) []string {
			return []string{b.ferry, "import", b.bundle, "--address", sock, "--namespace", ns, "--all-platforms", "--no-unpack"}
		}))
	}
	return b.alternate(ctx, []string{stepImport, stepReimport}, trials)
}

// checkImages makes sure an import reached containerd: every image of the
// bundle has a record (tools may add more, e.g. by-digest names).
func (b *bench) checkImages(ctx context.Context, socket, ns string) error {
	out, err := execOutput(ctx, "ctr", "--address", socket, "-n", ns, "images", "ls", "-q")
	if err != nil {
		return fmt.Errorf("ctr images ls: %v: %s", err, out)
	}
	have := map[string]bool{}
	for _, n := range strings.Fields(out) {
		have[n] = true
	}
	for _, img := range b.images {
		if !have[img.name] {
			return fmt.Errorf("after the import, containerd lacks image %s", img.name)
		}
	}
	return nil
}

// firstLineOf is the first line of an error, for notes.
func firstLineOf(err error) string {
	line, _, _ := strings.Cut(err.Error(), "\n")
	return line
}
