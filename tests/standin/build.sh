#!/bin/sh
# Builds the local stand-in images the integration tests use instead of Traefik and code-server,
# which cannot be pulled on machines without a registry. They honour the same command lines, ports,
# users and health checks as the real images (see README, "What the tests exercise"):
#   traefik:     entrypoint takes `--configFile=F` (must exist) and `traefik healthcheck --configFile=F`;
#                serves :8443 (the published HTTPS port), :8080, and /ping on 127.0.0.1:8082.
#   code-server: runs as uid 1000, takes `--bind-addr=IP:PORT ... DIR`, needs PASSWORD, serves /healthz,
#                checks that DIR is writable, and ships a `curl` that the health check calls.
# Usage: build.sh TAG  → images appgear-standin/traefik:TAG and appgear-standin/code-server:TAG
set -eu
tag=${1:?usage: build.sh TAG}
busybox=$(command -v busybox) || { echo "busybox is missing: apt-get install busybox-static" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rootfs() { # DIR: a minimal root filesystem with a static busybox
  mkdir -p "$1/bin" "$1/usr/bin" "$1/usr/local/bin" "$1/tmp" "$1/etc" "$1/home/coder" "$1/var/log"
  cp "$busybox" "$1/bin/busybox"
  for a in sh wget httpd mkdir cat echo sleep touch rm test ls id nc kill; do ln -sf busybox "$1/bin/$a"; done
  echo "root:x:0:0:root:/root:/bin/sh" > "$1/etc/passwd"
  echo "coder:x:1000:1000:coder:/home/coder:/bin/sh" >> "$1/etc/passwd"
  echo "root:x:0:" > "$1/etc/group"; echo "coder:x:1000:" >> "$1/etc/group"
  chmod 1777 "$1/tmp"
}

# --- traefik ---
t="$work/traefik"; rootfs "$t"
cat > "$t/usr/local/bin/traefik" <<'SH'
#!/bin/sh
# stand-in for traefik v3
if [ "${1:-}" = "healthcheck" ]; then
  exec wget -q -O /dev/null http://127.0.0.1:8082/ping
fi
for a in "$@"; do
  case "$a" in
    --configFile=*|--configfile=*) f=${a#*=}; [ -f "$f" ] || { echo "traefik: config file $f not found" >&2; exit 1; } ;;
  esac
done
mkdir -p /tmp/www; echo OK > /tmp/www/ping; echo "stand-in traefik" > /tmp/www/index.html
echo "stand-in traefik: serving :8443, :8080, ping on 127.0.0.1:8082"
httpd -p 127.0.0.1:8082 -h /tmp/www
httpd -p 8080 -h /tmp/www
# PID 1 ignores SIGTERM without a handler; the real images stop on it, so this one does too.
httpd -f -p 8443 -h /tmp/www & pid=$!
trap 'kill $pid; exit 0' TERM INT
wait $pid
SH
chmod 755 "$t/usr/local/bin/traefik"
cat > "$t/entrypoint.sh" <<'SH'
#!/bin/sh
# as the real image: a first argument starting with '-' is a flag for traefik
case "${1:-}" in -*) set -- traefik "$@" ;; esac
exec "$@"
SH
chmod 755 "$t/entrypoint.sh"
ln -sf /usr/local/bin/traefik "$t/bin/traefik"
tar -C "$t" -cf "$work/traefik.tar" .
docker import \
  --change 'ENTRYPOINT ["/entrypoint.sh"]' --change 'CMD ["traefik"]' \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
  "$work/traefik.tar" "appgear-standin/traefik:$tag" >/dev/null

# --- code-server ---
c="$work/code-server"; rootfs "$c"
cat > "$c/usr/bin/entrypoint.sh" <<'SH'
#!/bin/sh
# stand-in for codercom/code-server: entrypoint.sh passes its arguments to code-server
port=8080; dir=
for a in "$@"; do
  case "$a" in
    --bind-addr=*) port=${a##*:} ;;
    --*) ;;
    *) dir=$a ;;
  esac
done
[ -n "${PASSWORD:-}" ] || { echo "code-server: PASSWORD is not set" >&2; exit 1; }
if [ -n "$dir" ]; then
  touch "$dir/.appgear-standin-probe" 2>/dev/null || { echo "code-server: $dir is not writable by uid $(id -u)" >&2; exit 1; }
  rm -f "$dir/.appgear-standin-probe"
fi
mkdir -p /tmp/www; echo '{"status":"alive"}' > /tmp/www/healthz
echo "stand-in code-server: uid $(id -u) serving :$port for $dir"
httpd -f -p "$port" -h /tmp/www & pid=$!
trap 'kill $pid; exit 0' TERM INT
wait $pid
SH
chmod 755 "$c/usr/bin/entrypoint.sh"
cat > "$c/usr/bin/curl" <<'SH'
#!/bin/sh
# the few curl flags the health check uses: -f -s -S -o FILE URL
out=/dev/null; url=
while [ $# -gt 0 ]; do
  case "$1" in -o) out=$2; shift ;; -*) ;; *) url=$1 ;; esac
  shift
done
exec wget -q -O "$out" "$url"
SH
chmod 755 "$c/usr/bin/curl"
tar -C "$c" --owner=0 --group=0 -cf "$work/cs.tar" --exclude=./home .
tar -C "$c" --owner=1000 --group=1000 -rf "$work/cs.tar" ./home
docker import \
  --change 'ENTRYPOINT ["/usr/bin/entrypoint.sh", "--bind-addr", "0.0.0.0:8080", "."]' \
  --change 'USER 1000' --change 'WORKDIR /home/coder' \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
  "$work/cs.tar" "appgear-standin/code-server:$tag" >/dev/null
echo "appgear-standin/traefik:$tag appgear-standin/code-server:$tag"
