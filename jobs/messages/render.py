"""Templates → text (SPEC §6): a Jinja2 sandbox over plain values, checked before anything is sent.

Templates are operator-editable files, so they are treated as untrusted: an immutable sandbox, and
a context of frozen plain values (never ORM rows), so a template can read only what §6 names and
can change nothing. StrictUndefined turns a typo into an error, and `TemplateSet.check` renders
once against sample contexts so that the error stops the run before the first message is written.
Every failure is a `TemplateError` (exit 2) naming the template file and line.

A template must not take the machine down either: a value or an output larger than
`MAX_TEMPLATE_CHARS` (`{{ 'a' * 10**12 }}`, a doubling loop, a huge `range` or `lipsum`) is refused
as a TemplateError before it is built where it can be predicted, and as soon as it passes the
limit otherwise. `TemplateSet.check` renders the sample contexts, so a template that always runs
away is refused before a run is frozen or a file written.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import generate_lorem_ipsum

from jobs.errors import TemplateError
from jobs.i18n import _, tr
from resolver.model import AccountKind, AccountRef, Audience, Delivery, Reason, Source

__all__ = [
    "BODY_HTML",
    "BODY_TEXT",
    "MAX_TEMPLATE_CHARS",
    "SUBJECT",
    "AccountView",
    "CampaignView",
    "RecipientView",
    "Rendered",
    "TemplateSet",
    "build_context",
    "load_template_set",
    "sample_contexts",
]

SUBJECT = "subject.txt.j2"
BODY_TEXT = "body.txt.j2"
BODY_HTML = "body.html.j2"  # optional: without it the message is text/plain only (§6)

MAX_TEMPLATE_CHARS = 1_000_000
"""The largest value or output one template render may build (an announcement is a few KB)."""
_MAX_POWER_BITS = 4_096  # `**` results beyond this are no announcement's arithmetic
_MAX_LIPSUM_PARAGRAPHS = 100

# What a broken template may raise while rendering; anything else is a bug in this program.
# MemoryError and RecursionError too: a runaway template (a huge value the guards below could not
# predict, a macro calling itself) is the template's fault and must not be reported as a crash.
_RENDER_ERRORS = (
    jinja2.TemplateError,
    TypeError,
    ValueError,
    ArithmeticError,
    LookupError,
    MemoryError,
    RecursionError,
)


# --- the template context (§6, exactly these names) -------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountView:
    """One item of `recipient.accounts`."""

    kind: str  # "customer" | "partner"
    id: str
    name: str
    roles: tuple[str, ...]  # source codes, e.g. "mypage_billing"
    postal_code: str
    address: str  # customers: the My Page address, never company info (§2)


@dataclass(frozen=True, slots=True)
class RecipientView:
    """`recipient` in templates."""

    name: str
    email: str  # the delivery address
    audience: str
    reasons: tuple[str, ...]  # include codes, e.g. "MYPAGE_CONTACT"
    accounts: tuple[AccountView, ...]


@dataclass(frozen=True, slots=True)
class CampaignView:
    """`campaign` in templates."""

    id: str
    run_key: str
    as_of: date


# Names for StrictUndefined messages: "'recipient' has no attribute 'nmae'" reads better for an
# operator than "'jobs.messages.render.RecipientView object' has no attribute 'nmae'".
_VIEW_LABELS: dict[type, str] = {
    RecipientView: "recipient",
    AccountView: "recipient.accounts[…]",
    CampaignView: "campaign",
}


def build_context(
    delivery: Delivery, campaign_id: str, run_key: str, as_of: date
) -> dict[str, Any]:
    """The §6 context for one delivery: plain strings, tuples and a date."""
    return {
        "recipient": RecipientView(
            name=delivery.name,
            email=delivery.email,
            audience=delivery.audience.value,
            reasons=tuple(reason.value for reason in delivery.reasons),
            accounts=tuple(_account_view(account) for account in delivery.accounts),
        ),
        "campaign": CampaignView(id=campaign_id, run_key=run_key, as_of=as_of),
    }


def _account_view(account: AccountRef) -> AccountView:
    return AccountView(
        kind=account.kind.value,
        id=account.id,
        name=account.name,
        roles=tuple(role.value for role in account.roles),
        postal_code=account.postal_code,
        address=account.address,
    )


def sample_contexts(campaign_id: str, run_key: str, as_of: date) -> tuple[dict[str, Any], ...]:
    """One invented recipient per audience, covering every include code and account kind.

    For `TemplateSet.check` when a run has no delivery yet (or to exercise branches that the
    first real delivery does not take).
    """
    customer = AccountRef(
        kind=AccountKind.CUSTOMER,
        id="C000000000",
        name="株式会社サンプル",
        roles=(Source.MYPAGE_CONTRACT_MANAGER, Source.LEGACY_ADMIN, Source.SYSTEM_ADMIN),
        postal_code="100-0001",
        address="東京都千代田区千代田1-1",
    )
    partner = AccountRef(
        kind=AccountKind.PARTNER,
        id="P000000000",
        name="サンプルパートナー株式会社",
        roles=(Source.PARTNER_CONTACT, Source.CERTIFIED_IMPLEMENTER),
        postal_code="530-0001",
        address="大阪府大阪市北区梅田1-1",
    )
    deliveries = (
        Delivery(
            key="sample.customer@example.jp",
            email="sample.customer@example.jp",
            name="見本 太郎",
            audience=Audience.CUSTOMER,
            reasons=(Reason.MYPAGE_CONTACT, Reason.LEGACY_ADMIN, Reason.SYSTEM_ADMIN),
            accounts=(customer, partner),
            seq=1,
        ),
        Delivery(
            key="sample.partner@example.jp",
            email="sample.partner@example.jp",
            name="見本 花子",
            audience=Audience.PARTNER,
            reasons=(Reason.PARTNER_CONTACT,),
            accounts=(partner,),
            seq=2,
        ),
        Delivery(
            key="sample.implementer@example.jp",
            email="sample.implementer@example.jp",
            name="",
            audience=Audience.IMPLEMENTATION_PARTNER,
            reasons=(Reason.CERTIFIED_IMPLEMENTER,),
            accounts=(partner,),
            seq=3,
        ),
    )
    return tuple(build_context(d, campaign_id, run_key, as_of) for d in deliveries)


# --- the environment --------------------------------------------------------------------------


class _Undefined(jinja2.StrictUndefined):
    """StrictUndefined that names the context objects as templates spell them."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        label = _VIEW_LABELS.get(type(self._undefined_obj))
        if label is not None and not self._undefined_hint:
            return f"{label!r} has no attribute {self._undefined_name!r}"
        return super()._undefined_message


def _autoescape(name: str | None) -> bool:
    # §6: HTML auto-escaped; text and subject are plain (escaping them would show "&lt;" to readers)
    return name is not None and name.endswith(".html.j2")


_VIEW_FIELDS: dict[type, frozenset[str]] = {
    view: frozenset(f.name for f in fields(view)) for view in _VIEW_LABELS
}
# `loop.first` and friends: Jinja's own loop object, whose public properties return ints, bools
# and items of the loop (which the sandbox vets when they are used); the footers read them for
# every role of every account. Methods (`cycle`, `changed`) still take the sandbox's path.
_VIEW_FIELDS[LoopContext] = frozenset(
    {
        "index",
        "index0",
        "revindex",
        "revindex0",
        "first",
        "last",
        "length",
        "depth",
        "depth0",
        "previtem",
        "nextitem",
    }
)


class RunawayTemplate(SecurityError):
    """A template builds a value or an output beyond `MAX_TEMPLATE_CHARS`."""


def _too_big(what: str) -> RunawayTemplate:
    return RunawayTemplate(
        tr(
            "runaway template: {what} would pass {n:,} characters",
            what=what,
            n=MAX_TEMPLATE_CHARS,
        )
    )


def _check_size(value: Any, what: str) -> Any:
    if isinstance(value, (str, bytes, list, tuple)) and len(value) > MAX_TEMPLATE_CHARS:
        raise _too_big(what)
    return value


def _check_repeat(left: Any, right: Any) -> None:
    """`seq * n` / `n * seq`: refused before Python allocates the result."""
    for seq, times in ((left, right), (right, left)):
        if (
            isinstance(seq, (str, bytes, list, tuple))
            and isinstance(times, int)
            and len(seq) * max(times, 0) > MAX_TEMPLATE_CHARS
        ):
            raise _too_big(tr("repeating a value {times:,} times", times=times))


def _check_power(left: Any, right: Any) -> None:
    """`a ** b` on integers: refused when the result would have thousands of digits."""
    if (
        isinstance(left, int)
        and isinstance(right, int)
        and right > 0
        and abs(left) > 1
        and right * math.log2(abs(left)) > _MAX_POWER_BITS
    ):
        raise RunawayTemplate(
            tr("runaway template: {left} ** {right} is too large a number", left=left, right=right)
        )


# printf-style widths or precisions: `'%*s' % (10**9, 'x')` or `'%999999999s'`
_HUGE_PERCENT_WIDTH = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?:\*|\d{7,}|\d*\.(?:\*|\d{7,}))")


def _check_modulo(left: Any) -> None:
    if isinstance(left, str) and _HUGE_PERCENT_WIDTH.search(left):
        raise RunawayTemplate(
            _("runaway template: a %-format with a '*' or a 7-digit width or precision")
        )


def _bounded_concat(parts: Iterable[str]) -> str:
    """`"".join` for every output Jinja assembles (a template, a block, a macro, a `set`)."""
    if isinstance(parts, list):  # a buffer already built (a macro, a `set` block): join in C
        joined = "".join(parts)
        if len(joined) > MAX_TEMPLATE_CHARS:
            raise _too_big(_("the rendered text"))
        return joined
    kept: list[str] = []
    size = 0
    for part in parts:  # template output arrives piece by piece: stop at the limit, not after
        size += len(part)
        if size > MAX_TEMPLATE_CHARS:
            raise _too_big(_("the rendered text"))
        kept.append(part)
    return "".join(kept)


def _bounded_lipsum(  # Jinja's own parameter names, `min` and `max` included
    n: int = 5, html: bool = True, min: int = 20, max: int = 100
) -> str:
    if n > _MAX_LIPSUM_PARAGRAPHS or max > MAX_TEMPLATE_CHARS:
        raise _too_big(f"lipsum({n})")
    return str(generate_lorem_ipsum(n=n, html=html, min=min, max=max))


def _width_filter(name: str, inner: Callable[..., Any], position: int) -> Callable[..., Any]:
    """A Jinja filter whose numeric argument (a width) is bounded before the filter runs."""

    def bounded(*args: Any, **kwargs: Any) -> Any:
        width = kwargs.get("width", args[position] if len(args) > position else 0)
        if isinstance(width, int) and width > MAX_TEMPLATE_CHARS:
            raise _too_big(f"|{name}({width})")
        return inner(*args, **kwargs)

    for attribute in ("jinja_pass_arg",):  # keep Jinja's pass_eval_context/pass_environment
        if hasattr(inner, attribute):
            setattr(bounded, attribute, getattr(inner, attribute))
    return bounded


class _CodeGenerator(CodeGenerator):
    """Compiles `a ~ b` as `environment.checked_size(a ~ b)`.

    Jinja has no hook for `~` (it compiles to a join of its operands), and a loop doubling a
    string with `~` grows it exponentially without any output. Each result is checked, so a value
    never grows past twice the limit before it is refused.
    """

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.checked_size(")
        super().visit_Concat(node, frame)
        self.write(")")


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with short cuts that keep its per-render cost off the hot path.

    The sandbox vets every attribute access (about 10 µs each, dozens per message); the fields of
    the frozen context views hold only str, tuple and date values, so reading one needs no
    vetting, whether spelled `account.kind` or `map(attribute="kind")` (which goes through
    `getitem`). Everything else, including `recipient.__class__`, takes the sandbox's full path.

    It also bounds what a template can build (`MAX_TEMPLATE_CHARS`): the operators that can
    multiply a size (`*`, `**`, `+`, `%`) go through `call_binop` (and are therefore never
    constant-folded at compile time, which could itself run out of memory), `~` through
    `checked_size` (see `_CodeGenerator`), every join of output through `concat`, and the
    padding filters and `lipsum` check their argument first.
    """

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _CodeGenerator
    concat = staticmethod(_bounded_concat)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["lipsum"] = _bounded_lipsum
        for name, position in (("center", 1), ("indent", 1)):  # the filters that pad
            self.filters[name] = _width_filter(name, self.filters[name], position)

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        if operator == "*":
            _check_repeat(left, right)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "%":
            _check_modulo(left)
        return _check_size(super().call_binop(context, operator, left, right), f"'{operator}'")

    @staticmethod
    def checked_size(value: Any) -> Any:
        """The result of a `~` concatenation, refused past the limit (see `_CodeGenerator`)."""
        return _check_size(value, "'~'")

    def getattr(self, obj: Any, attribute: str) -> Any:
        view_fields = _VIEW_FIELDS.get(type(obj))
        if view_fields is not None and attribute in view_fields:
            return getattr(obj, attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: str | Any) -> Any:
        # A view is not subscriptable, so the sandbox would fail `obj[argument]` and then fall
        # back to the vetted attribute: the same value, reached directly.
        view_fields = _VIEW_FIELDS.get(type(obj))
        if view_fields is not None and isinstance(argument, str) and argument in view_fields:
            return getattr(obj, argument)
        return super().getitem(obj, argument)

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        # Jinja's default is a ChainMap over the environment's globals, so that later changes to
        # them show through; ours never change after loading. A ChainMap is slow to copy and
        # compare, and every render, `extends`, `include` and `from … import` does both (about
        # 50 µs of the ~170 µs a message took); a plain dict of the same items renders the same.
        return {**self.globals, **(d or {})}


class _Loader(jinja2.FileSystemLoader):
    """UTF-8 template files; a BOM is dropped and any other encoding is a clear TemplateError.

    Windows Notepad saves with a BOM (it would open every subject) or in Shift_JIS.
    """

    def __init__(self, search_path: list[str]) -> None:
        super().__init__(search_path, encoding="utf-8-sig")

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        try:
            return super().get_source(environment, template)
        except UnicodeDecodeError as exc:
            where = next(
                (
                    str(Path(root, template))
                    for root in self.searchpath
                    if Path(root, template).is_file()
                ),
                template,
            )
            raise TemplateError(
                tr("not UTF-8 text (byte {start}); save the file as UTF-8", start=exc.start),
                file=_display(where),
            ) from None


def _environment(search_path: list[str]) -> ImmutableSandboxedEnvironment:
    return _Sandbox(
        loader=_Loader(search_path),
        undefined=_Undefined,
        autoescape=_autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # Templates do not change during a run; skipping the mtime check keeps `extends` and
        # `include` free of a stat() per message on the hot path.
        auto_reload=False,
        # Unbounded: a plain dict instead of the default LRU, whose bookkeeping costs a lock and a
        # list scan on each of the ~9 template look-ups a message makes (layouts, imports). A
        # template set has a handful of files.
        cache_size=-1,
    )


# --- errors with file and line ----------------------------------------------------------------


def _display(filename: str) -> str:
    """A template path as the operator would type it: relative to the working folder if inside."""
    path = Path(filename)
    if path.is_absolute():
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return filename
    return os.path.normpath(filename)


def _template_frame(tb: TracebackType | None) -> tuple[str, int] | None:
    """The innermost template frame of a traceback that Jinja rewrote.

    `jinja2.debug.rewrite_traceback_stack` replaces each frame of compiled template code with a
    fake frame whose code has the template's filename and line, and whose globals carry
    `__jinja_exception__`; the last such frame is where the template failed.
    """
    found: tuple[str, int] | None = None
    while tb is not None:
        if "__jinja_exception__" in tb.tb_frame.f_globals:
            found = (tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def _template_error(exc: BaseException, fallback_file: str) -> TemplateError:
    if isinstance(exc, jinja2.TemplateSyntaxError):
        file = exc.filename or fallback_file
        return TemplateError(exc.message or str(exc), file=_display(file), line=exc.lineno)
    if isinstance(exc, jinja2.TemplateError):
        message = exc.message or type(exc).__name__
    else:
        message = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, jinja2.TemplateNotFound):
        message = f"template {exc.name!r} not found"
    frame = _template_frame(exc.__traceback__)
    if frame is None:
        return TemplateError(message, file=_display(fallback_file))
    return TemplateError(message, file=_display(frame[0]), line=frame[1])


# --- the template set -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rendered:
    """One recipient's rendered message parts, before MIME encoding."""

    subject: str
    text: str
    html: str | None


def _one_line(subject: str) -> str:
    """A subject is one header line: trim it and join its lines with a space."""
    return " ".join(part.strip() for part in subject.splitlines() if part.strip())


class TemplateSet:
    """The compiled templates of one campaign; renders a context into a `Rendered`."""

    __slots__ = ("_html", "_subject", "_text", "folder")

    def __init__(
        self,
        folder: Path,
        subject: jinja2.Template,
        text: jinja2.Template,
        html: jinja2.Template | None,
    ) -> None:
        self.folder = folder
        self._subject = subject
        self._text = text
        self._html = html

    @property
    def has_html(self) -> bool:
        return self._html is not None

    def render(self, context: Mapping[str, Any]) -> Rendered:
        """Render subject, text and (if present) HTML; any template failure is a TemplateError."""
        subject = self._render(self._subject, context)
        text = self._render(self._text, context)
        html = None if self._html is None else self._render(self._html, context)
        return Rendered(subject=_one_line(subject), text=text, html=html)

    def check(self, *contexts: Mapping[str, Any]) -> None:
        """Render against each sample context so that unknown names fail before any output."""
        if not contexts:
            raise ValueError("check() needs at least one sample context")
        for context in contexts:
            self.render(context)

    @staticmethod
    def _render(template: jinja2.Template, context: Mapping[str, Any]) -> str:
        try:
            return template.render(context)
        except _RENDER_ERRORS as exc:
            raise _template_error(exc, template.filename or str(template.name)) from None


def _template_folder(templates_root: Path, template: str | Path, campaign_file_dir: Path) -> Path:
    # §8: a folder name under templates/, or a path containing "/" relative to the campaign file
    spelled = str(template)
    if "/" in spelled:
        return Path(os.path.normpath(campaign_file_dir / spelled))
    if spelled in ("", ".", ".."):
        raise TemplateError(
            tr("template {spelled!r} is not a template folder name", spelled=spelled)
        )
    return templates_root / spelled


def load_template_set(
    templates_root: Path, template: str | Path, campaign_file_dir: Path
) -> TemplateSet:
    """Find a campaign's template folder and compile its templates (not yet their layouts)."""
    folder = _template_folder(templates_root, template, campaign_file_dir)
    if not folder.is_dir():
        raise TemplateError(
            tr("template folder {value} does not exist", value=_display(str(folder)))
        )
    # The campaign folder first, then the shared root: `{% extends "_layouts/base.txt.j2" %}`.
    env = _environment([str(folder), str(templates_root)])

    def compile_one(name: str) -> jinja2.Template:
        try:
            return env.get_template(name)
        except jinja2.TemplateSyntaxError as exc:
            raise _template_error(exc, str(folder / name)) from None

    for required in (SUBJECT, BODY_TEXT):
        if not (folder / required).is_file():
            raise TemplateError(
                tr("{required} is missing", required=required), file=_display(str(folder))
            )
    html = compile_one(BODY_HTML) if (folder / BODY_HTML).is_file() else None
    return TemplateSet(folder, compile_one(SUBJECT), compile_one(BODY_TEXT), html)
