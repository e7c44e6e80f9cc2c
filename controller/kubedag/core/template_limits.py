"""Bounds on what a template may produce: a sandbox whose every way of growing a string or a list is checked
before the memory is taken, and caps on each rendered field and on a task's fields together.

Issue 13: ``{{ 'x' * 100000000 }}`` in a command took the controller to 1.9 GB and made a pod the API server
refused (413). Jinja2's sandbox bounds ``range`` only (``MAX_RANGE``, 100,000 items); its documentation shows
:meth:`jinja2.sandbox.SandboxedEnvironment.call_binop` as the place to bound operators. :class:`BoundedEnvironment`

* intercepts ``*``, ``**``, ``+`` and ``%`` (and ``~``, the string concatenation, through its code generator):
  a result longer than :data:`MAX_FIELD_BYTES` characters or items is refused before it is built (``**`` on
  numbers: a result over :data:`MAX_POWER_BITS` bits);
* checks calls of string methods (``center``, ``ljust``, ``zfill``, ``format``, ``replace`` ...) and every
  filter: an integer argument over the cap (a width, a count) is refused, and so is a result over it;
* :func:`render_bounded` streams the output and stops as soon as it passes the cap.

The caps: :data:`MAX_FIELD_BYTES` (256 KiB) per rendered field, :data:`MAX_TASK_BYTES` (1 MiB) for a task's
command, args and env together, in UTF-8 bytes. A pod with its fields at these caps stays under the API server's
3 MiB request limit and etcd's 1.5 MiB object limit. A field over a cap fails the try with a reason naming the
field and the size, before any pod or process is started (:func:`kubedag.core.templating.render_fields`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

MAX_FIELD_BYTES = 256 * 1024
"""The most one rendered templated field (a ``command``/``args`` item, an ``env`` value) may hold, in bytes."""
MAX_TASK_BYTES = 1024 * 1024
"""The most a task's rendered ``command``, ``args`` and ``env`` may hold together, in bytes."""
MAX_POWER_BITS = 64 * 1024
"""The largest number ``**`` may make in a template, in bits (about 20,000 decimal digits)."""

_PERCENT_WIDTH = re.compile(r"%[-+ #0]*(\d*)(?:\.(\d*))?[a-zA-Z]")
"""Width and precision of a ``%`` conversion."""
_BRACE_WIDTH = re.compile(r"\{[^{}]*:[^{}\d]*(\d*)(?:[,_])?(?:\.(\d*))?[^{}]*\}")
"""Width and precision of a ``str.format`` replacement field."""
_WIDTH_FILTERS = frozenset({"center", "indent", "wordwrap", "batch", "slice", "truncate"})
"""Filters whose integer arguments are widths or counts."""


class RenderTooLarge(ValueError):
    """A template would produce more than a cap allows. The message says what and how large; ``field`` names the
    rendered field when the cap of one field was passed (None: while rendering, or the task's fields together)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _size(value: Any) -> int | None:
    """Length of a string, list, tuple or bytes value; None for anything else."""
    return len(value) if isinstance(value, (str, list, tuple, bytes)) else None


def _check_result(what: str, value: Any) -> Any:
    size = _size(value)
    if size is not None and size > MAX_FIELD_BYTES:
        raise RenderTooLarge(f"{what} makes {size} characters or items, over the cap of {MAX_FIELD_BYTES}")
    return value


def _check_ints(what: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_FIELD_BYTES:
            raise RenderTooLarge(f"{what} with {value} is over the cap of {MAX_FIELD_BYTES} characters")


def _check_format(what: str, fmt: Any) -> None:
    """A ``%`` or ``format`` string whose widths or precisions pass the cap."""
    if not isinstance(fmt, str):
        return
    for pattern in (_PERCENT_WIDTH, _BRACE_WIDTH):
        for match in pattern.finditer(fmt):
            for number in match.groups():
                if number and (len(number) > 7 or int(number) > MAX_FIELD_BYTES):
                    raise RenderTooLarge(f"{what}: a width of {number} is over the cap of {MAX_FIELD_BYTES} characters")


def _binop(operator: str, left: Any, right: Any) -> Any:
    """``left <operator> right`` once its result is known to fit (see the module docstring)."""
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            size = _size(seq)
            if size is not None and isinstance(times, int) and size * times > MAX_FIELD_BYTES:
                raise RenderTooLarge(f"repeating {size} characters or items {times} times is over the cap of "
                                     f"{MAX_FIELD_BYTES}")
        return left * right
    if operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and \
                max(left.bit_length(), 1) * right > MAX_POWER_BITS:
            raise RenderTooLarge(f"{left} ** {right} is over the cap of {MAX_POWER_BITS} bits")
        return left ** right
    if operator == "+":
        a, b = _size(left), _size(right)
        if a is not None and b is not None and a + b > MAX_FIELD_BYTES:
            raise RenderTooLarge(f"adding {a} and {b} characters or items is over the cap of {MAX_FIELD_BYTES}")
        return left + right
    if operator == "%":
        if isinstance(left, str):
            _check_format("a % format", left)
            if "*" in left:
                _check_ints("a % format's * width", right if isinstance(right, tuple) else (right,), {})
        return _check_result("a % format", left % right)
    raise AssertionError(operator)  # only the intercepted operators come here


def _join(parts: Any) -> str:
    """``~``: Jinja's ``str_join`` with the cap checked as the parts add up."""
    out: list[str] = []
    total = 0
    for part in parts:
        text = str(part)
        total += len(text)
        if total > MAX_FIELD_BYTES:
            raise RenderTooLarge(f"joining strings with ~ makes more than {MAX_FIELD_BYTES} characters, the cap")
        out.append(text)
    return "".join(out)


_STR_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


def _bounded_filter(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """A filter whose integer arguments (widths, counts) and result are checked against the cap."""

    first = 0 if getattr(fn, "jinja_pass_arg", None) is None else 1  # the value follows a context, if passed

    @functools.wraps(fn)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        if name in _WIDTH_FILTERS:
            _check_ints(f"the filter {name}", args[first + 1:], kwargs)
        if name == "format" and len(args) > first:
            _check_format("the filter format", args[first])
        return _check_result(f"the filter {name}", fn(*args, **kwargs))

    return bounded


def environment_class() -> type:
    """:class:`BoundedEnvironment`, built on first use (Jinja2 is imported only when a template is rendered)."""
    return _classes()[0]


@functools.lru_cache(maxsize=1)
def _classes() -> tuple[type, type]:
    from jinja2.compiler import CodeGenerator
    from jinja2.sandbox import SandboxedEnvironment

    class BoundedCodeGenerator(CodeGenerator):
        """Compiles ``~`` (``Concat``) to :func:`_join`, through the environment, so its result is bounded."""

        def visit_Concat(self, node: Any, frame: Any) -> None:  # noqa: N802 - Jinja's visitor name
            self.write("environment.bounded_join((")
            for arg in node.nodes:
                self.visit(arg, frame)
                self.write(", ")
            self.write("))")

    class BoundedEnvironment(SandboxedEnvironment):
        """Jinja2's sandbox with every growth of a string or list bounded (see the module docstring)."""

        code_generator_class = BoundedCodeGenerator
        intercepted_binops = frozenset({"*", "**", "+", "%"})

        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            self.filters = {name: _bounded_filter(name, fn) for name, fn in self.filters.items()}

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            return _binop(operator, left, right)

        def bounded_join(self, parts: Any) -> str:
            return _join(parts)

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja's
            target = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format in a function
            owner = getattr(target, "__self__", None)
            name = getattr(target, "__name__", "")
            if isinstance(owner, str):
                if name in ("format", "format_map"):
                    _check_format(f"str.{name}", owner)
                elif name in _STR_WIDTH_METHODS:
                    _check_ints(f"str.{name}", args, kwargs)
                elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
                    grows = (len(args[1]) - len(args[0])) * (owner.count(args[0]) if args[0] else len(owner) + 1)
                    if len(owner) + grows > MAX_FIELD_BYTES:
                        raise RenderTooLarge(f"str.replace makes {len(owner) + grows} characters, over the cap of "
                                             f"{MAX_FIELD_BYTES}")
            return _check_result(f"calling {name or 'a function'}", super().call(__context, __obj, *args, **kwargs))

    return BoundedEnvironment, BoundedCodeGenerator


def render_bounded(template: Any, context: Mapping[str, Any]) -> str:
    """Render a compiled template, streaming its output and stopping once it passes :data:`MAX_FIELD_BYTES`
    characters (raises :class:`RenderTooLarge` saying so)."""
    out: list[str] = []
    total = 0
    for chunk in template.generate(context):
        total += len(chunk)
        if total > MAX_FIELD_BYTES:
            raise RenderTooLarge(f"renders to more than {MAX_FIELD_BYTES} characters, the cap of a templated field")
        out.append(chunk)
    return "".join(out)


def check_sizes(fields: Mapping[str, str]) -> None:
    """Check rendered fields (name -> value) against :data:`MAX_FIELD_BYTES` each and :data:`MAX_TASK_BYTES`
    together, in UTF-8 bytes. Raises :class:`RenderTooLarge` naming the field (or the task's fields) and the
    size."""
    total = 0
    for name, value in fields.items():
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > MAX_FIELD_BYTES:
            raise RenderTooLarge(f"rendered to {size} bytes, over the cap of {MAX_FIELD_BYTES} bytes (256 KiB) for "
                                 f"a templated field", name)
        total += size
    if total > MAX_TASK_BYTES:
        raise RenderTooLarge(f"command, args and env rendered to {total} bytes together, over the cap of "
                             f"{MAX_TASK_BYTES} bytes (1 MiB) for a task")


__all__ = ["MAX_FIELD_BYTES", "MAX_POWER_BITS", "MAX_TASK_BYTES", "RenderTooLarge", "check_sizes",
           "environment_class", "render_bounded"]
