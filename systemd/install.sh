#!/bin/sh
# install.sh — install or remove ivs-autoscaler (called by `make install` / `make uninstall`).
#
#   sh systemd/install.sh install|uninstall DESTDIR PREFIX BUILDDIR
#
# Layout (Debian practice):
#   PREFIX/bin/ivs-autoscaler, PREFIX/bin/ivs-autoscalerctl
#   /lib/systemd/system/*.{service,socket}   when PREFIX=/usr, else PREFIX/lib/systemd/system
#   /usr/lib/sysusers.d/ivs-autoscaler.conf  when PREFIX=/usr, else PREFIX/lib/sysusers.d
#   /etc/ivs-autoscaler/config.yaml          never overwritten; a differing new one goes to
#                                            config.yaml.dist beside it
#   PREFIX/share/man/man8, man5              uncompressed roff
#   PREFIX/share/doc/ivs-autoscaler/         the operator, integration and architecture guides
# Every path is prefixed with DESTDIR. `uninstall` removes exactly these files, except a
# config.yaml that differs from the shipped one (the operator's edits are kept).

set -eu

usage() {
	echo "usage: sh systemd/install.sh install|uninstall DESTDIR PREFIX BUILDDIR" >&2
	exit 2
}

die() {
	echo "install.sh: $*" >&2
	exit 1
}

[ $# -eq 4 ] || usage
action=$1
destdir=$2
prefix=$3
builddir=$4

case $action in
install|uninstall) ;;
*) usage ;;
esac

# PREFIX is substituted into the unit files with sed: keep it to plain absolute paths.
case $prefix in
/*) ;;
*) die "PREFIX must be an absolute path (got '$prefix')" ;;
esac
case $prefix in
*[!A-Za-z0-9/._+-]*) die "PREFIX may only contain letters, digits and / . _ + - (got '$prefix')" ;;
esac
prefix=${prefix%/}
[ -n "$prefix" ] || prefix=/
destdir=${destdir%/}

root=$(cd "$(dirname "$0")/.." && pwd)

if [ "$prefix" = /usr ]; then
	unitdir=/lib/systemd/system
	sysusersdir=/usr/lib/sysusers.d
else
	unitdir=$prefix/lib/systemd/system
	sysusersdir=$prefix/lib/sysusers.d
fi
bindir=$prefix/bin
confdir=/etc/ivs-autoscaler
man5dir=$prefix/share/man/man5
man8dir=$prefix/share/man/man8
docdir=$prefix/share/doc/ivs-autoscaler

binaries="ivs-autoscaler ivs-autoscalerctl"
units="ivs-autoscaler.service ivs-autoscaler.socket"
man8="ivs-autoscaler.8 ivs-autoscalerctl.8"
man5="ivs-autoscaler.yaml.5"
docs="operator-guide.md integration-guide.md architecture.md"

# put MODE SRC DEST: copy one file, creating the directory, and say where it went.
put() {
	mkdir -p "$(dirname "$3")"
	cp "$2" "$3.tmp.$$"
	chmod "$1" "$3.tmp.$$"
	mv -f "$3.tmp.$$" "$3"
	echo "installed $3"
}

# gone PATH: remove one installed file if present, and say so.
gone() {
	if [ -e "$1" ] || [ -L "$1" ]; then
		rm -f "$1"
		echo "removed $1"
	fi
}

# unit_text SRC: the unit with the binary path moved to PREFIX/bin.
unit_text() {
	sed "s|/usr/bin/ivs-autoscaler|$bindir/ivs-autoscaler|g" "$1"
}

do_install() {
	for b in $binaries; do
		if [ ! -f "$builddir/$b" ] || [ ! -x "$builddir/$b" ]; then
			die "$builddir/$b is not built: run 'make' first"
		fi
	done
	for m in $man8 $man5; do
		[ -f "$root/docs/man/$m" ] || die "missing $root/docs/man/$m"
	done

	for b in $binaries; do
		put 0755 "$builddir/$b" "$destdir$bindir/$b"
	done

	tmp=$(mktemp)
	trap 'rm -f "$tmp"' EXIT
	for u in $units; do
		unit_text "$root/systemd/$u" >"$tmp"
		put 0644 "$tmp" "$destdir$unitdir/$u"
	done
	put 0644 "$root/systemd/ivs-autoscaler.sysusers" "$destdir$sysusersdir/ivs-autoscaler.conf"

	for m in $man8; do
		put 0644 "$root/docs/man/$m" "$destdir$man8dir/$m"
	done
	for m in $man5; do
		put 0644 "$root/docs/man/$m" "$destdir$man5dir/$m"
	done
	for d in $docs; do
		if [ -f "$root/docs/$d" ]; then
			put 0644 "$root/docs/$d" "$destdir$docdir/$d"
		fi
	done

	# The daemon runs under a dynamic uid and must read the config: 0644. Secrets do not
	# belong in it; use password_file/credentials_file with LoadCredential= instead.
	conf=$destdir$confdir/config.yaml
	if [ ! -f "$root/etc/config.yaml" ]; then
		echo "install.sh: warning: $root/etc/config.yaml is missing; no config installed" >&2
	elif [ ! -e "$conf" ]; then
		put 0644 "$root/etc/config.yaml" "$conf"
	elif cmp -s "$root/etc/config.yaml" "$conf"; then
		echo "unchanged $conf"
	else
		put 0644 "$root/etc/config.yaml" "$conf.dist"
		echo "kept $conf (it differs from the shipped one); the new example is $conf.dist"
	fi

	if [ -z "$destdir" ]; then
		echo "next: systemd-sysusers; systemctl daemon-reload;" \
			"edit $confdir/config.yaml; systemctl enable --now ivs-autoscaler.socket ivs-autoscaler.service"
	fi
}

do_uninstall() {
	for b in $binaries; do
		gone "$destdir$bindir/$b"
	done
	for u in $units; do
		gone "$destdir$unitdir/$u"
	done
	gone "$destdir$sysusersdir/ivs-autoscaler.conf"
	for m in $man8; do
		gone "$destdir$man8dir/$m"
	done
	for m in $man5; do
		gone "$destdir$man5dir/$m"
	done
	for d in $docs; do
		gone "$destdir$docdir/$d"
	done
	rmdir "$destdir$docdir" 2>/dev/null || true

	conf=$destdir$confdir/config.yaml
	gone "$conf.dist"
	if [ -e "$conf" ]; then
		if [ -f "$root/etc/config.yaml" ] && cmp -s "$root/etc/config.yaml" "$conf"; then
			gone "$conf"
		else
			echo "kept $conf (modified; remove it by hand if you no longer need it)"
		fi
	fi
	rmdir "$destdir$confdir" 2>/dev/null || true
}

case $action in
install) do_install ;;
uninstall) do_uninstall ;;
esac
