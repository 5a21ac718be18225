// Command bench serves the image store's benchmark image and pulls it, so
// that compare.sh can time sbx's pull against skopeo copy + umoci unpack
// as whole processes:
//
//	bench serve [-addr 127.0.0.1:0]   print the image reference, then serve it
//	bench pull -root DIR REF          pull REF into a store at DIR
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sbx-dev/sbx/runtime/image"
	"github.com/sbx-dev/sbx/runtime/image/internal/benchimage"
)

func main() {
	log.SetFlags(0)
	if len(os.Args) < 2 {
		log.Fatal("usage: bench serve [-addr ADDR] | bench pull -root DIR REF")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(ctx, os.Args[2:])
	case "pull":
		err = pull(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		log.Fatalf("bench %s: %v", os.Args[1], err)
	}
}

func serve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "loopback address to listen on")
	fs.Parse(args)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	go srv.Serve(ln)
	img, _, err := benchimage.Build()
	if err != nil {
		return err
	}
	ref := ln.Addr().String() + "/bench/image:latest"
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
		return err
	}
	fmt.Println(ref)
	<-ctx.Done()
	return srv.Close()
}

func pull(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("pull", flag.ExitOnError)
	root := fs.String("root", "", "store directory")
	fs.Parse(args)
	if *root == "" || fs.NArg() != 1 {
		return fmt.Errorf("usage: bench pull -root DIR REF")
	}
	s, err := image.Open(*root)
	if err != nil {
		return err
	}
	img, err := s.Pull(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%s %s, %d layers\n", img.Ref, img.Digest, len(img.LayerDirs))
	return nil
}
