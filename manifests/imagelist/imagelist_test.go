package imagelist

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/manifests"
)

// src is a source that must parse.
func src(s string) manifests.Source {
	out, err := manifests.ParseSource(s)
	if err != nil {
		panic(err)
	}
	return out
}

func plats(t testing.TB, ss ...string) []ocispec.Platform {
	t.Helper()
	out := []ocispec.Platform{}
	for _, s := range ss {
		p, err := manifests.ParsePlatform(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func TestParseImageList(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want List
	}{
		{
			name: "plain list",
			in: `# release images
docker.io/library/nginx:1.25
   quay.io/coreos/etcd:v3.5.9   # trailing comment

redis
foo:bar
localhost:5000/app@sha256:0123456789012345678901234567890123456789012345678901234567890123
oci:./vendor/app-layout:app:2.0
oci-archive:./other-release.tar	# tab before comment
docker-archive:./saved/bbox.tar:bbox:1.35
`,
			want: List{Images: []Spec{
				{Source: src("docker.io/library/nginx:1.25"), Line: 2},
				{Source: src("quay.io/coreos/etcd:v3.5.9"), Line: 3},
				{Source: src("docker.io/library/redis:latest"), Line: 5},
				{Source: src("docker.io/library/foo:bar"), Line: 6},
				{Source: src("localhost:5000/app@sha256:0123456789012345678901234567890123456789012345678901234567890123"), Line: 7},
				{Source: src("oci:./vendor/app-layout:app:2.0"), Line: 8},
				{Source: src("oci-archive:./other-release.tar"), Line: 9},
				{Source: src("docker-archive:./saved/bbox.tar:bbox:1.35"), Line: 10},
			}},
		},
		{
			name: "plain list, one line, CRLF and BOM",
			in:   "\xef\xbb\xbfnginx:1.25\r\n\r\n# end\r\n",
			want: List{Images: []Spec{{Source: src("docker.io/library/nginx:1.25"), Line: 1}}},
		},
		{
			name: "ferry form",
			in: `platforms: [linux/amd64, linux/arm64]        # default filter for every image
images:
  - docker.io/library/nginx:1.25             # kept as upstream publishes it
  - ref: quay.io/coreos/etcd:v3.5.9
    platforms: [linux/amd64]                 # per-image filter
  - name: registry.example.com/tkestack/tke-gateway:v1.9.0   # a NEW multi-arch image
    combine:                                                  # built from per-arch images
      linux/amd64: registry.example.com/tkestack/tke-gateway-amd64:v1.9.0
      linux/arm64: registry.example.com/tkestack/tke-gateway-arm64:v1.9.0
  - ref: oci:./vendor/app-layout:app:2.0       # an OCI layout directory (name as in its index)
  - ref: docker-archive:./saved/bbox.tar       # docker save output; its RepoTags give the name
    name: registry.example.com/library/bbox:1.35
  - ref: oci-archive:./other-release.tar       # another bundle or any OCI layout tarball: all its images
`,
			want: List{
				Platforms: plats(t, "linux/amd64", "linux/arm64"),
				Images: []Spec{
					{Source: src("docker.io/library/nginx:1.25"), Line: 3},
					{Source: src("quay.io/coreos/etcd:v3.5.9"), Platforms: plats(t, "linux/amd64"), Line: 4},
					{Name: "registry.example.com/tkestack/tke-gateway:v1.9.0", Combine: map[string]manifests.Source{
						"linux/amd64": src("registry.example.com/tkestack/tke-gateway-amd64:v1.9.0"),
						"linux/arm64": src("registry.example.com/tkestack/tke-gateway-arm64:v1.9.0"),
					}, Line: 6},
					{Source: src("oci:./vendor/app-layout:app:2.0"), Line: 10},
					{Source: src("docker-archive:./saved/bbox.tar"), Name: "registry.example.com/library/bbox:1.35", Line: 11},
					{Source: src("oci-archive:./other-release.tar"), Line: 13},
				},
			},
		},
		{
			name: "ferry form: platform strings, keep-all override, normalized combine keys",
			in: `platforms: "linux/amd64, linux/arm64"
images:
  - ref: nginx
    platforms: []
  - ref: redis:7
    platforms: linux/arm/v7,linux/arm64
  - ref: busybox:1.36
    platforms:
      - linux/amd64,linux/arm64
      - linux/ppc64le
  - name: app:1
    combine:
      linux/x86_64: app-amd64:1
      linux/aarch64: oci:./layouts/arm64
  - ref: quay.io/coreos/etcd:v3.5.9
    name: etcd:v3.5.9
`,
			want: List{
				Platforms: plats(t, "linux/amd64", "linux/arm64"),
				Images: []Spec{
					{Source: src("docker.io/library/nginx:latest"), Platforms: []ocispec.Platform{}, Line: 3},
					{Source: src("docker.io/library/redis:7"), Platforms: plats(t, "linux/arm/v7", "linux/arm64"), Line: 5},
					{Source: src("docker.io/library/busybox:1.36"), Platforms: plats(t, "linux/amd64", "linux/arm64", "linux/ppc64le"), Line: 7},
					{Name: "docker.io/library/app:1", Combine: map[string]manifests.Source{
						"linux/amd64": src("docker.io/library/app-amd64:1"),
						"linux/arm64": src("oci:./layouts/arm64"),
					}, Line: 11},
					{Source: src("quay.io/coreos/etcd:v3.5.9"), Name: "docker.io/library/etcd:v3.5.9", Line: 15},
				},
			},
		},
		{
			name: "ferry form: anchors and aliases, images only",
			in: `images:
  - ref: &nginx nginx:1.25
    platforms: &arm [linux/arm64]
  - ref: *nginx
    name: mirror.example.com/nginx:1.25
    platforms: *arm
`,
			want: List{Images: []Spec{
				{Source: src("docker.io/library/nginx:1.25"), Platforms: plats(t, "linux/arm64"), Line: 2},
				{Source: src("docker.io/library/nginx:1.25"), Name: "mirror.example.com/nginx:1.25", Platforms: plats(t, "linux/arm64"), Line: 4},
			}},
		},
		{
			name: "mindthegap form with numeric tags",
			in: `docker.io:
  images:
    library/nginx: [1.25, 1.10, "1.26"]
    calico/node:
      - v3.26.1
    redis: 7
quay.io:
  tlsVerify: false       # ignored
  credentials:
    username: u
    password: p
  mirror: mirror.example.com
  images:
    coreos/etcd: [v3.5.9, "sha256:0123456789012345678901234567890123456789012345678901234567890123"]
localhost:5000:
  images:
    team/app:
      - 10
localhost:
  images:
    app: [latest]
`,
			want: List{Images: []Spec{
				{Source: src("docker.io/library/nginx:1.25"), Line: 3},
				{Source: src("docker.io/library/nginx:1.10"), Line: 3},
				{Source: src("docker.io/library/nginx:1.26"), Line: 3},
				{Source: src("docker.io/calico/node:v3.26.1"), Line: 5},
				{Source: src("docker.io/library/redis:7"), Line: 6},
				{Source: src("quay.io/coreos/etcd:v3.5.9"), Line: 14},
				{Source: src("quay.io/coreos/etcd@sha256:0123456789012345678901234567890123456789012345678901234567890123"), Line: 14},
				{Source: src("localhost:5000/team/app:10"), Line: 18},
				{Source: src("localhost/app:latest"), Line: 21},
			}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tc.in), "images.yaml")
			if err != nil {
				t.Fatal(err)
			}
			tc.want.File = "images.yaml" // the list remembers its file, for FILE:LINE messages
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("got\n%+v\nwant\n%+v", *got, tc.want)
			}
		})
	}
}

func TestParseImageListErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		is   error  // besides manifests.ErrInvalidImageList
		line int    // 0: no line, the message starts "images.yaml: "
		says string // the message also contains this
	}{
		{name: "empty file", in: "", says: "no images"},
		{name: "comments only", in: "# nothing\n\n   # here\n", says: "no images"},
		{name: "plain: invalid reference", in: "nginx\n# c\nngin x:1.25\n", is: manifests.ErrInvalidReference, line: 3, says: `"ngin x:1.25"`},
		{name: "plain: uppercase repository", in: "Nginx:1.25\n", is: manifests.ErrInvalidReference, line: 1},
		{name: "plain: hash without space is not a comment", in: "nginx:1.25#x\n", is: manifests.ErrInvalidReference, line: 1},
		{name: "plain: duplicate", in: "nginx:1.25\nredis\n\ndocker.io/library/nginx:1.25\n", line: 4, says: "line 1"},
		{name: "plain: docker:// prefix", in: "docker://nginx:1.25\n", is: manifests.ErrInvalidReference, line: 1, says: "docker://"},
		{name: "plain: unknown transport", in: "dir:/tmp/x\n", is: manifests.ErrInvalidReference, line: 1},
		{name: "plain: oci-archive with a name", in: "oci-archive:./b.tar:app:1\n", is: manifests.ErrInvalidReference, line: 1, says: "oci-archive"},
		{name: "plain: oci without path", in: "nginx\noci:\n", is: manifests.ErrInvalidReference, line: 2, says: "no path"},
		{name: "plain: oci with empty name", in: "redis\noci:./layout:\n", is: manifests.ErrInvalidReference, line: 2, says: "empty image name"},
		{name: "plain: docker-archive with a bad name", in: "docker-archive:./x.tar:Bad Name\n", is: manifests.ErrInvalidReference, line: 1},
		{name: "plain: later lines that break YAML", in: "nginx:1.25\n[weird\nredis:7\n", is: manifests.ErrInvalidReference, line: 2, says: `"[weird"`},
		{name: "plain: a later line that looks like YAML", in: "nginx:1.25\nfoo: bar\n", is: manifests.ErrInvalidReference, line: 2},
		{name: "plain: a top-level YAML list", in: "- nginx\n- redis\n", line: 1, says: `"images:"`},

		{name: "yaml: syntax error", in: "images:\n  - nginx\n  - ref: a: b\n", line: 3, says: "invalid YAML"},
		{name: "yaml: tab indentation", in: "images:\n\t- nginx\n", line: 2, says: "invalid YAML"},
		{name: "yaml: unclosed flow list", in: "platforms: [linux/amd64\nimages:\n  - nginx\n", line: 1, says: "invalid YAML"},
		{name: "yaml: two documents", in: "images: [nginx]\n---\nimages: [redis]\n", line: 2, says: "more than one YAML document"},
		{name: "unknown top-level key", in: "platforms: [linux/amd64]\nimage:\n  - nginx\n", line: 2, says: `"image"`},
		{name: "no images key", in: "platforms: [linux/amd64]\n", line: 1, says: "no images"},
		{name: "images null", in: "platforms: [linux/amd64]\nimages:\n", line: 2, says: "no images"},
		{name: "images empty", in: "images: []\n", line: 1, says: "no images"},
		{name: "images not a list", in: "images:\n  nginx: 1\n", line: 2, says: "must be a list"},
		{name: "empty entry", in: "images:\n  - nginx\n  -\n", line: 3, says: "empty image entry"},
		{name: "entry is a list", in: "images:\n  - [nginx, redis]\n", line: 2},
		{name: "entry: invalid reference", in: "images:\n  - nginx\n  - ref: ngin x:1.25\n", is: manifests.ErrInvalidReference, line: 3, says: `"ngin x:1.25"`},
		{name: "entry: unknown key", in: "images:\n  - ref: nginx\n    tag: 1.25\n", line: 3, says: `"tag"`},
		{name: "entry: duplicate key", in: "images:\n  - ref: nginx\n    ref: redis\n", line: 3, says: "line 2"},
		{name: "entry: ref empty", in: "images:\n  - ref:\n    name: x:1\n", line: 2, says: "ref is empty"},
		{name: "entry: ref not a string", in: "images:\n  - ref: [a]\n", line: 2, says: "must be a string"},
		{name: "entry: name only", in: "images:\n  - name: nginx:1.25\n", line: 2, says: "needs ref or combine"},
		{name: "entry: invalid name", in: "images:\n  - ref: nginx\n    name: Bad/Name\n", is: manifests.ErrInvalidReference, line: 3},
		{name: "entry: digest name", in: "images:\n  - ref: nginx\n    name: nginx@sha256:0123456789012345678901234567890123456789012345678901234567890123\n", is: manifests.ErrInvalidReference, line: 3, says: "digest"},
		{name: "entry: duplicate name", in: "images:\n  - ref: a:1\n    name: app:1\n  - redis\n  - ref: b:1\n    name: docker.io/library/app:1\n", line: 5, says: "line 2"},
		{name: "entry: name equals another's source", in: "images:\n  - nginx:1.25\n  - ref: mirror.example.com/nginx:1.25\n    name: nginx:1.25\n", line: 3, says: "line 2"},
		{name: "combine with ref", in: "images:\n  - name: app:1\n    ref: app:0\n    combine:\n      linux/amd64: app-amd64:1\n", line: 3, says: "both ref and combine"},
		{name: "combine without name", in: "images:\n  - combine:\n      linux/amd64: app-amd64:1\n", line: 2, says: "needs name"},
		{name: "combine with platforms", in: "images:\n  - name: app:1\n    platforms: [linux/amd64]\n    combine:\n      linux/amd64: app-amd64:1\n", line: 3, says: "platforms"},
		{name: "combine empty", in: "images:\n  - name: app:1\n    combine: {}\n", line: 3, says: "combine is empty"},
		{name: "combine null", in: "images:\n  - name: app:1\n    combine:\n", line: 3, says: "combine is empty"},
		{name: "combine not a mapping", in: "images:\n  - name: app:1\n    combine: [a, b]\n", line: 3},
		{name: "combine invalid platform", in: "images:\n  - name: app:1\n    combine:\n      linux/amd64: a:1\n      linux: b:1\n", is: manifests.ErrInvalidPlatform, line: 5, says: `"linux"`},
		{name: "combine same platform twice", in: "images:\n  - name: app:1\n    combine:\n      linux/amd64: a:1\n      linux/x86_64: b:1\n", line: 5, says: "line 4"},
		{name: "combine invalid reference", in: "images:\n  - name: app:1\n    combine:\n      linux/amd64: a:1\n      linux/arm64: B:1\n", is: manifests.ErrInvalidReference, line: 5},
		{name: "combine empty reference", in: "images:\n  - name: app:1\n    combine:\n      linux/amd64:\n", line: 4, says: "empty"},
		{name: "invalid default platform", in: "platforms: [linux/amd64, amd64]\nimages: [nginx]\n", is: manifests.ErrInvalidPlatform, line: 1, says: `"amd64"`},
		{name: "invalid platform in list", in: "images:\n  - ref: nginx\n    platforms:\n      - linux/amd64\n      - linux//\n", is: manifests.ErrInvalidPlatform, line: 5},
		{name: "invalid platform in string", in: "images:\n  - ref: nginx\n    platforms: linux/amd64,windows\n", is: manifests.ErrInvalidPlatform, line: 3},
		{name: "platform listed twice", in: "platforms: [linux/arm64, linux/aarch64]\nimages: [nginx]\n", line: 1, says: "twice"},
		{name: "platforms a mapping", in: "platforms: {linux: amd64}\nimages: [nginx]\n", line: 1, says: "platforms must be"},

		{name: "mindthegap: unknown registry key", in: "docker.io:\n  images:\n    nginx: [1.25]\n  insecure: true\n", line: 4, says: `"insecure"`},
		{name: "mindthegap: invalid tag", in: "docker.io:\n  images:\n    nginx:\n      - 1.25\n      - bad tag\n", is: manifests.ErrInvalidReference, line: 5},
		{name: "mindthegap: duplicate", in: "docker.io:\n  images:\n    nginx: [1.25]\n    library/nginx: [1.26, 1.25]\n", line: 4, says: "line 3"},
		{name: "mindthegap: no tags", in: "docker.io:\n  images:\n    nginx: []\n", line: 3, says: "no tags"},
		{name: "mindthegap: tags a mapping", in: "docker.io:\n  images:\n    nginx: {a: b}\n", line: 3},
		{name: "mindthegap: no images at all", in: "docker.io:\n  tlsVerify: false\nquay.io:\n  images:\n", says: "no images"},
		{name: "mindthegap: registry null", in: "docker.io:\n", line: 1, says: "no images"},
		{name: "mindthegap mixed with ferry keys", in: "docker.io:\n  images:\n    nginx: [1]\nimages: [redis]\n", line: 1, says: `"docker.io"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Parse(strings.NewReader(tc.in), "images.yaml")
			if err == nil {
				t.Fatalf("no error; got %+v", l)
			}
			if !errors.Is(err, manifests.ErrInvalidImageList) {
				t.Errorf("err %v: not manifests.ErrInvalidImageList", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err %v: not %v", err, tc.is)
			}
			prefix := "images.yaml: "
			if tc.line > 0 {
				prefix = "images.yaml:" + strconv.Itoa(tc.line) + ": "
			}
			if msg := err.Error(); !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, tc.says) {
				t.Errorf("err %q: want prefix %q and %q in it", msg, prefix, tc.says)
			}
		})
	}
}

func TestParseImageListMessage(t *testing.T) {
	_, err := Parse(strings.NewReader("images:\n  - ngin x:1.25\n"), "images.yaml")
	const want = `images.yaml:2: invalid image reference "ngin x:1.25": invalid reference format`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

func TestLoadImageList(t *testing.T) {
	dir := t.TempDir()
	abs := filepath.Join(t.TempDir(), "abs.tar")
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	t.Run("yaml paths resolve against the list's directory", func(t *testing.T) {
		p := write("images.yaml", `images:
  - ref: oci:./vendor/app-layout:app:2.0
  - ref: docker-archive:saved/bbox.tar
    name: registry.example.com/library/bbox:1.35
  - oci-archive:../other-release.tar
  - oci-archive:`+abs+`
  - name: app:1
    combine:
      linux/amd64: oci:layouts/amd64
      linux/arm64: docker-archive:./arm64.tar:app-arm64:1
  - nginx:1.25
`)
		got, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		want := List{File: p, Images: []Spec{
			{Source: src("oci:" + filepath.Join(dir, "vendor/app-layout") + ":app:2.0"), Line: 2},
			{Source: src("docker-archive:" + filepath.Join(dir, "saved/bbox.tar")), Name: "registry.example.com/library/bbox:1.35", Line: 3},
			{Source: src("oci-archive:" + filepath.Join(filepath.Dir(dir), "other-release.tar")), Line: 5},
			{Source: src("oci-archive:" + abs), Line: 6},
			{Name: "docker.io/library/app:1", Combine: map[string]manifests.Source{
				"linux/amd64": src("oci:" + filepath.Join(dir, "layouts/amd64")),
				"linux/arm64": src("docker-archive:" + filepath.Join(dir, "arm64.tar") + ":app-arm64:1"),
			}, Line: 7},
			{Source: src("docker.io/library/nginx:1.25"), Line: 11},
		}}
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("got\n%+v\nwant\n%+v", *got, want)
		}
	})

	t.Run("plain list paths resolve too", func(t *testing.T) {
		p := write("images.txt", "oci:layout\nredis:7\n")
		got, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		if s := got.Images[0].Source.String(); s != "oci:"+filepath.Join(dir, "layout") {
			t.Errorf("source %q", s)
		}
	})

	t.Run("Parse keeps paths as written", func(t *testing.T) {
		got, err := Parse(strings.NewReader("oci:layout\n"), filepath.Join(dir, "images.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if s := got.Images[0].Source.String(); s != "oci:layout" {
			t.Errorf("source %q", s)
		}
	})

	t.Run("errors name the path", func(t *testing.T) {
		p := write("bad.yaml", "images:\n  - nginx\n  - ref: nginx\n")
		_, err := Load(p)
		if !errors.Is(err, manifests.ErrInvalidImageList) || !strings.HasPrefix(err.Error(), p+":3: ") {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("missing file", func(t *testing.T) {
		_, err := Load(filepath.Join(dir, "nope.yaml"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("err = %v, want fs.ErrNotExist", err)
		}
	})
}

func TestAddRefs(t *testing.T) {
	base := func() *List {
		return &List{Images: []Spec{
			{Source: src("docker.io/library/nginx:1.25"), Line: 3},
			{Source: src("quay.io/a/b:1"), Name: "docker.io/library/app:1", Line: 5},
		}}
	}
	tests := []struct {
		name string
		refs []string
		want []Spec // appended to base; nil when an error is expected
		is   error
		says string
	}{
		{
			name: "refs and transports",
			refs: []string{"redis:7", " quay.io/coreos/etcd:v3.5.9 ", "oci:./layout:app:1", "docker-archive:x.tar"},
			want: []Spec{
				{Source: src("docker.io/library/redis:7")},
				{Source: src("quay.io/coreos/etcd:v3.5.9")},
				{Source: src("oci:./layout:app:1")},
				{Source: src("docker-archive:x.tar")},
			},
		},
		{name: "none", refs: nil, want: []Spec{}},
		{name: "invalid reference", refs: []string{"redis:7", "ngin x"}, is: manifests.ErrInvalidReference, says: "command line: "},
		{name: "empty reference", refs: []string{""}, is: manifests.ErrInvalidReference},
		{name: "already in the file", refs: []string{"nginx:1.25"}, is: manifests.ErrInvalidImageList, says: "line 3"},
		{name: "already a name in the file", refs: []string{"app:1"}, is: manifests.ErrInvalidImageList, says: "line 5"},
		{name: "given twice", refs: []string{"redis", "docker.io/library/redis:latest"}, is: manifests.ErrInvalidImageList, says: "twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := base()
			err := l.AddRefs(tc.refs)
			if tc.want == nil {
				if err == nil || !errors.Is(err, tc.is) || !errors.Is(err, manifests.ErrInvalidImageList) || !strings.Contains(err.Error(), tc.says) {
					t.Errorf("err = %v, want %v with %q", err, tc.is, tc.says)
				}
				if !reflect.DeepEqual(l, base()) {
					t.Errorf("list changed on error: %+v", l)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := append(base().Images, tc.want...)
			if !reflect.DeepEqual(l.Images, want) {
				t.Errorf("got %+v, want %+v", l.Images, want)
			}
		})
	}

	t.Run("empty list", func(t *testing.T) {
		var l List
		if err := l.AddRefs([]string{"nginx"}); err != nil {
			t.Fatal(err)
		}
		if len(l.Images) != 1 || l.Images[0].Source.String() != "docker.io/library/nginx:latest" || l.Images[0].Line != 0 {
			t.Errorf("got %+v", l.Images)
		}
	})
}

func FuzzParseImageList(f *testing.F) {
	for _, s := range []string{
		"nginx:1.25\n# c\nredis\n",
		"platforms: [linux/amd64]\nimages:\n  - nginx\n  - ref: oci:./x:y\n    name: a:1\n",
		"images:\n  - name: a:1\n    combine:\n      linux/amd64: b:1\n",
		"docker.io:\n  images:\n    nginx: [1.10]\n",
		"images: &a [*a]\n",
		"- a\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		l, err := Parse(strings.NewReader(in), "f.yaml")
		if err != nil {
			if !errors.Is(err, manifests.ErrInvalidImageList) || !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("error %v: not an image list error", err)
			}
			return
		}
		if len(l.Images) == 0 {
			t.Fatal("no error and no images")
		}
		for _, im := range l.Images {
			if (im.Source == manifests.Source{}) == (len(im.Combine) == 0) || im.Line < 1 {
				t.Fatalf("bad entry %+v", im)
			}
		}
	})
}
