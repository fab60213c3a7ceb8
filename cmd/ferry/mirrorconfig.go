package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ferry-oci/ferry/installer"
)

func init() { commands = append(commands, newMirrorConfigCommand) }

func newMirrorConfigCommand(g *globalOptions) *cobra.Command {
	var opts installer.MirrorOptions
	var caFile string
	cmd := &cobra.Command{
		Use:   "mirror-config --server URL --mirror HOST... [--dir /etc/containerd/certs.d]",
		Short: "Write containerd hosts.toml files that send pulls for HOST to a ferry (or any) registry",
		Long: `mirror-config writes, for every --mirror host, DIR/HOST/hosts.toml telling
containerd (config_path = DIR in its CRI registry config) to pull that
registry's images from --server first, trusting --ca when given. Without
--dir it prints the files instead.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if caFile != "" {
				ca, err := os.ReadFile(caFile)
				if err != nil {
					return fmt.Errorf("--ca: %w", err)
				}
				opts.CA = ca
			}
			if opts.Dir == "" {
				files, err := installer.MirrorConfig(opts)
				if err != nil {
					return usageError{err}
				}
				for _, f := range files {
					if filepath.Base(f.Path) == "hosts.toml" {
						fmt.Fprintf(cmd.OutOrStdout(), "# --- %s\n%s\n", f.Path, f.Content)
					}
				}
				return nil
			}
			files, err := installer.WriteMirrorConfig(opts)
			if err != nil {
				return err
			}
			for _, f := range files {
				g.log.Infof("wrote %s", f.Path)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Server, "server", "", "mirror URL, e.g. https://10.0.0.5:5000")
	cmd.Flags().StringArrayVar(&opts.Mirrors, "mirror", nil, "registry host to send to the mirror (repeatable): docker.io, quay.io, ...")
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "containerd config_path to write into (prints the files when empty)")
	cmd.Flags().StringVar(&caFile, "ca", "", "CA certificate of the mirror (from ferry serve --ca-out)")
	return cmd
}
