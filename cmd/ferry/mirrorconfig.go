package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-oci/ferry/installer"
	"github.com/ferry-oci/ferry/installer/containerd"
)

func init() { commands = append(commands, newMirrorConfigCommand) }

func newMirrorConfigCommand(g *globalOptions) *cobra.Command {
	var opts installer.MirrorOptions
	var caFile string
	var printContainerd bool
	formats := make([]string, 0, len(installer.MirrorFormats))
	for f := range installer.MirrorFormats {
		formats = append(formats, f)
	}
	sort.Strings(formats)
	cmd := &cobra.Command{
		Use:   "mirror-config --server URL --mirror HOST... [--format hosts.toml|registries.conf|k3s] [--dir DIR]",
		Short: "Write the mirror configuration that sends a node's pulls for HOST to a ferry (or any) registry",
		Long: `mirror-config writes the configuration that makes a node pull every --mirror
host's images from --server first, trusting --ca when given, in the format of
the node's container engine (--format):

  hosts.toml       containerd 1.x/2.x: DIR/HOST/hosts.toml for the CRI's
                   config_path (DIR default /etc/containerd/certs.d; k3s/RKE2:
                   /var/lib/rancher/{k3s,rke2}/agent/etc/containerd/certs.d)
  registries.conf  CRI-O, podman: DIR/registries.conf.d/ferry-mirrors.conf and
                   the CA in DIR/certs.d/SERVER/ca.crt (DIR default /etc/containers)
  k3s              k3s, RKE2: DIR/registries.yaml and DIR/ferry-ca.crt
                   (DIR /etc/rancher/k3s or /etc/rancher/rke2; restart k3s/rke2)

Without --dir it prints the files (naming the default directory's paths).
--print-containerd-config prints the config that points containerd's CRI
plugin at --dir, in the form of the containerd on PATH (1.x or 2.x, from
"containerd --version"), or both forms when there is none.`,
		Example: `  ferry mirror-config --server https://10.0.0.5:5000 --ca ca.crt --mirror docker.io --mirror quay.io \
    --dir /etc/containerd/certs.d
  ferry mirror-config --print-containerd-config --dir /etc/containerd/certs.d
  ferry mirror-config --format registries.conf --server https://10.0.0.5:5000 --ca ca.crt \
    --mirror docker.io --dir /etc/containers
  ferry mirror-config --format k3s --server https://10.0.0.5:5000 --ca ca.crt \
    --mirror docker.io --dir /etc/rancher/k3s`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, ok := installer.MirrorFormats[opts.Format]; !ok {
				return usageError{fmt.Errorf("--format %q: want one of %s", opts.Format, strings.Join(formats, ", "))}
			}
			if printContainerd {
				return printContainerdConfig(cmd, g, opts.Dir)
			}
			if caFile != "" {
				ca, err := os.ReadFile(caFile)
				if err != nil {
					return fmt.Errorf("--ca: %w", err)
				}
				opts.CA = ca
			}
			if opts.Dir == "" {
				opts.Dir = installer.MirrorFormats[opts.Format]
				files, err := installer.MirrorConfig(opts)
				if err != nil {
					return usageError{err}
				}
				return report(cmd, g, mirrorFilesJSON(files, false), func(w io.Writer) { printMirrorFiles(w, files) }, nil)
			}
			files, err := installer.WriteMirrorConfig(opts)
			if err != nil {
				return err
			}
			return report(cmd, g, mirrorFilesJSON(files, true), func(io.Writer) {
				for _, f := range files {
					g.log.Infof("wrote %s", f.Path)
				}
			}, nil)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Server, "server", "", "mirror URL, e.g. https://10.0.0.5:5000")
	fl.StringArrayVar(&opts.Mirrors, "mirror", nil, "registry host to send to the mirror (repeatable): docker.io, quay.io, ...")
	fl.StringVar(&opts.Format, "format", installer.FormatHostsTOML, "configuration format: "+strings.Join(formats, ", "))
	fl.StringVar(&opts.Dir, "dir", "", "directory to write into (prints the files when empty); with --print-containerd-config, the config_path (default /etc/containerd/certs.d)")
	fl.StringVar(&caFile, "ca", "", "CA certificate of the mirror (from ferry serve --ca-out)")
	fl.BoolVar(&printContainerd, "print-containerd-config", false, "print containerd's CRI registry config for the hosts.toml directory --dir, for the containerd on PATH")
	return cmd
}

// mirrorFile is the -o json form of a mirror configuration file.
type mirrorFile struct {
	Path string `json:"path"`
	// Content is the file's text, for a configuration file; a CA file is
	// a copy of --ca.
	Content string `json:"content,omitempty"`
	CA      bool   `json:"ca,omitempty"`
	Written bool   `json:"written"`
}

func mirrorFilesJSON(files []installer.MirrorFile, written bool) []mirrorFile {
	out := make([]mirrorFile, len(files))
	for i, f := range files {
		out[i] = mirrorFile{Path: f.Path, CA: !f.Config, Written: written}
		if f.Config {
			out[i].Content = string(f.Content)
		}
	}
	return out
}

// printMirrorFiles prints the configuration files, and where each CA goes.
func printMirrorFiles(out io.Writer, files []installer.MirrorFile) {
	for _, f := range files {
		if f.Config {
			fmt.Fprintf(out, "# --- %s\n%s\n", f.Path, f.Content)
		} else {
			fmt.Fprintf(out, "# --- %s: a copy of the --ca file\n\n", f.Path)
		}
	}
}

// printContainerdConfig prints the CRI registry config for the containerd
// on PATH, or both forms when there is none.
func printContainerdConfig(cmd *cobra.Command, g *globalOptions, dir string) error {
	if dir == "" {
		dir = installer.MirrorFormats[installer.FormatHostsTOML]
	}
	majors := []int{1, 2}
	bin, err := exec.LookPath("containerd")
	if err == nil {
		version, major, verr := containerd.BinaryVersion(cmd.Context(), bin)
		if verr != nil && !errors.Is(verr, containerd.ErrVersion) {
			return verr
		}
		if verr != nil {
			return fmt.Errorf("%w; run on the node, or pick the form yourself from the README", verr)
		}
		g.log.Infof("%s is containerd %s: printing the %d.x form", bin, version, major)
		majors = []int{major}
	} else {
		g.log.Warnf("no containerd on PATH (%v): printing the 1.x and 2.x forms; use the one of the node's containerd", err)
	}
	for i, major := range majors {
		conf, err := installer.ContainerdRegistryConfig(major, dir)
		if err != nil {
			return err
		}
		if i > 0 {
			fmt.Fprintln(cmd.OutOrStdout())
		}
		fmt.Fprint(cmd.OutOrStdout(), conf)
	}
	return nil
}
