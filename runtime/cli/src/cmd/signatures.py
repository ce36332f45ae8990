"""Reads the ``run`` signature of each python-script entry point given on the command line
(paths relative to the current directory, the pack's ``actions/``), without importing anything:
the class StackStorm's ``register_plugin(Action, file)`` would pick — the first, by name, of the
module's own classes that defines ``run`` — and its parameters. Prints one JSON object:
``{entry_point: {"class", "parameters", "required", "var_keyword"} | {"error"} | {"unread"}}``.

Run by ``squall pack build``; the lock records the result and ``squall pack validate`` checks
each action's ``parameters:`` against it (a parameter ``run`` does not take fails every run
with a TypeError in StackStorm, as does a required argument the YAML never gives).
"""

import ast
import json
import sys


def signature(path):
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, ValueError) as e:
        # This Python may be older than the guest's: not a problem of the pack's.
        return {"unread": str(e)}
    classes = sorted(
        (node for node in tree.body if isinstance(node, ast.ClassDef)), key=lambda c: c.name
    )
    for cls in classes:
        for item in cls.body:
            if not isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) or item.name != "run":
                continue
            if any(
                (isinstance(d, ast.Name) and d.id == "abstractmethod")
                or (isinstance(d, ast.Attribute) and d.attr == "abstractmethod")
                for d in item.decorator_list
            ):
                continue
            args = item.args
            positional = [a.arg for a in args.posonlyargs + args.args][1:]  # without self
            with_default = len(args.defaults)
            required = positional[: len(positional) - with_default] if with_default else positional
            keyword_only = [a.arg for a in args.kwonlyargs]
            required += [
                a for a, d in zip(keyword_only, args.kw_defaults) if d is None
            ]
            return {
                "class": cls.name,
                "parameters": positional + keyword_only,
                "required": required,
                "var_keyword": args.kwarg is not None,
            }
    # Inherited from a base class elsewhere (a lib/ module): not checked.
    return {"unread": "no class of the module defines run() itself"}


print(json.dumps({path: signature(path) for path in sys.argv[1:]}, sort_keys=True))
