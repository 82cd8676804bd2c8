#!/usr/bin/env bash
# The house rules a compiler does not check, over src/ (scripts/test.sh runs this):
#  (a) no import circle between source files: a file imports another when it names a path
#      into it (`use crate::a::b`, `super::x`, `self::y`, a child module's `use z::...`, or an
#      inline `crate::a::b::f()`); every circle found is printed with its files;
#  (b) no source file over 600 lines of code (blank and comment-only lines not counted)
#      before its `#[cfg(test)] mod tests`.
# Test modules are left out of both: a test may reach any layer. Exit 1 on any breach.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "${1:-src}" <<'PY'
import os, re, sys

ROOT = sys.argv[1]
LIMIT = 600

def module_of(path):
    """src/a/b.rs and src/a/b/mod.rs -> ('a', 'b'); src/lib.rs -> ()."""
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    if rel[-1] in ('mod', 'lib'):
        rel = rel[:-1]
    return tuple(rel)

files = {}
for d, _, names in os.walk(ROOT):
    for n in names:
        p = os.path.join(d, n)
        if n.endswith('.rs') and p != os.path.join(ROOT, 'main.rs'):
            files[module_of(p)] = p

def body(path):
    """The file's lines before its test module."""
    lines = open(path, encoding='utf-8').read().split('\n')
    for i, line in enumerate(lines):
        if line.startswith('#[cfg(test)]'):
            nxt = next((l for l in lines[i + 1:] if l.strip()), '')
            if re.match(r'(pub(\([^)]*\))? )?mod tests\b', nxt):
                return lines[:i]
    return lines

def code_lines(lines):
    return [l for l in lines if l.strip() and not l.strip().startswith('//')]

def expand(tree):
    """`a::{b, c::{d, e as f}}` -> ['a::b', 'a::c::d', 'a::c::e']."""
    tree = re.sub(r'\s+', '', re.sub(r'\s+as\s+\w+', '', tree))
    depth, i = 0, None
    for j, ch in enumerate(tree):
        if ch == '{':
            if depth == 0:
                i = j
            depth += 1
        elif ch == '}':
            depth -= 1
            if depth == 0:
                prefix, inner = tree[:i], tree[i + 1:j]
                parts, d, start = [], 0, 0
                for k, c in enumerate(inner):
                    d += c == '{'
                    d -= c == '}'
                    if c == ',' and d == 0:
                        parts.append(inner[start:k])
                        start = k + 1
                parts.append(inner[start:])
                out = []
                for part in parts:
                    if part:
                        out += [prefix + p if p != 'self' else prefix.rstrip(':')
                                for p in expand(part)]
                return out
    return [tree]

def module_file(mod, segs):
    """The module a path's segments name from module `mod`, and the segments left after it."""
    if not segs:
        return None, []
    if segs[0] == 'crate':
        base, segs = (), segs[1:]
    elif segs[0] in ('super', 'self'):
        base = mod
        while segs and segs[0] in ('super', 'self'):
            if segs.pop(0) == 'super':
                base = base[:-1]
    elif mod + (segs[0],) in files:
        base = mod
    else:
        return None, []
    best, rest = (base, segs) if base in files else (None, [])
    for k in range(1, len(segs) + 1):
        if base + tuple(segs[:k]) in files:
            best, rest = base + tuple(segs[:k]), segs[k:]
    return best, rest

def defines(mod, name):
    return re.search(r'^\s*(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?(?:struct|enum|fn|const|static|type|trait|mod|macro_rules!)\s+'
                     + re.escape(name) + r'\b', texts[mod], re.M) is not None

def target(mod, path, seen=()):
    """The file that defines what `path` names from module `mod` (following the `use`s that
    brought it there), or None when it names std, another crate or an item of this file."""
    found, rest = module_file(mod, [s for s in path.split('::') if s])
    if found is None or not rest or rest[0] == '*' or defines(found, rest[0]) or found in seen:
        return found
    for p in uses[found]:
        leaf = p.split('::')[-1]
        if leaf == rest[0] or leaf == '*':
            via = target(found, p.rsplit('::', 1)[0] + '::' + rest[0], seen + (found,))
            if via is not None and (leaf != '*' or defines(via, rest[0])):
                return via
    return found

texts, uses = {}, {}
for mod, path in files.items():
    lines = body(path)
    # Comment lines and `pub(in crate::x)` visibilities name no dependency.
    text = '\n'.join(l for l in lines if not l.strip().startswith('//'))
    texts[mod] = re.sub(r'pub\(in [\w:]+\)', 'pub', text)
    uses[mod] = []
    for m in re.finditer(r'^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);', texts[mod], re.M):
        uses[mod] += expand(m.group(1))

edges = {m: set() for m in files}
too_long = []
for mod, path in sorted(files.items()):
    lines = body(path)
    n = len(code_lines(lines))
    if n > LIMIT:
        too_long.append((n, path))
    paths = uses[mod] + re.findall(r'\b((?:crate|super)(?:::\w+)+)', texts[mod])
    for p in paths:
        t = target(mod, p)
        if t is not None and t != mod:
            edges[mod].add(t)

# Strongly connected components (Tarjan, iterative, in sorted order: deterministic).
index, low, on, stack, comps, counter = {}, {}, set(), [], [], [0]
for root in sorted(files):
    if root in index:
        continue
    work = [(root, iter(sorted(edges[root])))]
    index[root] = low[root] = counter[0]; counter[0] += 1
    stack.append(root); on.add(root)
    while work:
        v, it = work[-1]
        w = next(it, None)
        if w is not None:
            if w not in index:
                index[w] = low[w] = counter[0]; counter[0] += 1
                stack.append(w); on.add(w)
                work.append((w, iter(sorted(edges[w]))))
            elif w in on:
                low[v] = min(low[v], index[w])
            continue
        work.pop()
        if work:
            low[work[-1][0]] = min(low[work[-1][0]], low[v])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

def a_cycle(comp):
    """One shortest circle through the component's first file (breadth-first)."""
    inside, start = set(comp), comp[0]
    prev, queue = {start: None}, [start]
    for v in queue:
        for w in sorted(edges[v] & inside):
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return path[::-1] + [start]
            if w not in prev:
                prev[w] = v
                queue.append(w)

failed = False
for comp in sorted(comps):
    failed = True
    print(f'import circle among {len(comp)} files:')
    for m in comp:
        print(f'  {files[m]} -> ' + ', '.join(files[t] for t in sorted(edges[m] & set(comp))))
    print('  e.g. ' + ' -> '.join(files[m] for m in a_cycle(comp)))
for n, path in sorted(too_long, reverse=True):
    failed = True
    print(f'{path}: {n} lines of code before its tests (at most {LIMIT}): split it along a seam')
if failed:
    sys.exit(1)
print(f'structure: {len(files)} files, no import circle, none over {LIMIT} lines of code')
PY
