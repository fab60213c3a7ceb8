package manifests

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/distribution/reference"
)

// SelectImages is ferry's one image matcher, used by every --image flag
// (push, import, install). It returns the items whose name (a full
// normalized reference) matches one of the patterns, in their order; all of
// them when there are no patterns.
//
// The glob rule: a pattern is matched against the whole name
// (docker.io/library/nginx:1.25) and its familiar short forms
// (library/nginx:1.25 and nginx:1.25); `*` matches any run of characters,
// `/` included, and `?` any one character; a pattern without a tag or
// digest matches every tag ("nginx", "tkestack/*", "*"). Each pattern that
// matches no image is an error wrapping ErrNoImages that names the
// pattern and the names that exist; an empty pattern is ErrInvalidArgument.
func SelectImages[T any](items []T, name func(T) string, patterns []string) ([]T, error) {
	if len(patterns) == 0 {
		return items, nil
	}
	globs := make([]*regexp.Regexp, len(patterns))
	for i, p := range patterns {
		if strings.TrimSpace(p) == "" {
			return nil, fmt.Errorf("%w: empty image pattern", ErrInvalidArgument)
		}
		globs[i] = globRegexp(p)
	}
	used := make([]bool, len(patterns))
	var out []T
	for _, item := range items {
		matched := false
		for i, p := range patterns {
			if matchForms(globs[i], nameForms(name(item), hasTag(p))) {
				used[i], matched = true, true
			}
		}
		if matched {
			out = append(out, item)
		}
	}
	for i, ok := range used {
		if !ok {
			return nil, unmatched(patterns[i], items, name)
		}
	}
	return out, nil
}

// globRegexp turns a pattern into an anchored regular expression.
func globRegexp(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// hasTag reports whether a pattern names a tag or digest: a ':' or '@' in
// its last path component.
func hasTag(pattern string) bool {
	last := pattern[strings.LastIndex(pattern, "/")+1:]
	return strings.ContainsAny(last, ":@")
}

// nameForms returns the forms of a reference a pattern is tried on: the
// full name, without the registry host, and docker's familiar form; with
// their tag or digest when withTag, without otherwise.
func nameForms(name string, withTag bool) []string {
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return []string{name}
	}
	suffix := ""
	if withTag {
		suffix = strings.TrimPrefix(reference.FamiliarString(named), reference.FamiliarName(named))
	}
	return []string{named.Name() + suffix, reference.Path(named) + suffix, reference.FamiliarName(named) + suffix}
}

func matchForms(glob *regexp.Regexp, forms []string) bool {
	for _, f := range forms {
		if glob.MatchString(f) {
			return true
		}
	}
	return false
}

// unmatched is the error for a pattern that matches nothing: it suggests
// the names that share the pattern's last word, or all of them.
func unmatched[T any](pattern string, items []T, name func(T) string) error {
	if len(items) == 0 {
		return fmt.Errorf("image pattern %q: %w: there are no images", pattern, ErrNoImages)
	}
	word := strings.Trim(pattern[strings.LastIndex(pattern, "/")+1:], "*?")
	if i := strings.IndexAny(word, ":@*?"); i >= 0 {
		word = word[:i]
	}
	var near, all []string
	for _, item := range items {
		n := name(item)
		all = append(all, n)
		if word != "" && strings.Contains(n, word) {
			near = append(near, n)
		}
	}
	if len(near) == 0 {
		near = all
	}
	sort.Strings(near)
	if len(near) > 10 {
		near = append(near[:10], "...")
	}
	return fmt.Errorf("image pattern %q: %w; images there: %s", pattern, ErrNoImages, strings.Join(near, ", "))
}
