#!/bin/sh
# Installs appgear from this source checkout:
#   1. builds the binary with cargo (from source, nothing prebuilt is downloaded);
#   2. puts it on PATH: /usr/local/bin (directly when writable, else with sudo), or ~/.local/bin;
#   3. creates the home folder (/opt/appgear) owned by you, so that `appgear up` needs no root;
#   4. checks that Docker is installed and that you can use it.
# Running it again rebuilds what changed and reinstalls; the home folder and its contents are kept.
#
# usage: ./install.sh [--prefix DIR] [--home DIR]
#   --prefix DIR   install the binary as DIR/bin/appgear (default: /usr/local, else ~/.local)
#   --home DIR     the home folder to create (default: /opt/appgear, appgear's default)
set -eu

prefix=
home=/opt/appgear
usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || { echo "install.sh: --prefix needs a folder" >&2; exit 2; }; prefix=$2; shift ;;
    --prefix=*) prefix=${1#*=} ;;
    --home) [ $# -ge 2 ] || { echo "install.sh: --home needs a folder" >&2; exit 2; }; home=$2; shift ;;
    --home=*) home=${1#*=} ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see ./install.sh --help)" >&2; exit 2 ;;
  esac
  shift
done

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$1" >&2; exit "${2:-1}"; }

src=$(cd "$(dirname "$0")" && pwd)
[ -f "$src/Cargo.toml" ] || die "run install.sh from the appgear source folder (no Cargo.toml next to it)" 2

# Who the installation is for. Under `sudo ./install.sh`, that is the user who ran sudo, not root:
# the home folder must belong to them, and the build must not leave root-owned files in their checkout.
if [ "$(id -u)" = 0 ] && [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
  user=$SUDO_USER
  as_user() { sudo -u "$user" -H -- "$@"; }
else
  user=$(id -un)
  as_user() { "$@"; }
fi
group=$(id -gn "$user")

# Runs a command as root: directly when we are root, else through sudo (asking for a password only
# when there is a terminal to ask on). Fails when neither works.
as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    if [ -t 0 ]; then sudo -- "$@"; else sudo -n -- "$@"; fi
  else
    return 1
  fi
}

# --- 1. build -----------------------------------------------------------------------------------
# rustup puts cargo in ~/.cargo/bin, which is not on root's PATH under sudo.
cargo=$(command -v cargo 2>/dev/null || true)
if [ -z "$cargo" ]; then
  for c in "$HOME/.cargo/bin/cargo" "$(getent passwd "$user" | cut -d: -f6)/.cargo/bin/cargo"; do
    [ -x "$c" ] && { cargo=$c; break; }
  done
fi
[ -n "$cargo" ] || die "cargo is missing: install Rust from https://rustup.rs (curl ... | sh), open a new shell, and run ./install.sh again" 3

say "building appgear (release; the first build takes a few minutes)"
# A plain build reuses target/ on the next run, where `cargo install` would start over.
as_user "$cargo" build --release --locked --manifest-path "$src/Cargo.toml" ||
  die "the build failed (see cargo's messages above)"
bin=$src/target/release/appgear

# --- 2. install on PATH -------------------------------------------------------------------------
put() { # DIR [root]: copy the binary into DIR, as root when asked
  if [ "${2:-}" = root ]; then
    as_root mkdir -p "$1" && as_root install -m 0755 "$bin" "$1/appgear"
  else
    mkdir -p "$1" && install -m 0755 "$bin" "$1/appgear"
  fi
}
if [ -n "$prefix" ]; then
  dest=$prefix/bin
  if mkdir -p "$dest" 2>/dev/null && [ -w "$dest" ]; then put "$dest"; else put "$dest" root; fi ||
    die "cannot write to $dest: choose another --prefix, or run with sudo"
elif [ -w /usr/local/bin ]; then
  dest=/usr/local/bin; put "$dest"
elif put /usr/local/bin root 2>/dev/null; then
  dest=/usr/local/bin
else
  # No root at hand: a per-user install works just as well.
  dest=$HOME/.local/bin; put "$dest" || die "cannot write to $dest"
fi
say "installed $("$dest/appgear" --version) as $dest/appgear"
case ":$PATH:" in
  *":$dest:"*) ;;
  *) say "note: $dest is not on your PATH; add it, e.g. echo 'export PATH=\"$dest:\$PATH\"' >> ~/.profile, then open a new shell" ;;
esac

# --- 3. the home folder -------------------------------------------------------------------------
# appgear writes .env, docker-compose.yml, config/, data/ and logs/ there; when it is the user's,
# `appgear up` runs without root. Root is asked for only to create it (or to hand it to the user).
owner_of() { stat -c %U "$1" 2>/dev/null || ls -ld "$1" | awk '{print $3}'; }
if [ -d "$home" ] && [ "$(owner_of "$home")" = "$user" ]; then
  say "home folder $home is already yours; kept as it is"
else
  if [ ! -d "$home" ] && as_user mkdir -p "$home" 2>/dev/null; then
    : # a folder the user may create alone (e.g. under their own home)
  else
    say "creating $home owned by $user (needs root, only for this step)"
    { as_root mkdir -p "$home" && as_root chown "$user:$group" "$home"; } ||
      die "cannot create $home owned by $user: run 'sudo mkdir -p $home && sudo chown $user $home', or pick a folder of your own with --home ~/appgear" 3
  fi
  say "home folder $home is ready (owner $user)"
fi
if [ "$home" != /opt/appgear ]; then
  say "note: appgear uses /opt/appgear unless told otherwise: export APPGEAR_HOME=$home (or pass --home $home)"
fi

# --- 4. Docker ----------------------------------------------------------------------------------
# Not fatal: appgear is installed and its gitops commands work without Docker; `appgear up` does not.
if ! command -v docker >/dev/null 2>&1; then
  say "warning: Docker is not installed. appgear up needs a Docker Engine:"
  say "  Debian/Ubuntu: sudo apt-get install docker.io   (others: https://docs.docker.com/engine/install/)"
# `docker version` prints the server's error on stderr, where `docker info` mixes it into stdout.
elif ! out=$(as_user docker version --format '{{.Server.Version}}' 2>&1); then
  case "$out" in
    *"permission denied"*)
      say "warning: $user may not use Docker (permission denied on its socket). Fix:"
      say "  sudo usermod -aG docker $user   then log out and in again (or run: newgrp docker)" ;;
    *)
      say "warning: Docker is installed but not running. Start it:"
      say "  sudo systemctl start docker   (or, without systemd: sudo dockerd &)" ;;
  esac
else
  say "Docker engine $out is reachable"
fi

say "done. Next: appgear up   (appgear doctor checks this machine)"
