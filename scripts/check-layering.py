#!/usr/bin/env python3
"""No import circles in kv-core/src, kv-node/src or tests/src.

A module is a file. `use crate::a::b::C` (and `crate::a::b::C` in code) points at the deepest
file on that path; `use super::x` and `use self::x` resolve the same way from the importing file.
Two graphs must be acyclic:

1. Across folders: every file collapsed into its top-level module under src/ (`protocol`,
   `node`, ...; `lib.rs` and `bin/` left out). The layering of the crate.
2. Within each folder: its files and subfolders, siblings importing siblings. A folder's
   `mod.rs` is the folder itself, so imports between it and its own children are not edges.

Prints each circle found and exits 1; prints the layer order and exits 0 otherwise.
"""

import os
import re
import sys
from collections import defaultdict

ROOT = os.environ.get("LAYERING_ROOT") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CRATES = ["kv-core/src", "kv-node/src", "tests/src"]
PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\};", re.S)


def module_files(src):
    """Module path (tuple) -> file, for every .rs file under src (bin/ excluded)."""
    mods = {}
    for dirpath, dirs, files in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        parts = () if rel == "." else tuple(rel.split(os.sep))
        if parts[:1] == ("bin",):
            continue
        for f in files:
            if not f.endswith(".rs"):
                continue
            if f in ("lib.rs", "main.rs") and not parts:
                mods[()] = os.path.join(dirpath, f)
            elif f == "mod.rs":
                mods[parts] = os.path.join(dirpath, f)
            else:
                mods[parts + (f[:-3],)] = os.path.join(dirpath, f)
    return mods


def strip_comments(text):
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def test_modules(text):
    """Names of inline `mod x { ... }` blocks under #[cfg(test)]: their imports are tests'."""
    return set(re.findall(r"#\[cfg\(test\)\]\s*mod\s+(\w+)\s*\{", text))


def own_text(text):
    """The file without its #[cfg(test)] inline modules (test code may import anything)."""
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text):
        out.append(text[i : m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def resolve(mods, here, is_mod_rs, head, rest):
    """The deepest existing module for a path written in module `here`."""
    base = list(here) if is_mod_rs else list(here[:-1]) if head == "super" else list(here)
    if head == "crate":
        base = []
    elif head == "super" and is_mod_rs:
        base = list(here[:-1])
    elif head == "self":
        base = list(here)
    parts = [p for p in rest.split("::") if p]
    while parts and parts[0] == "super":
        base = base[:-1]
        parts = parts[1:]
    best = tuple(base)
    path = list(base)
    for p in parts:
        path.append(p)
        if tuple(path) in mods:
            best = tuple(path)
        else:
            break
    return best


def edges_of(mods):
    edges = defaultdict(set)
    for mod, file in mods.items():
        text = own_text(strip_comments(open(file, encoding="utf-8").read()))
        is_mod_rs = file.endswith("mod.rs") or file.endswith("lib.rs")
        paths = [(h, r) for h, r in PATH.findall(text)]
        for head, prefix, group in USE_GROUP.findall(text):
            for item in re.split(r"[,\s]+", group):
                item = item.strip().split(" as ")[0]
                if item and re.match(r"^[A-Za-z_][\w:]*$", item) and item != "self":
                    paths.append((head, prefix + "::" + item))
        for head, rest in paths:
            target = resolve(mods, mod, is_mod_rs, head, rest)
            if target != mod:
                edges[mod].add(target)
    return edges


def find_cycle(nodes, edges):
    color, stack = {}, []

    def visit(n):
        color[n] = 1
        stack.append(n)
        for m in sorted(edges.get(n, ())):
            if m not in nodes:
                continue
            if color.get(m) == 1:
                return stack[stack.index(m) :] + [m]
            if m not in color:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        color[n] = 2
        return None

    for n in sorted(nodes):
        if n not in color:
            found = visit(n)
            if found:
                return found
    return None


def name(crate, mod):
    return crate.split("/")[0] + "::" + ("::".join(mod) or "(root)")


def main():
    failed = False
    for crate in CRATES:
        mods = module_files(os.path.join(ROOT, crate))
        edges = edges_of(mods)
        # 1. Across top-level modules.
        top = defaultdict(set)
        for a, targets in edges.items():
            for b in targets:
                if a and b and a[0] != b[0]:
                    top[(a[0],)].add((b[0],))
        nodes = {(m[0],) for m in mods if m}
        cycle = find_cycle(nodes, top)
        if cycle:
            failed = True
            print("import circle across folders:", " -> ".join(name(crate, m) for m in cycle))
        # 2. Among siblings of each folder.
        # The crate root's children are the top-level modules, checked above.
        folders = {m for m in mods if m and mods[m].endswith("mod.rs")}
        for folder in sorted(folders):
            depth = len(folder)
            sib = defaultdict(set)
            members = set()
            for a, targets in edges.items():
                if len(a) <= depth or a[:depth] != folder:
                    continue
                sa = a[: depth + 1]
                members.add(sa)
                for b in targets:
                    if len(b) <= depth or b[:depth] != folder:
                        continue
                    sb = b[: depth + 1]
                    if sa != sb:
                        sib[sa].add(sb)
            cycle = find_cycle(members, sib)
            if cycle:
                failed = True
                print("import circle in", name(crate, folder) + ":", " -> ".join(name(crate, m) for m in cycle))
    if failed:
        print("(see scripts/check-layering.py for what counts as an import)", file=sys.stderr)
        sys.exit(1)
    print("no import circles in " + " or ".join(CRATES))


if __name__ == "__main__":
    main()
