"""Split a LeakSanitizer report into its leak records and say which are rnncore's.

Usage: python leak_records.py REPORT...   (ASAN_OPTIONS=log_path=... files)

A record is rnncore's when any frame of its allocation stack is in the
extension (_core*.so) or in rnncore's sources (src/cpp/): those must never
appear.  Prints one line per record: bytes, objects, the frames that
identify it.  Exit status 1 when a record is rnncore's.
"""

import re
import sys

RECORD = re.compile(r"^(Direct|Indirect) leak of (\d+) byte\(s\) in (\d+) object\(s\)")
FRAME = re.compile(r"^\s+#\d+ 0x[0-9a-f]+ in (.+)$")
OURS = re.compile(r"_core\.cpython|src/cpp/|rnncore")


def records(text):
    current = None
    for line in text.splitlines():
        if m := RECORD.match(line):
            current = {"kind": m[1], "bytes": int(m[2]), "objects": int(m[3]), "frames": []}
            yield current
        elif current is not None and (m := FRAME.match(line)):
            current["frames"].append(m[1])
        elif not line.strip():
            current = None


def main(paths):
    ours = 0
    for path in paths:
        for rec in records(open(path, errors="replace").read()):
            mine = any(OURS.search(f) for f in rec["frames"])
            ours += mine
            tag = "RNNCORE" if mine else "other  "
            key = [f.split(" (")[0].split(" ")[0] for f in rec["frames"] if "interceptor" not in f][:6]
            print(f"{tag} {rec['kind']:8s} {rec['bytes']:7d} B {rec['objects']:4d} obj  {' < '.join(key)}")
    return 1 if ours else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
