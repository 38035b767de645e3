"""Task discovery without ``--include_path``.

lm-eval has no plugin entry point: its ``TaskManager`` scans only its own
``tasks/`` folder and ``include_path``. The ``univar_eval-autoload.pth`` file
that ``pip install`` puts in site-packages calls :func:`install` at interpreter
start. It does not import lm_eval; it registers an import hook that, when
``lm_eval.tasks.manager`` is imported (or right away if it already is), wraps
``TaskManager.__init__`` so that every manager also scans our task folder.

Set ``UNIVAR_EVAL_NO_AUTOLOAD=1`` to switch it off; then pass
``--include_path "$(univar-eval tasks-dir)"`` to lm_eval explicitly.

It never breaks lm_eval and never fails silently: any error of its own (here or in the ``.pth`` line)
becomes one warning line on stderr that names the way out (:func:`warn`), and lm_eval goes on without
our tasks. What it relies on in lm-eval (``TaskManager.__init__(include_path=...)``) is checked by
``tests/harness/test_lm_eval_contract.py``.
"""

import os
import sys

TARGET = "lm_eval.tasks.manager"
_MARK = "_univar_eval_patched"


HINT = (
    "set UNIVAR_EVAL_NO_AUTOLOAD=1 to silence this and pass lm_eval "
    '--include_path "$(univar-eval tasks-dir)", or reinstall univar-eval'
)


def warn(error: BaseException) -> None:
    """One line on stderr: the hook failed, why, and what to do."""
    what = str(error).strip().splitlines()[0] if str(error).strip() else ""
    sys.stderr.write(
        f"univar-eval: task discovery is off ({type(error).__name__}{': ' + what if what else ''}); {HINT}\n"
    )


def _tasks_dir() -> str:
    from univar_eval.resources import tasks_dir

    return str(tasks_dir())


def patch(module) -> None:
    """Make every ``TaskManager`` of ``module`` also scan univar-eval's tasks."""
    manager = getattr(module, "TaskManager", None)
    if manager is None or getattr(manager.__init__, _MARK, False):
        return
    original = manager.__init__

    def __init__(self, *args, include_path=None, **kwargs):
        ours = _tasks_dir()
        if include_path is None:
            paths = [ours]
        else:
            paths = list(include_path) if isinstance(include_path, (list, tuple)) else [include_path]
            if all(os.path.realpath(str(p)) != os.path.realpath(ours) for p in paths):
                # ours first, so a user's own include_path can still override a task
                paths = [ours, *paths]
        original(self, *args, include_path=paths, **kwargs)

    setattr(__init__, _MARK, True)
    __init__.__wrapped__ = original
    __init__.__doc__ = original.__doc__
    manager.__init__ = __init__


class _Loader:
    # plain classes (no importlib.abc): importing that costs ~20 ms at every interpreter start
    def __init__(self, inner):
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        self.inner.exec_module(module)
        try:
            patch(module)
        except Exception as e:  # never break lm_eval because of us, but say so
            warn(e)


class _Finder:
    def find_spec(self, fullname, path, target=None):
        if fullname != TARGET:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _Loader(spec.loader)
                return spec
        return None


def install() -> None:
    """Register the hook (idempotent). Called from the ``.pth`` file."""
    if os.environ.get("UNIVAR_EVAL_NO_AUTOLOAD"):
        return
    if TARGET in sys.modules:
        patch(sys.modules[TARGET])
        return
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
