#!/usr/bin/env python3
"""Writes a stand-in for a shared library: same soname, same exported
symbols under their default versions, no dependencies, every function
returning 0 (a few that must return a string return ""), every object
zero-filled.

Used by device_bundle.sh to run wisp's Debian build on a machine without
Debian's FFmpeg: libavformat/libavcodec link ~120 codec, network and
graphics libraries that decoding WAV or FLAC never calls, and the loader
needs each one to exist. Only for benchmarking: a stand-in that is called
does nothing.

    stub_lib.py REAL_LIBRARY OUT_DIR SONAME
"""
import collections
import os
import subprocess
import sys

# Functions whose callers use the result as a C string even on failure
# (libavformat's gme probe reads gme_identify_header()'s result).
RETURNS_STRING = {"gme_identify_header"}


def exported_symbols(path):
    """(functions, objects, tls objects, {version: [names]}) of `path`."""
    out = subprocess.run(["readelf", "--dyn-syms", "-W", path], capture_output=True, text=True,
                         check=True).stdout
    funcs, objs, tls = [], [], []
    versions = collections.OrderedDict()
    seen = set()
    for line in out.splitlines():
        f = line.split()
        if len(f) < 8 or not f[0].endswith(":"):
            continue
        size, kind, bind, ndx, name = f[2], f[3], f[4], f[6], f[7]
        # Undefined symbols are imports; ABS ones are the version names.
        if ndx in ("UND", "ABS") or bind not in ("GLOBAL", "WEAK"):
            continue
        version = None
        if "@@" in name:
            name, version = name.split("@@")
        elif "@" in name:
            continue  # an older, non-default version of a symbol: nobody links to it anew
        if not name or name in seen:
            continue
        seen.add(name)
        n = max(int(size, 16) if size.startswith("0x") else int(size), 8)
        if kind in ("FUNC", "IFUNC", "NOTYPE"):
            funcs.append(name)
        elif kind == "OBJECT":
            objs.append((name, n))
        elif kind == "TLS":
            tls.append((name, n))
        else:
            continue
        versions.setdefault(version, []).append(name)
    return funcs, objs, tls, versions


def main():
    real, out_dir, soname = sys.argv[1:4]
    funcs, objs, tls, versions = exported_symbols(real)
    # asm labels: symbol names need not be C identifiers.
    c = ["static const char empty[64];"]
    for i, name in enumerate(funcs):
        if name in RETURNS_STRING:
            c.append(f'const char* f{i}(void) __asm__("{name}");')
            c.append(f"const char* f{i}(void) {{ return empty; }}")
        else:
            c.append(f'long f{i}(void) __asm__("{name}");')
            c.append(f"long f{i}(void) {{ return 0; }}")
    for i, (name, size) in enumerate(objs):
        c.append(f'__attribute__((aligned(64))) char o{i}[{size}] __asm__("{name}");')
    for i, (name, size) in enumerate(tls):
        c.append(f'__thread char t{i}[{size}] __asm__("{name}");')
    base = os.path.join(out_dir, soname)
    with open(base + ".c", "w") as f:
        f.write("\n".join(c) + "\n")
    cmd = ["gcc", "-shared", "-fPIC", "-O0", "-w", "-nostdlib", "-o", base, base + ".c",
           f"-Wl,-soname,{soname}"]
    named = [v for v in versions if v is not None]
    if named:
        # One node per version; unversioned names join the first (ld does
        # not accept an anonymous node next to named ones).
        nodes = {v: list(versions[v]) for v in named}
        nodes[named[0]] += versions.get(None, [])
        with open(base + ".map", "w") as f:
            for v in named:
                f.write(v + " { global: " + " ".join(f'"{s}";' for s in nodes[v]) + " };\n")
        cmd.append(f"-Wl,--version-script={base}.map")
    r = subprocess.run(cmd, capture_output=True, text=True)
    for ext in (".c", ".map"):
        if os.path.exists(base + ext):
            os.remove(base + ext)
    if r.returncode != 0:
        sys.exit(f"stub_lib.py: {soname}: {r.stderr.strip()[:2000]}")


if __name__ == "__main__":
    main()
