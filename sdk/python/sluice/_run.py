"""Runs one Python step: python -m sluice._run SCRIPT [FUNCTION] (the plugin calls main()
directly through -c, which skips runpy's imports).

Started by the `python` step plugin inside a try (plugins/python). It loads SCRIPT, finds
FUNCTION (or the one @step function in it), calls it with ctx, its params and its inputs as
keyword arguments, and publishes a returned dict as value outputs. An exception fails the
try: its traceback goes to the task log, and its last line becomes the try's reason.
"""

import os

try:  # the signal module's import (enum) would cost every try's start ~4 ms
    import _signal as signal
except ImportError:
    import signal
import sys

# Keys of the python step's own params, never handed to the function.
STEP_KEYS = {"script", "function", "python", "code_files", "kill_grace_seconds",
             "fresh_interpreter"}


def _fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def _load(script):
    # Compiled and run as a module by hand: importlib.util's own imports would cost every
    # try's start ~6 ms. The module is registered under its file name, so that pickle finds
    # the classes it defines, and its folder goes first on sys.path for its own imports.
    name = os.path.splitext(os.path.basename(script))[0] or "step"
    try:
        with open(script, "rb") as f:
            code = compile(f.read(), script, "exec")
    except OSError as e:
        _fail(f"cannot read {script}: {e.strerror}")
    module = type(sys)(name)
    module.__file__ = script
    module.__cached__ = None
    sys.modules[name] = module
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    exec(code, module.__dict__)  # noqa: S102 - running the step's own script is the point
    return module


def _find(module, script, function):
    if function:
        fn = getattr(module, function, None)
        if not callable(fn):
            steps = [n for n, v in vars(module).items() if hasattr(v, "__sluice_step__")]
            hint = f"; its @step functions: {', '.join(steps)}" if steps else ""
            _fail(f'{script} has no function "{function}"{hint}')
        return fn
    steps = [v for v in vars(module).values() if callable(v) and hasattr(v, "__sluice_step__")
             and getattr(v, "__module__", None) == module.__name__]
    if len(steps) == 1:
        return steps[0]
    if not steps:
        _fail(f'{script} has no @step function; decorate one, or name it with function = "..."')
    _fail(f'{script} has several @step functions ({", ".join(s.__name__ for s in steps)}); '
          'name one with function = "..."')


def _coerce(name, value, default):
    """A param given as an integer where the declared default is a float, as a float."""
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _arguments(fn, ctx, declared):
    params = {k: v for k, v in ctx.params.items() if k not in STEP_KEYS}
    defaults = dict(declared.get("params", {}))
    values = {}
    for name, default in defaults.items():
        values[name] = _coerce(name, params.get(name, default), default)
    for name, value in params.items():
        values.setdefault(name, value)
    for name, entry in ctx.inputs.items():
        values[name] = entry["path"] if "path" in entry else entry.get("value")
    names, optional, accepts_any = _signature(fn)
    kwargs = {}
    for name in names:
        if name == "ctx":
            kwargs[name] = ctx
        elif name in values:
            kwargs[name] = values[name]
        elif name not in optional:
            known = sorted(values)
            _fail(f'{fn.__name__}() takes "{name}", which is neither a param nor an input of '
                  f'task "{ctx.run.task_id}" (it has: {", ".join(known) or "none"})')
    if accepts_any:
        for name, value in values.items():
            kwargs.setdefault(name, value)
    return kwargs


def _signature(fn):
    """(parameter names, those with defaults, takes **kwargs), from the code object: the
    inspect module would cost every try's start ~6 ms of imports."""
    skip = 0
    target = fn
    if hasattr(target, "__func__"):  # a bound method: not its self
        target, skip = target.__func__, 1
    elif not hasattr(target, "__code__"):  # a callable object: its __call__, not its self
        target, skip = type(target).__call__, 1
    code = target.__code__
    positional = code.co_varnames[:code.co_argcount]
    keyword_only = code.co_varnames[code.co_argcount:code.co_argcount + code.co_kwonlyargcount]
    defaults = target.__defaults__ or ()
    optional = set(positional[len(positional) - len(defaults):]) if defaults else set()
    optional |= set((target.__kwdefaults__ or {}).keys())
    return list(positional[skip:]) + list(keyword_only), optional, bool(code.co_flags & 0x08)


def _on_sigterm(signum, frame):
    # A cancelled try: unwind (finally blocks, context managers) rather than vanish. A step
    # that swallows this is killed after the plugin's grace period.
    raise SystemExit("cancelled (SIGTERM)")


def main(argv):
    if len(argv) < 2:
        _fail("usage: python -m sluice._run SCRIPT [FUNCTION]")
    script = argv[1]
    function = argv[2] if len(argv) > 2 else ""
    signal.signal(signal.SIGTERM, _on_sigterm)
    from sluice import Context, Skip  # after the signal handler: imports can be slow

    ctx = Context()
    try:
        module = _load(script)
        fn = _find(module, script, function)
        declared = getattr(fn, "__sluice_step__", {})
        result = fn(**_arguments(fn, ctx, declared))
        if isinstance(result, dict):
            for name, value in result.items():
                ctx.output_value(name, value)
    except Skip as skip:
        ctx._channel.ask("skip", reason=str(skip) or "skipped by the step")
    except SystemExit:
        raise
    except BaseException:  # noqa: B902 - everything a step raises fails its try, with why
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv)
