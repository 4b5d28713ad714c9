// The Python program that extracts the code-search pairs (run by fetchCodeSearch with a Python 3 interpreter),
// kept as a string so the built package carries it.

export const EXTRACT_PY = String.raw`
# Extracts text-to-code pairs from a tree of Python sources with Python's own ast module: every function or
# method with a docstring gives (query = the docstring's summary sentence, code = the function without its
# docstring), plus a refactored form of the code (parameters and locals renamed, comments and layout
# normalised by ast.unparse) for the code-to-code set. Writes JSON Lines on stdout, one object per function,
# in path order. usage: python3 extract.py ROOT [PREFIX]   (ROOT: the folder holding the .py files; PREFIX, when
# given, is put before every path as PREFIX:path)
import ast
import builtins
import json
import os
import sys

SKIP_DIRS = {"test", "tests", "idle_test", "__pycache__", "site-packages", "dist-packages"}
# copies of other projects bundled inside a package: left out so the same code is not counted twice
VENDORED_DIRS = {"_vendor", "vendor", "_vendored", "vendored", "extern", "externals", "_externals"}
BUILTINS = set(dir(builtins))


def summary(doc):
    """First sentence of the docstring's first paragraph, on one line."""
    lines = []
    for line in doc.strip().splitlines():
        if not line.strip():
            break
        lines.append(line.strip())
    text = " ".join(lines)
    cut = text.find(". ")
    return text[: cut + 1] if cut >= 0 else text


class Renamer(ast.NodeTransformer):
    """Renames a function's parameters and local names to v0, v1, ... (annotations dropped)."""

    def __init__(self, names):
        self.map = {n: "v%d" % i for i, n in enumerate(names)}

    def visit_Name(self, node):
        if node.id in self.map:
            node.id = self.map[node.id]
        return node

    def visit_arg(self, node):
        if node.arg in self.map:
            node.arg = self.map[node.arg]
        node.annotation = None
        return node


def local_names(fn):
    names = []
    a = fn.args
    for arg in a.posonlyargs + a.args + a.kwonlyargs + [a.vararg, a.kwarg]:
        if arg is not None and arg.arg not in ("self", "cls"):
            names.append(arg.arg)
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id not in BUILTINS:
            names.append(node.id)
    seen = []
    for n in names:
        if n not in seen:
            seen.append(n)
    return seen


def refactor(fn):
    """The function (docstring already removed) named f, with renamed parameters and locals, re-printed."""
    copy = ast.parse(ast.unparse(fn)).body[0]
    copy.name = "f"
    copy.decorator_list = []
    copy.returns = None
    Renamer(local_names(copy)).visit(copy)
    return ast.unparse(copy)


def extract(path, rel, out):
    try:
        with open(path, encoding="utf-8") as f:
            source = f.read()
        tree = ast.parse(source, filename=rel)
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return
    lines = source.splitlines()
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        doc = ast.get_docstring(fn, clean=True)
        if not doc or len(fn.body) < 2:
            continue  # no docstring, or nothing but the docstring
        first = fn.body[0]
        start = fn.lineno - 1  # from the def line: decorators left out
        end = fn.end_lineno
        if first.lineno - 1 <= start or first.end_lineno >= end:
            continue  # docstring on the def line, or nothing after it
        kept = lines[start : first.lineno - 1] + lines[first.end_lineno : end]
        indent = len(kept[0]) - len(kept[0].lstrip())
        code = "\n".join(l[indent:] if l[:indent].strip() == "" else l for l in kept).rstrip()
        stripped = ast.parse(ast.unparse(fn)).body[0]
        stripped.body = stripped.body[1:]
        try:
            variant = refactor(stripped)
        except Exception:
            continue
        query = summary(doc)
        if not query or not code.strip():
            continue  # a docstring whose first paragraph is empty says nothing to search by
        out.append({"path": rel, "line": fn.lineno, "name": fn.name, "query": query, "code": code, "refactored": variant})


def main():
    root = sys.argv[1]
    files = []
    for d, dirs, names in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x not in SKIP_DIRS | VENDORED_DIRS and not x.startswith("test"))
        for name in names:
            if name.endswith(".py") and not name.startswith("test_"):
                files.append(os.path.join(d, name))
    files.sort()
    out = []
    prefix = sys.argv[2] + ":" if len(sys.argv) > 2 else ""
    for path in files:
        extract(path, prefix + os.path.relpath(path, root).replace(os.sep, "/"), out)
    for row in out:
        sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")


main()
`;
