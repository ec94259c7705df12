#!/usr/bin/env bash
# Provides the LLVM 23 that `cargo build --features cuda` needs, from Debian's package archive,
# for machines that cannot reach GitHub.
#
# burn's CUDA backend compiles its kernels through cubecl-llvm, whose build script links LLVM
# 23 statically and takes it from a bundle it downloads from GitHub into
# `${XDG_DATA_HOME:-~/.local/share}/tracel/tracel-llvm-23.1.0-4`, unless that folder already
# holds the marker `.tracel-llvm-installed`. This script fills that folder from Debian's own
# LLVM 23 packages (unstable's `llvm-23-dev`, `llvm-23`, `libllvm23` and `libpolly-23-dev`, unpacked, not
# installed), so the build finds it and downloads nothing:
#
#     bash scripts/llvm_for_cuda.sh
#     cargo build --release --features cuda --example gpu_check
#
# Two adjustments make unstable's libraries link on this machine's Debian 12:
# - its static libraries call glibc 2.38's C23 names of strtol & co. (`__isoc23_strtol`);
#   glibc 2.36 has the old names only, so a small archive of forwarders is added to the link;
# - `llvm-config --system-libs` names Z3 by its full path, which cubecl's build script would
#   pass on as `-llibz3`; Z3 serves only LLVM's static analyser, so it is left out.
set -euo pipefail

archive="http://deb.debian.org/debian"
prefix="${XDG_DATA_HOME:-$HOME/.local/share}/tracel/tracel-llvm-23.1.0-4"
if [ -e "$prefix/.tracel-llvm-installed" ]; then
  echo "LLVM for cubecl already in $prefix"
  exit 0
fi

# The headers and libraries LLVM's own link needs, and a C compiler (cubecl-llvm builds C++
# shims against LLVM's headers).
if ! dpkg -s zlib1g-dev libzstd-dev libxml2-dev g++ > /dev/null 2>&1; then
  apt-get install -y --no-install-recommends zlib1g-dev libzstd-dev libxml2-dev g++
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
curl -sSf "$archive/dists/sid/main/binary-amd64/Packages.xz" | xz -dc > "$work/Packages"
for package in llvm-23-dev llvm-23 libllvm23 libpolly-23-dev; do
  file="$(awk -v p="$package" '$1 == "Package:" { hit = ($2 == p) } hit && $1 == "Filename:" { print $2; exit }' "$work/Packages")"
  test -n "$file" || { echo "error: Debian unstable has no package $package" >&2; exit 1; }
  echo "fetching $file"
  curl -sSf -o "$work/$package.deb" "$archive/$file"
  dpkg-deb -x "$work/$package.deb" "$work/root"
done

# The packages' tree is kept whole, since its headers and shared library are reached through
# relative links from usr/lib/llvm-23, and the bundle's folder points into it.
store="$(dirname "$prefix")/debian-llvm-23"
rm -rf "$store" "$prefix"
mkdir -p "$(dirname "$prefix")"
mv "$work/root" "$store"
ln -s "$store/usr/lib/llvm-23" "$prefix"

# glibc 2.38 renamed strtol & co. for C23 (they also read 0b… literals, which LLVM's callers
# never pass); forward the new names to the old ones.
cat > "$work/isoc23.c" << 'C'
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
long __isoc23_strtol(const char *s, char **end, int base) { return strtol(s, end, base); }
long long __isoc23_strtoll(const char *s, char **end, int base) { return strtoll(s, end, base); }
unsigned long __isoc23_strtoul(const char *s, char **end, int base) { return strtoul(s, end, base); }
unsigned long long __isoc23_strtoull(const char *s, char **end, int base) { return strtoull(s, end, base); }
int __isoc23_sscanf(const char *s, const char *format, ...) {
  va_list args; va_start(args, format); int n = vsscanf(s, format, args); va_end(args); return n;
}
int __isoc23_scanf(const char *format, ...) {
  va_list args; va_start(args, format); int n = vscanf(format, args); va_end(args); return n;
}
C
gcc -O2 -fPIC -c "$work/isoc23.c" -o "$work/isoc23.o"
ar rcs "$prefix/lib/libisoc23_compat.a" "$work/isoc23.o"

mv "$prefix/bin/llvm-config" "$prefix/bin/llvm-config.debian"
cat > "$prefix/bin/llvm-config" << 'SH'
#!/bin/sh
# Debian's llvm-config, with Z3 left out of the system libraries and the C23 forwarders added.
real="$(dirname "$0")/llvm-config.debian"
for arg in "$@"; do
  if [ "$arg" = "--system-libs" ]; then
    "$real" "$@" | sed 's#[^ ]*libz3[^ ]*##; s#$# -lisoc23_compat#'
    exit
  fi
done
exec "$real" "$@"
SH
chmod +x "$prefix/bin/llvm-config"
touch "$prefix/.tracel-llvm-installed"
echo "LLVM $("$prefix/bin/llvm-config" --version) for cubecl in $prefix"
