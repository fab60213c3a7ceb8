package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// clusterClients is how many clients fetch at once in "serve a cluster".
const clusterClients = 16

// stepCluster is the step's name in the report.
var stepCluster = fmt.Sprintf("serve a cluster (%d clients)", clusterClients)

// fetchTarget is how many bytes one run of "serve a cluster" fetches at
// least: every blob, as many times as that takes (at most 10).
const fetchTarget = 1e9

// stepServeCluster: clusterClients light clients (this program's fetch
// mode: GET every blob to a discarding writer, no hashing, so that the
// server is what is measured) against ferry serve over plain HTTP and
// TLS and against docker-registry holding the same images.
func (b *bench) stepServeCluster(ctx context.Context) error {
	list, bytes, err := b.fetchList(ctx)
	if err != nil {
		return err
	}
	rounds := min(10, max(1, int((fetchTarget+bytes-1)/bytes)))
	total := bytes * int64(rounds)
	what := fmt.Sprintf("%d clients GET every blob (%d, %s) %d× to io.Discard from %%s", clusterClients, countLines(list), mb(bytes), rounds)
	fr := b.addRow(stepCluster, "ferry", fmt.Sprintf(what, "ferry serve --plain-http"), total)
	tr := b.addRow(stepCluster, "ferry (TLS)", fmt.Sprintf(what, "ferry serve --tls-self-signed"), total)
	dr := b.addRow(stepCluster, "docker-registry", fmt.Sprintf(what, "docker-registry (plain HTTP)"), total)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fetch := func(tool string, srv *server) trial {
		return trial{tool, func(ctx context.Context) (map[string]sample, error) {
			s, err := b.measure(srv.proc, func(m *meter) error {
				return m.run(ctx, self, "fetch", "-list", list, "-base", srv.url, "-ca", srv.ca,
					"-clients", strconv.Itoa(clusterClients), "-rounds", strconv.Itoa(rounds))
			})
			s.rssKB = 0 // the clients'; the row shows the server's
			return map[string]sample{stepCluster: s}, err
		}}
	}
	reg, err := b.startRegistry(ctx, b.served)
	if err != nil {
		return err
	}
	defer reg.stop()
	trials := []trial{fetch("docker-registry", reg)}
	servers := map[*row]*server{dr: reg}
	if !b.unavailable("serve", fr, tr) {
		for _, s := range []struct {
			r   *row
			tls bool
		}{{fr, false}, {tr, true}} {
			srv, err := b.startFerryServe(ctx, s.tls)
			if err != nil {
				s.r.err = "failed: " + err.Error()
				continue
			}
			defer srv.stop()
			servers[s.r] = srv
			trials = append(trials, fetch(s.r.tool, srv))
		}
	}
	// One untimed fetch from each server first: the page cache is warm for
	// all, and ferry's check of each blob (once per process) is done.
	for _, srv := range servers {
		if err := b.exec(ctx, self, "fetch", "-list", list, "-base", srv.url, "-ca", srv.ca, "-clients", strconv.Itoa(clusterClients)); err != nil {
			return err
		}
	}
	if err := b.alternate(ctx, []string{stepCluster}, trials); err != nil {
		return err
	}
	for r, srv := range servers {
		r.rssKB = srv.peakRSSKB()
	}
	return nil
}

// fetchList writes, for every blob that is not an index or manifest, one
// line "REPOSITORY DIGEST SIZE" naming a repository that references it,
// and returns the file and the blobs' total size.
func (b *bench) fetchList(ctx context.Context) (string, int64, error) {
	r, err := bundle.Open(ctx, b.bundle)
	if err != nil {
		return "", 0, err
	}
	defer r.Close()
	seen := map[string]bool{}
	var lines strings.Builder
	var total int64
	for _, img := range b.images {
		bimg, err := r.Image(img.name)
		if err != nil {
			return "", 0, err
		}
		repo, _, _ := strings.Cut(img.path, ":")
		err = transfer.Walk(ctx, r, bimg.Descriptor, nil, func(desc ocispec.Descriptor, _ []byte) error {
			if !manifests.IsGraphNode(desc.MediaType) && !seen[desc.Digest.String()] {
				seen[desc.Digest.String()] = true
				total += desc.Size
				fmt.Fprintf(&lines, "%s %s %d\n", repo, desc.Digest, desc.Size)
			}
			return nil
		})
		if err != nil {
			return "", 0, err
		}
	}
	path := filepath.Join(b.work, "fetch-list.txt")
	return path, total, os.WriteFile(path, []byte(lines.String()), 0o644)
}

func countLines(path string) int {
	data, _ := os.ReadFile(path)
	return strings.Count(string(data), "\n")
}

// fetchMain is `ferry-bench fetch`: clients GET every blob of a list,
// rounds times, to a discarding writer, and check the byte counts.
func fetchMain(args []string) error {
	fs := flag.NewFlagSet("fetch", flag.ContinueOnError)
	list := fs.String("list", "", "file of REPOSITORY DIGEST SIZE lines")
	base := fs.String("base", "", "registry URL")
	ca := fs.String("ca", "", "CA certificate (PEM) of an https registry")
	clients := fs.Int("clients", clusterClients, "parallel clients")
	rounds := fs.Int("rounds", 1, "times every blob is fetched")
	if err := fs.Parse(args); err != nil {
		return err
	}
	type blob struct {
		url  string
		size int64
	}
	var blobs []blob
	f, err := os.Open(*list)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var repo, dgst string
		var size int64
		if _, err := fmt.Sscan(sc.Text(), &repo, &dgst, &size); err != nil {
			return fmt.Errorf("%s: %q: %w", *list, sc.Text(), err)
		}
		blobs = append(blobs, blob{*base + "/v2/" + repo + "/blobs/" + dgst, size})
	}
	f.Close()
	client, err := fetchClient(*ca, *clients)
	if err != nil {
		return err
	}
	var next atomic.Int64
	g := errgroup.Group{}
	for c := 0; c < *clients; c++ {
		g.Go(func() error {
			buf := make([]byte, 256<<10)
			for i := int(next.Add(1) - 1); i < len(blobs)**rounds; i = int(next.Add(1) - 1) {
				bl := blobs[i%len(blobs)]
				if err := fetchOne(client, bl.url, bl.size, buf); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// fetchClient is an HTTP/1.1 client for clients connections (one each,
// as separate nodes would have), trusting ca.
func fetchClient(ca string, clients int) (*http.Client, error) {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConnsPerHost: clients,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no certificate", ca)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Minute}, nil
}

// fetchOne GETs one blob into nothing and checks its length.
func fetchOne(c *http.Client, url string, size int64, buf []byte) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.CopyBuffer(discard{}, resp.Body, buf)
	if err != nil || resp.StatusCode != http.StatusOK || n != size {
		return fmt.Errorf("GET %s: %s, %d of %d bytes: %v", url, resp.Status, n, size, err)
	}
	return nil
}

// discard takes writes and keeps nothing; unlike io.Discard it has no
// ReadFrom, so the copy uses the caller's large buffer.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// sendfileLimit sends the bundle over a loopback TCP connection with
// sendfile (io.Copy from the file) and reads it into nothing: what this
// machine's kernel does for a registry that only copies. It returns the
// sending thread's CPU time, which is what a server pays.
func (b *bench) sendfileLimit() (time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	var wg sync.WaitGroup
	var sendErr error
	var cpu time.Duration
	wg.Add(1)
	go func() {
		defer wg.Done()
		runtime.LockOSThread() // the thread's CPU time is the sender's
		defer runtime.UnlockOSThread()
		conn, err := ln.Accept()
		if err != nil {
			sendErr = err
			return
		}
		defer conn.Close()
		f, err := os.Open(b.bundle)
		if err != nil {
			sendErr = err
			return
		}
		defer f.Close()
		before := threadCPU()
		_, sendErr = io.Copy(conn, f)
		cpu = threadCPU() - before
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	n, err := io.CopyBuffer(discard{}, conn, make([]byte, 256<<10))
	conn.Close()
	wg.Wait()
	if err == nil && n != b.bundleSize {
		err = fmt.Errorf("sendfile: %d of %d bytes", n, b.bundleSize)
	}
	return cpu, errors.Join(err, sendErr)
}

// threadCPU is the calling thread's user+system time so far.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
