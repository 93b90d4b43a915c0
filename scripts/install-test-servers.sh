#!/usr/bin/env bash
# Install Cyrus IMAP 3.6 and Courier-IMAP 5 / Courier-POP3 for the interop tests, beside Dovecot,
# Postfix 3.7 with Dovecot's LMTP server for the SMTP submission tests, and headless Chromium
# (Debian's package) for the browser test of the event streams.
#
# cyrus-imapd, cyrus-pop3d, courier-imap and courier-pop each conflict with dovecot-imapd and
# dovecot-pop3d (imap-server / pop3-server), so `apt-get install` of them would remove Dovecot.
# Only the packages that do not conflict are installed; the conflicting ones are fetched with
# `apt-get download` and unpacked with `dpkg -x` into $MAILGATE_TEST_SERVERS_DIR (default
# /var/cache/mailgate-test-servers)/{cyrus,courier}/pkg, where tests/harness finds them.
# Postfix conflicts with the machine's MTA (exim4 here): it is unpacked the same way into
# $MAILGATE_TEST_SERVERS_DIR/postfix/pkg, its binaries' RUNPATH set to the unpacked libraries
# (patchelf), and its accounts (user postfix, groups postfix and postdrop) are created.
# Idempotent; quiet and fast (one dpkg-query) when everything is there already. Runs apt-get
# update only when something is missing. Uses sudo when not root.
set -euo pipefail

CACHE="${MAILGATE_TEST_SERVERS_DIR:-/var/cache/mailgate-test-servers}"
# --no-install-recommends matters: cyrus-common recommends cyrus-imapd (would remove Dovecot).
INSTALL=(cyrus-common sasl2-bin courier-base courier-authdaemon courier-authlib-userdb
  gamin libgamin0 dovecot-lmtpd patchelf chromium)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=no
apt_update() {
  if [ "$apt_updated" = no ]; then
    as_root apt-get update -qq
    apt_updated=yes
  fi
}

# Lines "package version" of the INSTALL packages that are installed.
installed() {
  dpkg-query -W -f='${db:Status-Status} ${Package} ${Version}\n' "${INSTALL[@]}" 2>/dev/null |
    sed -n 's/^installed //p' || true
}

# The version of $1 in "package version" lines $2, empty when absent.
version_in() { sed -n "s/^$1 //p" <<<"$2"; }

present=$(installed)
missing=()
for package in "${INSTALL[@]}"; do
  [[ $'\n'"$present" == *$'\n'"$package "* ]] || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]} for the tests (Cyrus, Courier, Postfix, Chromium)"
  apt_update
  log=$(mktemp)
  # --no-remove: abort rather than remove anything (Dovecot above all).
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends --no-remove -o DPkg::Lock::Timeout=120 "${INSTALL[@]}" >"$log" 2>&1
  then
    cat "$log" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
  present=$(installed)
  # A service manager may have started the packaged authdaemond: the harness runs its own.
  if [ -f /run/courier/authdaemon/pid ] &&
    as_root kill -0 "$(cat /run/courier/authdaemon/pid)" 2>/dev/null; then
    as_root /usr/sbin/authdaemond stop >/dev/null 2>&1 || true
  fi
fi

# unpack NAME STAMP PACKAGE=VERSION...: fetch the packages and dpkg -x them into $CACHE/NAME/pkg,
# stamped with the version of the installed package they depend on exactly (when that one is
# upgraded, the tree is made again).
unpack() {
  local stamp=$2 dir="$CACHE/$1" work
  shift 2
  echo "unpacking ${*%%=*} into $dir/pkg"
  as_root mkdir -p "$dir"
  work=$(as_root mktemp -d "$dir/tmp.XXXXXX")
  as_root chown _apt "$work" 2>/dev/null || true # apt downloads as _apt where it can
  download() { as_root sh -c 'cd "$0" && apt-get download -qq "$@"' "$work" "$@"; }
  if ! download "$@" >/dev/null 2>&1; then
    apt_update
    download "$@" >/dev/null
  fi
  as_root mkdir "$work/pkg"
  for deb in $(as_root sh -c 'ls "$0"/*.deb' "$work"); do
    as_root dpkg -x "$deb" "$work/pkg"
  done
  echo "$stamp" | as_root tee "$work/pkg/.mailgate-version" >/dev/null
  as_root rm -rf "$dir/pkg"
  as_root mv "$work/pkg" "$dir/pkg"
  as_root rm -rf "$work"
}

# Whether $CACHE/$1/pkg has binary $2 and was made for version $3.
unpacked() {
  [ -x "$CACHE/$1/pkg/$2" ] && [ "$(cat "$CACHE/$1/pkg/.mailgate-version" 2>/dev/null)" = "$3" ]
}

cyrus_version=$(version_in cyrus-common "$present")
if ! unpacked cyrus usr/lib/cyrus/bin/imapd "$cyrus_version"; then
  unpack cyrus "$cyrus_version" "cyrus-imapd=$cyrus_version" "cyrus-pop3d=$cyrus_version"
fi

courier_version=$(version_in courier-base "$present")
if ! unpacked courier usr/bin/imapd "$courier_version"; then
  # courier-pop has courier-base's version; courier-imap's is "<imap version>+<base version>".
  imap_version() {
    apt-cache madison courier-imap | awk -v want="+$courier_version" '{ v = $3 }
      substr(v, length(v) - length(want) + 1) == want { print v; exit }'
  }
  imap=$(imap_version)
  if [ -z "$imap" ]; then
    apt_update
    imap=$(imap_version)
  fi
  if [ -z "$imap" ]; then
    echo "no courier-imap for courier-base $courier_version in the package lists" >&2
    exit 1
  fi
  unpack courier "$courier_version" "courier-imap=$imap" "courier-pop=$courier_version"
fi

# Postfix: accounts as the package's postinst would make them, then the unpacked tree.
getent group postfix >/dev/null || as_root groupadd --system postfix
getent group postdrop >/dev/null || as_root groupadd --system postdrop
getent passwd postfix >/dev/null ||
  as_root useradd --system --gid postfix --home-dir /var/spool/postfix --no-create-home \
    --shell /usr/sbin/nologin postfix

POSTFIX_LAYOUT=2 # bump when the steps below change
if [ "$(cat "$CACHE/postfix/pkg/.mailgate-ready" 2>/dev/null)" != "$POSTFIX_LAYOUT" ]; then
  unpack postfix any postfix
  pkg="$CACHE/postfix/pkg"
  # The binaries look for libpostfix-*.so in /usr/lib/postfix: point them at the unpacked ones.
  for file in "$pkg"/usr/sbin/* "$pkg"/usr/lib/postfix/sbin/* "$pkg"/usr/lib/postfix/*.so; do
    [ -n "$(as_root patchelf --print-rpath "$file" 2>/dev/null)" ] || continue # scripts, .a
    case $file in
      "$pkg"/usr/sbin/*) runpath='$ORIGIN/../lib/postfix' ;;
      "$pkg"/usr/lib/postfix/sbin/*) runpath='$ORIGIN/..' ;;
      *) runpath='$ORIGIN' ;;
    esac
    as_root patchelf --set-rpath "$runpath" "$file"
  done
  # as the package sets them up (else `postfix check` warns on every start)
  as_root chgrp postdrop "$pkg/usr/sbin/postqueue" "$pkg/usr/sbin/postdrop"
  as_root chmod g+s "$pkg/usr/sbin/postqueue" "$pkg/usr/sbin/postdrop"
  echo "$POSTFIX_LAYOUT" | as_root tee "$pkg/.mailgate-ready" >/dev/null
fi
