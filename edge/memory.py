#!/usr/bin/env python3
"""Where a running process's resident memory goes, from /proc (edge/measure.sh).

    edge/memory.py PID BINARY [--plugins COPY=NAME,...] [--emulator]

COPY is the file name a plugin is mapped under (the host maps a private
copy named by its SHA-256, <sha256>.so) and NAME the name to print.

Prints VmRSS, VmHWM, Pss (smaps_rollup) and the thread count, then smaps'
Rss grouped: the binary, each shared library, the plugins, the heap, thread
stacks, other threads' malloc arenas and other anonymous memory.

Thread stacks are the anonymous mappings that hold a thread's stack pointer
(/proc/PID/task/TID/syscall).  glibc gives each thread that allocates its
own malloc arena, a mapping aligned to 64 MiB: those are "malloc arenas".

With --emulator (qemu-user) the process is the emulator.  The guest's
mappings are told from the emulator's by address (emulated()): its program,
libraries and plugins by file, its brk heap as the mapping right after the
program, its thread stacks by their 8 MiB size.  What the guest's threads
hold is not attributed per thread, and the emulator's own memory (its
binary, heap, translated code) is listed apart.
"""
import os
import re
import sys

KB = 1024
ARENA_ALIGN = 64 * 1024 * 1024  # glibc HEAP_MAX_SIZE on 64-bit


def mappings(pid):
    """(start, end, perms, path, rss_kb) for every mapping in smaps."""
    out = []
    head = re.compile(r'^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$')
    cur = None
    with open(f'/proc/{pid}/smaps') as f:
        for line in f:
            m = head.match(line)
            if m:
                cur = [int(m.group(1), 16), int(m.group(2), 16), m.group(3), m.group(4).strip(), 0]
                out.append(cur)
            elif line.startswith('Rss:') and cur is not None:
                cur[4] = int(line.split()[1])
    return out


def status(pid):
    s = {}
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            k, _, v = line.partition(':')
            s[k] = v.strip()
    return s


def rollup_pss(pid):
    try:
        with open(f'/proc/{pid}/smaps_rollup') as f:
            for line in f:
                if line.startswith('Pss:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def thread_sps(pid):
    """Stack pointer and name of each thread (needs ptrace access: same user)."""
    out = []
    for tid in sorted(os.listdir(f'/proc/{pid}/task'), key=int):
        try:
            with open(f'/proc/{pid}/task/{tid}/comm') as f:
                name = f.read().strip()
            with open(f'/proc/{pid}/task/{tid}/syscall') as f:
                fields = f.read().split()
            sp = int(fields[-2], 16) if len(fields) >= 3 else None
        except (OSError, ValueError):
            name, sp = '?', None
        out.append((name, sp))
    return out


def classify_guest_anon(start, end, after_binary):
    """An anonymous mapping of the guest under qemu-user (see emulated())."""
    if start == after_binary:
        return ('heap', 'guest .bss and heap (brk)')
    if end - start >= 8 * 1024 * 1024:
        return ('stack', 'guest thread stacks (8 MiB reservations)')
    return ('anon', 'guest other anonymous')


def emulated(maps, binary):
    """qemu-user maps the guest (program, libraries, brk, stacks, mmaps) in
    the guest's address range, here from the program's first page up; the
    emulator's own memory (its binary, heap, translated code, threads) lies
    far above it.  Returns (first guest address, end of the program's last
    mapping)."""
    mine = [(a, b) for a, b, _, path, _ in maps if path and os.path.realpath(path) == binary]
    lo = min(a for a, _ in mine)
    return lo, max(b for _, b in mine)


GUEST_SPAN = 1 << 40  # the guest's mappings lie within a TiB of its program


def classify(maps, binary, plugins, threads, emulator):
    binary = os.path.realpath(binary)
    groups = {}

    def add(key, kb):
        groups[key] = groups.get(key, 0) + kb

    sps = [sp for _, sp in threads if sp]
    guest_lo, after_binary = emulated(maps, binary) if emulator else (0, 0)
    for start, end, perms, path, rss in maps:
        base = os.path.basename(path)
        guest = emulator and guest_lo <= start < guest_lo + GUEST_SPAN and not path.startswith('[')
        if path and os.path.realpath(path) == binary:
            add(('binary', base), rss)
        elif path and base in plugins:
            add(('plugin', plugins[base]), rss)
        elif '/plugin-cache/' in path:
            add(('plugin', 'not shipped: ' + base[:12] + '....so'), rss)
        elif path.startswith('/') and ('.so' in base or 'ld-linux' in base):
            add(('library', base), rss)
        elif emulator and not guest:
            add(('emulator', base or ('translated code (rwx)' if 'x' in perms else path or 'anonymous')), rss)
        elif guest and not path:
            add(classify_guest_anon(start, end, after_binary), rss)
        elif path == '[heap]':
            add(('heap', 'heap (brk)'), rss)
        elif path == '[stack]':
            add(('stack', 'main thread stack'), rss)
        elif path.startswith('['):
            add(('kernel', 'vdso, vvar'), rss)
        elif path.startswith('/'):
            add(('file', base), rss)
        elif any(start <= sp < end for sp in sps):
            add(('stack', 'thread stacks'), rss)
        elif start % ARENA_ALIGN == 0 and end - start <= ARENA_ALIGN:
            add(('arena', 'malloc arenas of other threads'), rss)
        else:
            add(('anon', 'other anonymous (large malloc blocks, buffers)'), rss)
    return groups


ORDER = ['emulator', 'binary', 'library', 'plugin', 'file', 'heap', 'arena', 'stack', 'anon', 'kernel']
TITLES = {'binary': 'the binary', 'emulator': 'the emulator (not the guest\'s)', 'library': 'shared libraries',
          'plugin': 'plugins (private copies)', 'file': 'other files', 'heap': 'heap', 'arena': 'malloc arenas',
          'stack': 'stacks', 'anon': 'anonymous', 'kernel': 'kernel'}


def mb(kb):
    return f'{kb / KB:.2f} MB'


def main():
    args = sys.argv[1:]
    emulator = '--emulator' in args
    plugins = {}
    if '--plugins' in args:
        for pair in args[args.index('--plugins') + 1].split(','):
            copy, _, name = pair.partition('=')
            if copy:
                plugins[copy] = name or copy
    pid, binary = args[0], args[1]
    st = status(pid)
    pss = rollup_pss(pid)
    threads = thread_sps(pid)
    maps = mappings(pid)
    groups = classify(maps, binary, plugins, threads, emulator)
    total = sum(r[4] for r in maps)
    print(f"  VmRSS {mb(int(st['VmRSS'].split()[0]))}, VmHWM {mb(int(st['VmHWM'].split()[0]))}, "
          f"Pss {mb(pss) if pss is not None else '?'}; {len(threads)} threads "
          f"({', '.join(n for n, _ in threads)})")
    if emulator:
        guest = sum(v for k, v in groups.items() if k[0] != 'emulator')
        print(f"  the guest's own mappings: {mb(guest)} (the arm64 program's pages; "
              f"VmRSS, VmHWM and Pss above include the emulator)")
    print(f"  smaps Rss by mapping (sum {mb(total)}):")
    for kind in ORDER:
        items = sorted(((k[1], v) for k, v in groups.items() if k[0] == kind), key=lambda kv: -kv[1])
        if not items:
            continue
        sub = sum(v for _, v in items)
        print(f"    {TITLES[kind]:<44} {mb(sub):>9}")
        if len(items) > 1 or items[0][0] != TITLES[kind]:
            for name, v in items:
                print(f"      {name:<42} {mb(v):>9}")


if __name__ == '__main__':
    main()
