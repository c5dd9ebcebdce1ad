#!/bin/sh
# Downloads Debian's libev 4.33-1 source package, checks the upstream
# tarball's sha256, and compares (default) or copies (--update) the vendored
# files in vendor/libev. Needs apt-get with a deb-src entry.
set -eu

VERSION=4.33
DEBIAN_VERSION=1:4.33-1
SHA256=507eb7b8d1015fbec5b935f34ebed15bf346bed04a11ab82b8eee848c4205aea
FILES="ev.c ev.h ev_vars.h ev_wrap.h ev_epoll.c ev_iouring.c ev_kqueue.c
ev_linuxaio.c ev_poll.c ev_port.c ev_select.c ev_win32.c LICENSE Changes
README ev.pod"

mode=verify
case "${1:-}" in
  --update) mode=update ;;
  "") ;;
  *) echo "usage: $0 [--update]" >&2; exit 2 ;;
esac

dest=$(cd "$(dirname "$0")/libev" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

apt-get source --download-only "libev=$DEBIAN_VERSION" >/dev/null
tarball="libev_$VERSION.orig.tar.gz"
echo "$SHA256  $tarball" | sha256sum -c -
tar xzf "$tarball"

status=0
for f in $FILES; do
  if [ "$mode" = update ]; then
    cp "libev-$VERSION/$f" "$dest/$f"
  elif ! cmp -s "libev-$VERSION/$f" "$dest/$f"; then
    echo "differs: vendor/libev/$f" >&2
    status=1
  fi
done
[ "$status" = 0 ] && echo "vendor/libev matches Debian's libev $DEBIAN_VERSION ($mode)"
exit $status
