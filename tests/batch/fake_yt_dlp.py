#!/usr/bin/python3
"""A stand-in for yt-dlp in wisp's URL-input tests: no network.

Usage: fake_yt_dlp.py FIXTURE LOG YT-DLP-ARGS...
(a `yt-dlp` shell wrapper that the test puts first on PATH passes FIXTURE and
LOG). Logs its yt-dlp arguments as one JSON line to LOG, then "downloads"
FIXTURE for the URL (its last argument) into the -o template, with the title
"JFK inaugural", the id from the URL's v= parameter and the extension m4a
(written as a .part file, then renamed, as yt-dlp does). A v= of "gone" fails
the way yt-dlp does for a removed video.
"""
import json
import os
import shutil
import sys
from urllib.parse import parse_qs, urlsplit


def main():
    fixture, log, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    with open(log, "a") as f:
        f.write(json.dumps(args) + "\n")
    url = args[-1]
    if "-x" not in args or "-o" not in args:
        sys.stderr.write("ERROR: the fake wants -x and -o\n")
        return 2
    video = parse_qs(urlsplit(url).query).get("v", ["page"])[0]
    if video == "gone":
        sys.stderr.write("WARNING: [youtube] Falling back to generic n function search\n")
        sys.stderr.write("ERROR: [youtube] gone: Video unavailable. This video has been removed\n")
        return 1
    template = args[args.index("-o") + 1]
    path = template.replace("%(title)s", "JFK inaugural").replace("%(id)s", video).replace("%(ext)s", "m4a")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    shutil.copyfile(fixture, path + ".part")
    os.rename(path + ".part", path)
    print("[ExtractAudio] Destination: " + path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
