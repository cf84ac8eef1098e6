#!/bin/sh
# appgear's in-cluster Git server for `cluster up --with-argocd`: makes one Git repository of
# the rendered gitops tree and serves it read-only over the git protocol (`git daemon`).
#
# Why git://: Argo CD's repo-server lists refs with go-git and fetches with the git CLI. Both
# speak the git protocol and git's smart HTTP; go-git cannot list the refs of a "dumb" HTTP
# folder. For a URL that is not http(s), Argo CD v3.5.1 hands go-git's own transport the URL's
# scheme (util/git/workaround.go, newClient), and a repository with no registered credentials
# gets none: git:// works as it is. `git daemon` is the smallest smart server: no HTTP server,
# no CGI, nothing to configure, and read-only unless told otherwise (receive-pack is off).
#
# The same script runs in the pod (from a ConfigMap) and in appgear's tests on a host.
#   TREE    the rendered tree (a ConfigMap volume in the pod)
#   SERVE   an empty, writable folder for the repository
#   LISTEN  address to listen on; PORT its port
set -eu
tree="${TREE:-/tree}"
serve="${SERVE:-/srv/git}"
work="$serve/.work"
repo="$serve/appgear-gitops-suites.git"

rm -rf "$work" "$repo"
mkdir -p "$work"
# A ConfigMap volume holds its files behind links into a hidden, timestamped folder
# (`..data`); copying the visible top-level entries, following links, takes the files alone.
for entry in "$tree"/*; do
  cp -RL "$entry" "$work/"
done

# A fixed author and date: the same tree gives the same commit at every start, so Argo CD
# sees a new revision only when the tree changed.
export GIT_AUTHOR_NAME=appgear GIT_AUTHOR_EMAIL=appgear@localhost
export GIT_COMMITTER_NAME=appgear GIT_COMMITTER_EMAIL=appgear@localhost
export GIT_AUTHOR_DATE=2000-01-01T00:00:00Z GIT_COMMITTER_DATE=2000-01-01T00:00:00Z
git -C "$work" init -q -b main
git -C "$work" add -A
git -C "$work" commit -q -m "appgear gitops render"
git clone -q --bare "$work" "$repo"
rm -rf "$work"

exec git daemon --reuseaddr --export-all --informative-errors \
  --base-path="$serve" --listen="${LISTEN:-0.0.0.0}" --port="${PORT:-9418}" "$serve"
