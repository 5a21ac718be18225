package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/sbx-dev/sbx/convert/kube"
)

type exportCmd struct {
	Kubernetes exportKubernetesCmd `cmd:"" aliases:"k8s" help:"Write Kubernetes manifests for the sandboxes: Deployments or Pods, Services, NetworkPolicies, Secrets, a RuntimeClass."`
}

type exportKubernetesCmd struct {
	Output       string `short:"o" help:"Write one file per sandbox (and 00-runtimeclass.yaml, 01-volumes.yaml: sandbox names never start with a digit, and kubectl apply -f DIR takes them first) into DIR instead of one stream on standard output." placeholder:"DIR" type:"path"`
	Force        bool   `help:"Overwrite files in DIR."`
	RuntimeClass string `help:"The RuntimeClass the pods run with; an empty value leaves it out (and its manifest)." default:"krun" placeholder:"NAME"`
	Volumes      string `help:"How mounts become volumes: hostpath (this machine's directories; a one-node cluster) or pvc (a PersistentVolumeClaim each)." enum:"hostpath,pvc" default:"hostpath"`
}

func (c *exportKubernetesCmd) Run(a *app) error {
	cfg, err := a.load()
	if err != nil {
		return err
	}
	res, err := kube.Export(cfg, kube.WithRuntimeClass(c.RuntimeClass), kube.WithVolumes(c.Volumes))
	if err != nil {
		return err
	}
	for _, n := range res.Notes {
		fmt.Fprintf(a.stderr, "%s %s\n", a.paint(a.ecolor, yellow, "Warning:"), n)
	}
	if c.Output == "" {
		data, err := res.Bytes()
		if err != nil {
			return err
		}
		_, err = a.stdout.Write(data)
		return err
	}
	if err := os.MkdirAll(c.Output, 0o755); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	// Refuse before writing anything, so that a refusal leaves DIR as it was.
	if !c.Force {
		for _, f := range res.Files {
			p := filepath.Join(c.Output, f.Name+".yaml")
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("%s already exists: sbx export never overwrites a file (use --force to replace it, or -o another directory)", displayPath(p))
			}
		}
	}
	for _, f := range res.Files {
		data, err := f.Bytes()
		if err != nil {
			return err
		}
		p := filepath.Join(c.Output, f.Name+".yaml")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	fmt.Fprintf(a.stderr, "Wrote %s into %s. Next: kubectl apply -f %s", plural(len(res.Files), "manifest file", "manifest files"), displayPath(c.Output), displayPath(c.Output))
	if c.RuntimeClass != "" {
		fmt.Fprintf(a.stderr, " (00-runtimeclass.yaml needs a cluster admin, once)")
	}
	fmt.Fprintln(a.stderr, ".")
	return nil
}
