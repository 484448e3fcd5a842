#!/usr/bin/env bash
# Packs wisp's binaries for a lent machine that lacks Debian's libraries
# (docs/benchmarks.md, "Reproducing"): the binaries, the
# shared libraries they need for real (oneDNN, FFmpeg's four, SQLite, zlib,
# libgomp, libstdc++), and stand-ins (stub_lib.py) for the ~120 others that
# FFmpeg links but decoding WAV/FLAC never calls. glibc stays the machine's.
#
#   tests/perf/device_bundle.sh OUT.tar.xz BINARY...
#
# On the machine: tar -xJf OUT.tar.xz -C DIR; LD_LIBRARY_PATH=DIR/lib DIR/bin/wisp ...
# The test binaries find their data at the absolute source path they were
# built in (WISP_TESTDATA_DIR): link the copied checkout there.
set -euo pipefail
out=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/lib"
cp "$@" "$work/bin/"
[ -x /usr/bin/time ] && cp /usr/bin/time "$work/bin/"  # the scripts' /usr/bin/time -v
real=" libdnnl.so.2 libavcodec.so.59 libavformat.so.59 libavutil.so.57 libswresample.so.4 \
libsqlite3.so.0 libgomp.so.1 libz.so.1 libstdc++.so.6 "
glibc=" libc.so.6 libm.so.6 libpthread.so.0 libdl.so.2 librt.so.1 libresolv.so.2 libgcc_s.so.1 "
needed() {  # "name path" of each library the binaries load, glibc's left out
  for b in "$@"; do ldd "$b"; done | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u |
    while read -r name path; do
      case $glibc in *" $name "*) ;; *) echo "$name $path" ;; esac
    done
}
needed "$@" | while read -r name path; do
  case $real in
    *" $name "*) cp -L "$path" "$work/lib/$name" ;;
    *) python3 "$here/stub_lib.py" "$(readlink -f "$path")" "$work/lib" "$name" ;;
  esac
done
# Everything but glibc must now come from the bundle.
if LD_LIBRARY_PATH="$work/lib" needed "$work"/bin/* | grep -v " $work/lib/"; then
  echo "device_bundle.sh: the binaries still need the libraries above" >&2
  exit 1
fi
tar -C "$work" -cJf "$out" bin lib
echo "wrote $out ($(du -h "$out" | cut -f1))"
