// Package image is sbx's image store: it pulls OCI and Docker images from
// registries and local sources, keeps their blobs content-addressed on disk,
// unpacks every layer once, and answers the runtime's question "which layer
// directories, in which order, and with which config, make up image X".
//
// # Sources
//
// A reference is one of
//
//   - a registry reference, parsed with go-containerregistry's name package
//     (Docker Hub is the default registry, "library/" the default namespace).
//     localhost, 127.0.0.1 and ::1 are spoken to over plain HTTP; other
//     registries only when listed with [WithInsecureRegistries]. Credentials
//     come from the user's Docker config and credential helpers
//     ([authn.DefaultKeychain]) unless [WithKeychain] says otherwise. An
//     index resolves to the host's linux/GOARCH image ([WithPlatform]).
//   - "oci-layout:PATH", "oci-layout:PATH:TAG" or "oci-layout:PATH@DIGEST":
//     an OCI image layout directory; without a tag or digest the layout must
//     hold exactly one image.
//   - "docker-archive:FILE.tar" or "docker-archive:FILE.tar:REPO:TAG": what
//     "docker save" writes. Such an archive has no registry manifest, so the
//     image's Digest is its image ID (the config digest) and no blob is
//     kept; only the unpacked layers are.
//   - "dir:PATH": a ready root filesystem, used in place and never written
//     to by sbx. It has no layers and no config; [Image.RootDir] is PATH.
//
// # Layout on disk
//
//	ROOT/blobs/sha256/<hex>          manifests, configs and compressed layers
//	ROOT/layers/sha256/<diffid>/     one unpacked layer, keyed by its diff id
//	ROOT/layers/sha256/<diffid>.json what an unprivileged unpack could not
//	                                 apply (ownership, whiteouts), if anything
//	ROOT/images.json                 reference -> manifest digest, platform,
//	                                 config, layers, last use
//	ROOT/locks/                      flock files: images.lock, gc.lock and one
//	                                 per blob and per layer
//	ROOT/tmp/                        blobs being downloaded
//
// ROOT and its directories listed here are 0700 (see Permissions).
//
// A blob is streamed into ROOT/tmp while its sha256 is computed and becomes
// visible under blobs/ only by a rename after the digest matched. A layer is
// unpacked into ROOT/layers/tmp-<diffid>-* while the blob streams in (one
// pass: download, digest, decompress, diff id, unpack) and renamed into
// layers/sha256/ only after both digests matched and its files are on
// disk (syncfs(2) on Linux; elsewhere an fsync of every file and directory
// written, then F_FULLFSYNC on macOS), so a crash never leaves a
// complete-looking layer with empty files; on any failure the temporary
// files are removed. images.json is rewritten atomically (temp
// file, fsync, rename) under the images.lock flock, so concurrent sbx
// processes never lose each other's updates. Each blob and layer has its
// own flock so that two processes pulling the same image fetch every blob
// once: the second waits and then finds the blob in place. Prune holds
// gc.lock exclusively; pulls hold it shared.
//
// # Whiteouts
//
// Layers are unpacked into the form overlayfs consumes when each layer
// directory is a lowerdir:
//
//   - As root (or with CAP_MKNOD), an OCI whiteout ".wh.NAME" becomes a 0:0
//     character device NAME, and an opaque marker ".wh..wh..opq" sets the
//     xattr trusted.overlay.opaque="y" on its directory. This is the
//     overlayfs kernel form, usable by a plain overlay mount.
//   - Unprivileged (not root, or [WithUnprivileged]), device nodes cannot be
//     created and trusted.* xattrs cannot be set. A whiteout then becomes an
//     empty regular file NAME carrying the xattr user.overlay.whiteout="" and
//     its directory gets user.overlay.opaque="x"; an opaque directory gets
//     user.overlay.opaque="y". That is overlayfs' "xattr whiteout" form for
//     a mount with the userxattr option (Linux 6.7 and later). Each whiteout
//     and opaque directory is also recorded in the layer's .json sidecar, so
//     a runtime that cannot use either form can still honour them.
//
// # Safety
//
// A layer is untrusted input. Entries are created with openat2(2) and
// RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS relative to the layer directory, so
// no entry can be written outside it: names with ".." components or absolute
// names, writes through a symlink planted by an earlier entry that points
// outside, and hard links whose target is outside the layer are all refused
// with an error naming the entry. Device nodes are never created,
// privileged or not: a character or block device in a layer (and a hard
// link to one) is left out and listed in the layer's .json sidecar
// ("devices"), since it would give the sandbox, or a host user reaching
// the store, the host device itself; a runtime gives each sandbox its own
// /dev. xattrs in the overlay namespaces (trusted.overlay.*,
// user.overlay.*) are never taken from a layer, so a layer cannot forge a
// whiteout in another form. A layer whose decompressed size exceeds the
// limit ([WithMaxUnpackSize]; default ten times its compressed size plus
// 1 GiB) is refused; the limit bounds both the decompressed stream and the
// sum of the sizes of the files written, so a sparse entry (old GNU 'S' or
// PAX GNU.sparse, which archive/tar expands with its holes as zeros) that
// would expand past it is refused before a byte of it is written. An image
// of more than [MaxLayers] (128) layers is refused at pull, before any
// layer is fetched: each layer is an overlayfs lower directory, and
// overlayfs stacks only so many. A refused layer leaves nothing behind.
//
// # Permissions
//
// Layers keep their setuid and setgid files (an image's su and ping need
// them), so the store's own directories are what keeps other users away:
// ROOT and every directory the store creates under it are 0700 and belong
// to the user running sbx; Open repairs the modes of an older store and
// refuses a store directory that belongs to another user (which would hand
// that user what root unpacks) or, below ROOT, one that is a symlink.
// ROOT itself may be a symlink. Files the store writes are 0600.
//
// openat2 needs Linux 5.6 or later; on an older kernel unpacking fails
// with an error that says so rather than falling back to a weaker check.
//
// Where there is no openat2 (macOS), each path is resolved one component
// at a time from the layer directory's descriptor with
// openat(O_DIRECTORY|O_NOFOLLOW), and the last component is opened with
// O_NOFOLLOW. That resolver follows no symlink at all, so the same entries
// are refused, and also an entry written through a symlink whose target
// stays inside the layer (which openat2 RESOLVE_BENEATH would follow). A
// privileged unpack there writes whiteouts and opaque directories in the
// unprivileged xattr form, recorded in the sidecar, since the overlayfs
// kernel form means nothing there either. Modification times are kept to
// the microsecond.
//
// Ownership is applied when privileged. Unprivileged, files belong to the
// caller and every entry whose owner is not 0:0 is recorded in the layer's
// .json sidecar; setuid and setgid bits are dropped and directories keep
// u+rwx so that the store can remove them. Modes, symlinks (as links,
// targets untouched), hard links, xattrs (user.* only when unprivileged)
// and modification times are kept. A hard link must point at an entry of
// the same layer, as each layer is unpacked on its own; a link to a file
// of a lower layer is refused.
//
// # Interrupted pulls
//
// Every registry request is abandoned when the registry sends nothing for
// the idle timeout ([WithIdleTimeout], default 30 s): while the response
// is awaited and while more of a body is read. A layer download that
// stalls or breaks off is resumed with an HTTP Range request from the
// byte where it stopped (a registry that ignores Range sends the whole
// blob again and the bytes already received are skipped); after three
// attempts in a row that receive nothing the pull fails with an error
// wrapping [ErrStalled] that names the blob and the registry.
//
// A pull that fails or is cancelled removes its temporary blob and layer
// directory; the blobs and layers it completed stay, so the next pull of
// the same image fetches only what is missing. A process killed outright
// may leave files in ROOT/tmp and ROOT/layers/tmp-*; they are never
// visible as blobs or layers, and Prune removes them.
package image
