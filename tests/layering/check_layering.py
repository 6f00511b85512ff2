#!/usr/bin/env python3
"""The host's rooms may use only the rooms their library links.

Reads the rooms from host/CMakeLists.txt (each `qallow_room(name SOURCES ...
LINKS ...)`: a room is the folder of its sources), closes the LINKS over
their transitive links, and fails naming every `#include "room/file.hpp"`
in host/ that reaches a room its own library does not link.  `--self-test`
checks on a made-up tree that a violation is caught and a clean tree passes.
"""
import os
import re
import sys
import tempfile


def rooms_of(cmake_text):
    rooms = {}
    cmake_text = re.sub(r"#[^\n]*", "", cmake_text)
    for m in re.finditer(r"qallow_room\((\w+)(.*?)\)\s*$", cmake_text, re.S | re.M):
        name, body = m.group(1), m.group(2)
        words = body.split()
        section, sources, links = None, [], []
        for w in words:
            if w in ("SOURCES", "LINKS", "PRIVATE"):
                section = w
            elif section == "SOURCES":
                sources.extend(re.findall(r"([a-z_/]+)/[a-z_]+\.cpp", w))
            elif section == "LINKS" and w.startswith("qallow_") and w != "qallow_sdk":
                links.append(w[len("qallow_"):])
        dirs = sorted(set(sources))
        if len(dirs) != 1:
            raise SystemExit(f"host/CMakeLists.txt: room {name}: its sources lie in {dirs}; a room is one folder")
        rooms[name] = {"dir": dirs[0], "links": links}
    return rooms


def closure(rooms, name, seen=None):
    seen = set() if seen is None else seen
    for l in rooms[name]["links"]:
        if l not in seen:
            seen.add(l)
            closure(rooms, l, seen)
    return seen


def check(host):
    rooms = rooms_of(open(os.path.join(host, "CMakeLists.txt")).read())
    by_dir = {r["dir"]: n for n, r in rooms.items()}
    problems = []
    for name, room in rooms.items():
        allowed = {rooms[l]["dir"] for l in closure(rooms, name)} | {room["dir"]}
        top = os.path.join(host, room["dir"])
        for f in sorted(os.listdir(top)):
            if not f.endswith((".cpp", ".hpp")):
                continue
            path = os.path.join(top, f)
            for n, line in enumerate(open(path), 1):
                m = re.match(r'\s*#\s*include\s+"([a-z_/]+)/[a-z_]+\.hpp"', line)
                if not m:
                    continue
                target = m.group(1)
                if target not in by_dir:
                    problems.append(f"{path}:{n}: includes {m.group(0).split()[-1]}: {target}/ is no room")
                elif target not in allowed:
                    problems.append(f"{path}:{n}: room {name} includes {target}/ but links only "
                                    f"{sorted(closure(rooms, name)) or 'no room'} (host/CMakeLists.txt)")
    return rooms, problems


def self_test():
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "a"))
        os.makedirs(os.path.join(d, "b"))
        open(os.path.join(d, "CMakeLists.txt"), "w").write(
            "qallow_room(a SOURCES a/x.cpp LINKS qallow_sdk)\nqallow_room(b SOURCES b/y.cpp LINKS qallow_a)\n")
        open(os.path.join(d, "b", "y.cpp"), "w").write('#include "a/x.hpp"\n')
        open(os.path.join(d, "a", "x.cpp"), "w").write('#include "a/x.hpp"\n')
        _, ok = check(d)
        open(os.path.join(d, "a", "x.cpp"), "a").write('#include "b/y.hpp"\n')
        _, bad = check(d)
    if ok or len(bad) != 1 or "room a includes b/" not in bad[0]:
        print(f"self-test failed: clean tree gave {ok}, violating tree gave {bad}")
        return 1
    print("self-test: a clean tree passes, an upward include is caught")
    return 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    host = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "host")
    rooms, problems = check(host)
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"layering: {len(rooms)} rooms, every include within what its library links")
    return 0


if __name__ == "__main__":
    sys.exit(main())
