"""Reads a Python step's manifest without running it: python -I -S _manifest.py SCRIPT [FUNCTION].

`sluice dag validate` (and `sluice run`, and the daemon when it loads a DAG) checks a
python.function task's params and inputs against what its function declares with @step. This
reader gives it that declaration by parsing the script with `ast`: the script is never
imported, so none of its code runs, wherever the check happens. It needs nothing but the
standard library (it is started with -I -S: no site packages, no PYTHONPATH, no sitecustomize).

It prints one JSON object:
  {"function": NAME, "line": N,
   "params": [{"name", "type", "default", "line", "column"}] or null when not a literal,
   "inputs": [...] or null, "outputs": [...] or null,
   "arguments": [names of the function's parameters], "any_arguments": bool (**kwargs)}
or {"error": TEXT, "line": N, "column": N} (0 when no position applies).
"""

import ast
import json
import sys

TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
         (list, "array"), (tuple, "array"), (dict, "object"))


def _type_of(value):
    if value is None:
        return "any"
    for kind, name in TYPES:
        if isinstance(value, kind):
            return name
    return "any"


def _is_step(decorator):
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    if isinstance(target, ast.Name):
        return target.id == "step"
    return isinstance(target, ast.Attribute) and target.attr == "step"


def _constants(tree):
    """Module-level NAME = literal assignments, for @step(params=PARAMS)."""
    known = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0], ast.Name):
            known[node.targets[0].id] = node.value
    return known


def _resolve(node, known):
    if isinstance(node, ast.Name) and node.id in known:
        return known[node.id]
    return node


def _params(node, known):
    node = _resolve(node, known)
    if not isinstance(node, ast.Dict):
        return None
    out = []
    for key, value in zip(node.keys, node.values):
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            return None
        try:
            default = ast.literal_eval(_resolve(value, known))
            kind = _type_of(default)
        except (ValueError, TypeError, SyntaxError, RecursionError):
            default, kind = None, "any"
        if isinstance(default, tuple):
            default = list(default)
        try:
            json.dumps(default)
        except (TypeError, ValueError):
            default = None
        out.append({"name": key.value, "type": kind, "default": default,
                    "line": key.lineno, "column": key.col_offset + 1})
    return out


def _names(node, known):
    node = _resolve(node, known)
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return None
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def read(script, function):
    try:
        with open(script, "rb") as f:
            tree = ast.parse(f.read(), filename=script)
    except SyntaxError as e:
        return {"error": e.msg, "line": e.lineno or 0, "column": e.offset or 0}
    except (OSError, ValueError, RecursionError) as e:
        return {"error": str(e), "line": 0, "column": 0}
    functions = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    steps = [f for f in functions if any(_is_step(d) for d in f.decorator_list)]
    if function:
        chosen = [f for f in functions if f.name == function]
        if not chosen:
            return {"error": f'has no function "{function}"', "line": 0, "column": 0,
                    "candidates": [f.name for f in steps] or [f.name for f in functions]}
        fn = chosen[-1]
    elif len(steps) == 1:
        fn = steps[0]
    elif not steps:
        return {"error": 'has no @step function; decorate one, or name it with function = "..."',
                "line": 0, "column": 0}
    else:
        return {"error": "has several @step functions (" + ", ".join(f.name for f in steps) +
                         '); name one with function = "..."', "line": 0, "column": 0}

    known = _constants(tree)
    manifest = {"function": fn.name, "line": fn.lineno, "params": [], "inputs": [],
                "outputs": []}
    decorator = next((d for d in fn.decorator_list if _is_step(d)), None)
    if isinstance(decorator, ast.Call):
        for keyword in decorator.keywords:
            if keyword.arg == "params":
                manifest["params"] = _params(keyword.value, known)
            elif keyword.arg in ("inputs", "outputs"):
                manifest[keyword.arg] = _names(keyword.value, known)
        for position, arg in zip(("params", "inputs", "outputs"), decorator.args):
            manifest[position] = _params(arg, known) if position == "params" \
                else _names(arg, known)
    args = fn.args
    manifest["arguments"] = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs
                             if a.arg != "ctx"]
    manifest["any_arguments"] = args.kwarg is not None
    return manifest


def main(argv):
    if len(argv) not in (2, 3):
        print("usage: _manifest.py SCRIPT [FUNCTION]", file=sys.stderr)
        return 2
    print(json.dumps(read(argv[1], argv[2] if len(argv) == 3 else "")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
