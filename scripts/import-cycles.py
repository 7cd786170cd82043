#!/usr/bin/env python3
"""Import cycles between the modules of src/, from the code itself.

Every `crate::a::b::…` path a file names (in `use` lines or inline) is an edge
from the file's module to the module it names. Modules are compared at each
level: a cycle is reported among siblings (children of one parent module,
e.g. `migrate::catalog` -> `migrate::db` -> `migrate::catalog`), using the
smallest path that reaches a sibling. Test-only code (`#[cfg(test)]` blocks,
`*_tests.rs`, `tests/`, `prop.rs`) is ignored: tests may reach anywhere.

Usage: scripts/import-cycles.py [SRC_DIR]   (exit 1 when a cycle is found)
"""
import os
import re
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "src")
SRC = os.path.normpath(SRC)
PATH = re.compile(r"\bcrate((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
GROUP = re.compile(r"\bcrate::((?:[A-Za-z_][A-Za-z0-9_]*::)*)\{([^}]*)\}", re.S)
SUPER = re.compile(r"\bsuper((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
SUPER_GROUP = re.compile(r"\bsuper::((?:[A-Za-z_][A-Za-z0-9_]*::)*)\{([^}]*)\}", re.S)
# Line comments, doc comments included (links in docs are not imports).
COMMENT = re.compile(r"//[^\n]*")


def module_of(path):
    rel = os.path.relpath(path, SRC)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return tuple(rel)


def strip_tests(text):
    """Drops `#[cfg(test)]` items (a following `mod … { … }` block or line)."""
    out, i = [], 0
    while True:
        j = text.find("#[cfg(test)]", i)
        if j < 0:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:j])
        k = j + len("#[cfg(test)]")
        brace, semi = text.find("{", k), text.find(";", k)
        if semi >= 0 and (brace < 0 or semi < brace):
            i = semi + 1
            continue
        depth, m = 0, brace
        while m < len(text):
            if text[m] == "{":
                depth += 1
            elif text[m] == "}":
                depth -= 1
                if depth == 0:
                    break
            m += 1
        i = m + 1


def named_modules(mod, text, known):
    """Modules (as tuples) that `text` of module `mod` refers to."""
    targets = set()
    paths = [p.split("::")[1:] for p in PATH.findall(text)]
    for prefix, inner in GROUP.findall(text):
        base = [s for s in prefix.split("::") if s]
        for item in inner.split(","):
            item = item.strip().split(" as ")[0].strip()
            if item:
                paths.append(base + item.split("::")[0:1])
    for p in SUPER.findall(text):
        paths.append(list(mod[:-1]) + p.split("::")[1:])
    for prefix, inner in SUPER_GROUP.findall(text):
        base = list(mod[:-1]) + [s for s in prefix.split("::") if s]
        for item in inner.split(","):
            item = item.strip().split(" as ")[0].strip()
            if item and item != "self":
                paths.append(base + item.split("::")[0:1])
    for p in paths:
        # The longest prefix that is a module we know.
        for n in range(len(p), 0, -1):
            if tuple(p[:n]) in known:
                targets.add(tuple(p[:n]))
                break
    return targets


def main():
    files = {}
    for root, _, names in os.walk(SRC):
        for name in names:
            if (
                not name.endswith(".rs")
                or name.endswith("_tests.rs")
                or name in ("tests.rs", "prop.rs", "fuzz.rs")
                or "tests" in os.path.relpath(root, SRC).split(os.sep)
            ):
                continue
            path = os.path.join(root, name)
            files[module_of(path)] = path
    known = set(files)
    for m in list(known):
        for n in range(1, len(m)):
            known.add(m[:n])
    edges = {}
    for mod, path in files.items():
        with open(path, encoding="utf-8") as f:
            text = strip_tests(COMMENT.sub("", f.read()))
        for t in named_modules(mod, text, known):
            # Compare at the level where the two paths part.
            n = 0
            while n < min(len(mod), len(t)) and mod[n] == t[n]:
                n += 1
            if n == len(mod) or n == len(t):
                continue  # a module and its own ancestor/descendant
            a, b = mod[: n + 1], t[: n + 1]
            edges.setdefault(a, {}).setdefault(b, []).append(f"{'::'.join(mod)} -> {'::'.join(t)}")
    cycles = strongly_connected(edges)
    for scc in cycles:
        names = sorted("::".join(m) for m in scc)
        print("cycle: " + " <-> ".join(names))
        for a in scc:
            for b, why in sorted(edges.get(a, {}).items()):
                if b in scc:
                    print(f"    {why[0]}" + (f" (+{len(why) - 1} more)" if len(why) > 1 else ""))
    if not cycles:
        print(f"no import cycles among the modules of {SRC}")
    return 1 if cycles else 0


def strongly_connected(edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    nodes = set(edges) | {b for bs in edges.values() for b in bs}

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                out.append(scc)

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


if __name__ == "__main__":
    sys.exit(main())
