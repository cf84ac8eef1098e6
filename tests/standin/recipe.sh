#!/bin/sh
# Builds the stand-in recipe image the builder's docker executor tests run instead of a real
# toolchain (Node, Rust, Android SDK), which cannot be pulled on machines without a registry:
# a static busybox with the applets the test recipes use, as root, no ENTRYPOINT (the target's
# command is the whole command line), no PATH of its own (Docker's default applies).
# Usage: recipe.sh NAME  → imports NAME:1 and prints its image id (sha256:<64 hex>), the
# content-addressed reference the builder config accepts for a local image.
set -eu
name=${1:?usage: recipe.sh NAME}
busybox=$(command -v busybox) || { echo "busybox is missing: apt-get install busybox-static" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
r="$work/root"
mkdir -p "$r/bin" "$r/tmp" "$r/etc" "$r/root"
cp "$busybox" "$r/bin/busybox"
for a in sh mkdir echo head sha256sum tar gzip sleep wget nc true false tr cat ln ls env rm dd yes; do
  ln -sf busybox "$r/bin/$a"
done
echo "root:x:0:0:root:/root:/bin/sh" > "$r/etc/passwd"
echo "root:x:0:" > "$r/etc/group"
chmod 1777 "$r/tmp"
tar -C "$r" --owner=0 --group=0 -cf "$work/root.tar" .
docker import "$work/root.tar" "$name:1" >/dev/null
docker image inspect --format '{{.Id}}' "$name:1"
