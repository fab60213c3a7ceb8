package imagelist

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"gopkg.in/yaml.v3"

	"github.com/ferry-oci/ferry/manifests"
)

// List is a parsed image list.
type List struct {
	// File is the list's file name as given to Parse or Load, for
	// messages that point at an entry (FILE:LINE); "" for a list built
	// from the command line alone.
	File string
	// Platforms is the default platform filter for every image; empty keeps all.
	Platforms []ocispec.Platform
	// Images are the entries, in file order.
	Images []Spec
}

// Spec is one entry of an image list.
type Spec struct {
	// Source is where to read the image, parsed: a normalized registry
	// reference ("docker.io/library/nginx:1.25") or a layout or archive,
	// with a relative path resolved against the list file's directory by
	// Load. It is the zero Source for a combine entry.
	Source manifests.Source
	// Name is the normalized name to give the image in the bundle; ""
	// means the source's own name (registry reference) or the names found
	// in the archive or layout.
	Name string
	// Platforms is this entry's platform filter. nil means use
	// List.Platforms; a non-nil empty slice (`platforms: []`) keeps all.
	Platforms []ocispec.Platform
	// Combine, for an entry that builds a new multi-arch image, maps a
	// platform ("linux/amd64", as manifests.FormatPlatform prints it) to the source of
	// that platform's image.
	Combine map[string]manifests.Source
	// Line is the 1-based line where the entry starts; 0 for an entry given
	// on the command line.
	Line int
}

// maxImageListSize bounds how much of an image list is read.
const maxImageListSize = 16 << 20

// Parse parses an image list in any of its three forms, detected
// from the content: a plain list of references (one a line, # comments),
// ferry's YAML (platforms, images), or mindthegap's registry-keyed YAML.
// filename is used in error messages only; transport paths are kept as
// written. Errors name the file and line and match manifests.ErrInvalidImageList,
// and manifests.ErrInvalidReference or manifests.ErrInvalidPlatform when that is the cause.
func Parse(r io.Reader, filename string) (*List, error) {
	return parseImageList(r, filename, "")
}

// Load opens and parses the image list at path. Relative paths of
// oci:, oci-archive: and docker-archive: sources are resolved against
// filepath.Dir(path).
func Load(path string) (*List, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read image list: %w", err)
	}
	defer f.Close()
	return parseImageList(f, path, filepath.Dir(path))
}

// AddRefs appends images given on the command line (`--image REF`) by
// their sources' own names; see AddArgs.
func (l *List) AddRefs(refs []string) error {
	args := make([]Arg, len(refs))
	for i, ref := range refs {
		src, err := manifests.ParseSource(strings.TrimSpace(ref))
		if err != nil {
			return &imageListError{file: "command line", err: err}
		}
		args[i] = Arg{Source: src}
	}
	return l.AddArgs(args)
}

// Arg is an image given on the command line: `--image SOURCE`, with the
// name to give it in the bundle (`--name NAME`) or "" for the source's own.
type Arg struct {
	Source manifests.Source
	Name   string
}

// AddArgs appends images given on the command line, with Line 0. A Source
// may be a registry reference or a transport form; relative paths stay as
// written (relative to the working directory). A Name is a reference with
// a tag, as an entry's name: in a list. Nothing is added when any argument
// is invalid or its image already listed.
func (l *List) AddArgs(args []Arg) error {
	seen := make(map[string]int, len(l.Images)+len(args))
	for _, spec := range l.Images {
		if k := imageListKey(spec); k != "" {
			seen[k] = spec.Line
		}
	}
	add := make([]Spec, 0, len(args))
	for _, arg := range args {
		spec, err := commandLineSpec(arg)
		if err != nil {
			return &imageListError{file: "command line", err: err}
		}
		key := imageListKey(spec)
		if line, ok := seen[key]; ok {
			if line == 0 {
				return &imageListError{file: "command line", err: fmt.Errorf("image %q given twice", key)}
			}
			return &imageListError{file: "command line", err: fmt.Errorf("image %q is already in the image list (line %d)", key, line)}
		}
		seen[key] = 0
		add = append(add, spec)
	}
	l.Images = append(l.Images, add...)
	return nil
}

// commandLineSpec is the list entry of a command-line image.
func commandLineSpec(arg Arg) (Spec, error) {
	spec := Spec{Source: arg.Source}
	if arg.Name != "" {
		var err error
		if spec.Name, err = normalizeName(arg.Name); err != nil {
			return Spec{}, fmt.Errorf("--name for %s: %w", arg.Source, err)
		}
	}
	return spec, nil
}

// normalizeName normalizes the name an entry gives its image: a
// reference with a tag, not a digest.
func normalizeName(s string) (string, error) {
	name, err := manifests.NormalizeReference(s)
	if err != nil {
		return "", err
	}
	if strings.Contains(name, "@") {
		return "", fmt.Errorf("%w %q: a name must be a tag, not a digest", manifests.ErrInvalidReference, s)
	}
	return name, nil
}

// imageListKey is what two entries must not share: the bundle name, or the
// source when the entry keeps the source's own name.
func imageListKey(spec Spec) string {
	if spec.Name != "" {
		return spec.Name
	}
	return spec.Source.String()
}

// parseListSource parses an image source of a list, joining a relative
// layout or archive path to base (when base is not "").
func parseListSource(s, base string) (manifests.Source, error) {
	src, err := manifests.ParseSource(s)
	if err != nil || base == "" {
		return src, err
	}
	return src.InDir(base), nil
}

// imageListError is an error at a line of an image list file (or in the
// command-line refs). It matches manifests.ErrInvalidImageList and the error it carries.
type imageListError struct {
	file string
	line int // 0: the file as a whole
	err  error
}

func (e *imageListError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.file, e.line, e.err)
	}
	return fmt.Sprintf("%s: %v", e.file, e.err)
}

func (e *imageListError) Unwrap() []error { return []error{manifests.ErrInvalidImageList, e.err} }

// imageListParser holds the state of one parse.
type imageListParser struct {
	file string
	base string // directory for relative transport paths; "" keeps them
	list List
	seen map[string]int // imageListKey -> line of the entry
}

func parseImageList(r io.Reader, file, base string) (*List, error) {
	p := &imageListParser{file: file, base: base, list: List{File: file}, seen: map[string]int{}}
	data, err := manifests.ReadAtMost(r, maxImageListSize, "image list "+file)
	if err != nil {
		return nil, err
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if err := p.parse(data); err != nil {
		return nil, err
	}
	return &p.list, nil
}

func (p *imageListParser) errorf(line int, format string, args ...any) error {
	return &imageListError{file: p.file, line: line, err: fmt.Errorf(format, args...)}
}

// wrap places err, which carries its own sentinel, at a line.
func (p *imageListParser) wrap(line int, err error) error {
	return &imageListError{file: p.file, line: line, err: err}
}

func (p *imageListParser) parse(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := dec.Decode(&doc)
	switch {
	case errors.Is(err, io.EOF):
		return p.errorf(0, "no images")
	case err != nil:
		if looksLikeYAML(data) {
			return p.yamlError(err)
		}
		return p.parsePlain(data)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return p.errorf(0, "no images")
	}
	root := doc.Content[0]
	switch root.Kind {
	case yaml.MappingNode:
	case yaml.SequenceNode:
		return p.errorf(root.Line, "a YAML list at the top level is not an image list; put it under \"images:\"")
	default:
		return p.parsePlain(data)
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return p.yamlError(err)
		}
		return p.errorf(next.Line, "more than one YAML document")
	}
	allHosts := len(root.Content) > 0
	for i := 0; i < len(root.Content); i += 2 {
		allHosts = allHosts && isRegistryHostKey(root.Content[i].Value)
	}
	if allHosts {
		return p.parseMindthegap(root)
	}
	return p.parseFerry(root)
}

// looksLikeYAML reports whether the first meaningful line of a file that
// is not valid YAML was meant as YAML (a key, a list item, a flow
// collection or a document marker), so that the YAML error is reported
// instead of reading the file as a plain list.
func looksLikeYAML(data []byte) bool {
	for _, line := range strings.Split(string(data), "\n") {
		s := strings.TrimSpace(stripListComment(line))
		if s == "" {
			continue
		}
		return s == "-" || strings.HasPrefix(s, "- ") || strings.HasPrefix(s, "---") ||
			strings.HasPrefix(s, "%") || strings.HasPrefix(s, "{") || strings.HasPrefix(s, "[") ||
			strings.HasSuffix(s, ":") || strings.Contains(s, ": ") || strings.Contains(s, ":\t")
	}
	return false
}

var yamlErrorLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (p *imageListParser) yamlError(err error) error {
	if m := yamlErrorLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return p.errorf(line, "invalid YAML: %s", m[2])
	}
	return p.errorf(0, "invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
}

// stripListComment removes a # comment that starts the line or follows
// whitespace.
func stripListComment(line string) string {
	for i := 0; i < len(line); i++ {
		if line[i] == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			return line[:i]
		}
	}
	return line
}

func (p *imageListParser) parsePlain(data []byte) error {
	for i, line := range strings.Split(string(data), "\n") {
		s := strings.TrimSpace(stripListComment(line))
		if s == "" {
			continue
		}
		src, err := parseListSource(s, p.base)
		if err != nil {
			return p.wrap(i+1, err)
		}
		if err := p.add(Spec{Source: src, Line: i + 1}); err != nil {
			return err
		}
	}
	if len(p.list.Images) == 0 {
		return p.errorf(0, "no images")
	}
	return nil
}

func (p *imageListParser) add(spec Spec) error {
	key := imageListKey(spec)
	if first, ok := p.seen[key]; ok {
		return p.errorf(spec.Line, "duplicate image %q (also at line %d)", key, first)
	}
	p.seen[key] = spec.Line
	p.list.Images = append(p.list.Images, spec)
	return nil
}

// isRegistryHostKey reports whether a top-level key names a registry, as
// in mindthegap's image lists.
func isRegistryHostKey(k string) bool {
	return strings.ContainsAny(k, ".:") || k == "localhost"
}

// derefNode follows aliases to the node they name.
func derefNode(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func isNullNode(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// eachKey calls fn for every key and (dereferenced) value of a mapping,
// refusing non-string and duplicate keys.
func (p *imageListParser) eachKey(m *yaml.Node, fn func(k, v *yaml.Node) error) error {
	first := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := derefNode(m.Content[i]), derefNode(m.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			return p.errorf(k.Line, "a key must be a string")
		}
		if line, ok := first[k.Value]; ok {
			return p.errorf(k.Line, "duplicate key %q (also at line %d)", k.Value, line)
		}
		first[k.Value] = k.Line
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

// scalar returns the non-empty string value of v, described as what in errors.
func (p *imageListParser) scalar(k, v *yaml.Node, what string) (string, error) {
	switch {
	case isNullNode(v):
		return "", p.errorf(k.Line, "%s is empty", what)
	case v.Kind != yaml.ScalarNode:
		return "", p.errorf(v.Line, "%s must be a string", what)
	case strings.TrimSpace(v.Value) == "":
		return "", p.errorf(v.Line, "%s is empty", what)
	}
	return strings.TrimSpace(v.Value), nil
}

// platforms parses a YAML list of platforms or a comma-separated string.
// A present but empty value gives a non-nil empty slice.
func (p *imageListParser) platforms(v *yaml.Node) ([]ocispec.Platform, error) {
	var items []*yaml.Node
	switch {
	case isNullNode(v):
	case v.Kind == yaml.ScalarNode:
		items = []*yaml.Node{v}
	case v.Kind == yaml.SequenceNode:
		items = v.Content
	default:
		return nil, p.errorf(v.Line, "platforms must be a list or a comma-separated string")
	}
	out := []ocispec.Platform{}
	seen := map[string]bool{}
	for _, item := range items {
		item = derefNode(item)
		if item.Kind != yaml.ScalarNode {
			return nil, p.errorf(item.Line, "a platform must be a string like linux/amd64")
		}
		ps, err := manifests.ParsePlatforms([]string{item.Value})
		if err != nil {
			return nil, p.wrap(item.Line, err)
		}
		for _, pl := range ps {
			s := manifests.FormatPlatform(pl)
			if seen[s] {
				return nil, p.errorf(item.Line, "platform %q listed twice", s)
			}
			seen[s] = true
			out = append(out, pl)
		}
	}
	return out, nil
}

// parseFerry reads ferry's form: platforms and images.
func (p *imageListParser) parseFerry(root *yaml.Node) error {
	var images, imagesKey *yaml.Node
	err := p.eachKey(root, func(k, v *yaml.Node) error {
		switch k.Value {
		case "platforms":
			ps, err := p.platforms(v)
			if err != nil {
				return err
			}
			if len(ps) > 0 {
				p.list.Platforms = ps
			}
		case "images":
			images, imagesKey = v, k
		default:
			return p.errorf(k.Line, "unknown key %q (want platforms and images, or registry hosts as keys as in mindthegap's images.yaml)", k.Value)
		}
		return nil
	})
	if err != nil {
		return err
	}
	switch {
	case imagesKey == nil:
		return p.errorf(root.Line, "no images: the file has no \"images:\" key")
	case isNullNode(images):
		return p.errorf(imagesKey.Line, "no images")
	case images.Kind != yaml.SequenceNode:
		return p.errorf(images.Line, "images must be a list")
	}
	for _, item := range images.Content {
		if err := p.ferryEntry(derefNode(item)); err != nil {
			return err
		}
	}
	if len(p.list.Images) == 0 {
		return p.errorf(imagesKey.Line, "no images")
	}
	return nil
}

func (p *imageListParser) ferryEntry(item *yaml.Node) error {
	switch {
	case isNullNode(item) || (item.Kind == yaml.ScalarNode && strings.TrimSpace(item.Value) == ""):
		return p.errorf(item.Line, "empty image entry")
	case item.Kind == yaml.ScalarNode:
		src, err := parseListSource(strings.TrimSpace(item.Value), p.base)
		if err != nil {
			return p.wrap(item.Line, err)
		}
		return p.add(Spec{Source: src, Line: item.Line})
	case item.Kind != yaml.MappingNode:
		return p.errorf(item.Line, "an image entry must be a reference or a mapping with ref or combine")
	}

	spec := Spec{Line: item.Line}
	var refKey, nameKey, combineKey, platformsKey *yaml.Node
	err := p.eachKey(item, func(k, v *yaml.Node) error {
		switch k.Value {
		case "ref":
			refKey = k
			s, err := p.scalar(k, v, "ref")
			if err != nil {
				return err
			}
			if spec.Source, err = parseListSource(s, p.base); err != nil {
				return p.wrap(v.Line, err)
			}
		case "name":
			nameKey = k
			s, err := p.scalar(k, v, "name")
			if err != nil {
				return err
			}
			if spec.Name, err = normalizeName(s); err != nil {
				return p.wrap(v.Line, err)
			}
		case "platforms":
			platformsKey = k
			ps, err := p.platforms(v)
			if err != nil {
				return err
			}
			spec.Platforms = ps
		case "combine":
			combineKey = k
			c, err := p.combine(k, v)
			if err != nil {
				return err
			}
			spec.Combine = c
		default:
			return p.errorf(k.Line, "unknown key %q in image entry (want ref, name, platforms or combine)", k.Value)
		}
		return nil
	})
	if err != nil {
		return err
	}
	switch {
	case refKey == nil && combineKey == nil:
		return p.errorf(item.Line, "image entry needs ref or combine")
	case refKey != nil && combineKey != nil:
		return p.errorf(refKey.Line, "image entry has both ref and combine; a combine entry builds a new image named by name")
	case combineKey != nil && nameKey == nil:
		return p.errorf(combineKey.Line, "combine needs name: the name of the new multi-arch image")
	case combineKey != nil && platformsKey != nil:
		return p.errorf(platformsKey.Line, "platforms cannot be used with combine: combine lists the platforms")
	}
	return p.add(spec)
}

// combine reads a mapping of platform to per-platform source.
func (p *imageListParser) combine(k, v *yaml.Node) (map[string]manifests.Source, error) {
	if isNullNode(v) {
		return nil, p.errorf(k.Line, "combine is empty")
	}
	if v.Kind != yaml.MappingNode {
		return nil, p.errorf(v.Line, "combine must map platforms to image references")
	}
	out := map[string]manifests.Source{}
	lines := map[string]int{}
	err := p.eachKey(v, func(pk, pv *yaml.Node) error {
		pl, err := manifests.ParsePlatform(strings.TrimSpace(pk.Value))
		if err != nil {
			return p.wrap(pk.Line, err)
		}
		plat := manifests.FormatPlatform(pl)
		if line, ok := lines[plat]; ok {
			return p.errorf(pk.Line, "platform %q combined twice (also at line %d)", plat, line)
		}
		lines[plat] = pk.Line
		s, err := p.scalar(pk, pv, "combine "+plat)
		if err != nil {
			return err
		}
		if out[plat], err = parseListSource(s, p.base); err != nil {
			return p.wrap(pv.Line, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, p.errorf(k.Line, "combine is empty")
	}
	return out, nil
}

// parseMindthegap reads mindthegap's form: registry host -> images ->
// repository -> tags.
func (p *imageListParser) parseMindthegap(root *yaml.Node) error {
	err := p.eachKey(root, func(hk, hv *yaml.Node) error {
		host := hk.Value
		if isNullNode(hv) {
			return p.errorf(hk.Line, "registry %q has no images", host)
		}
		if hv.Kind != yaml.MappingNode {
			return p.errorf(hv.Line, "registry %q: want a mapping with images", host)
		}
		return p.eachKey(hv, func(k, v *yaml.Node) error {
			switch k.Value {
			case "images":
				return p.mindthegapImages(host, k, v)
			case "tlsVerify", "credentials", "mirror":
				// mindthegap's per-registry settings; ferry takes these elsewhere.
				return nil
			}
			return p.errorf(k.Line, "registry %q: unknown key %q (want images, tlsVerify, credentials or mirror)", host, k.Value)
		})
	})
	if err != nil {
		return err
	}
	if len(p.list.Images) == 0 {
		return p.errorf(0, "no images")
	}
	return nil
}

func (p *imageListParser) mindthegapImages(host string, k, v *yaml.Node) error {
	if isNullNode(v) {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		return p.errorf(v.Line, "registry %q: images must map repositories to lists of tags", host)
	}
	return p.eachKey(v, func(rk, rv *yaml.Node) error {
		repo := strings.TrimSpace(rk.Value)
		var tags []*yaml.Node
		switch {
		case isNullNode(rv):
		case rv.Kind == yaml.ScalarNode:
			tags = []*yaml.Node{rv}
		case rv.Kind == yaml.SequenceNode:
			tags = rv.Content
		default:
			return p.errorf(rv.Line, "image %s/%s: tags must be a list", host, repo)
		}
		if len(tags) == 0 {
			return p.errorf(rk.Line, "image %s/%s has no tags", host, repo)
		}
		for _, t := range tags {
			t = derefNode(t)
			if t.Kind != yaml.ScalarNode || isNullNode(t) || strings.TrimSpace(t.Value) == "" {
				return p.errorf(t.Line, "image %s/%s: a tag must be a non-empty string", host, repo)
			}
			// The tag as written: 1.10 stays "1.10". A digest is written "sha256:...".
			tag, sep := strings.TrimSpace(t.Value), ":"
			if strings.Contains(tag, ":") {
				sep = "@"
			}
			src, err := manifests.NormalizeReference(host + "/" + repo + sep + tag)
			if err != nil {
				return p.wrap(t.Line, err)
			}
			if err := p.add(Spec{Source: manifests.Source{Kind: manifests.SourceRegistry, Ref: src}, Line: t.Line}); err != nil {
				return err
			}
		}
		return nil
	})
}
