"""Step: pinned revisions. Which commit of each hub model (encoders, translators) a run loads.

A revision is *pinned* when it is a full commit hash (40 hex digits): the files behind it can
never change. A branch (``main``) or a short hash is not pinned: a branch moves, and a short
hash is only a prefix. Cards and manifests say which is which (``revision_pinned``).

A card's revision is checked when it loads: text made of hex digits must be a commit hash of
7 to 40 lowercase hex digits, and text that looks like a mistyped hash (at least 3 digits, at
most 2 letters beyond ``a``-``f``, no separators, 7 to 40 characters) is refused; anything else
is a branch or tag name.

``univar-eval pin`` looks up, in the local hub cache, the commit each unpinned card and
translator resolves to (after the models were downloaded once) and writes those full hashes
into a local cards file; every later run reads it and loads those commits. The file is
``$UNIVAR_EVAL_CARDS`` when set (``off`` ignores any file), else
``$XDG_CONFIG_HOME/univar-eval/cards.yaml`` (``~/.config/univar-eval/cards.yaml``)::

    format: univar-eval/cards/1
    encoders:
      univar-lambda-5: {model_id: CAiRE/UniVaR-lambda-5, revision: <40 hex digits>, was: bc55df8}
    translators:
      nllb-600m: {model_id: facebook/nllb-200-distilled-600M, revision: <40 hex digits>, was: main}

A pin is used only for the same model and only when it agrees with the shipped revision (a short
hash must be its prefix; a shipped full hash must be equal); a stale pin is refused.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from univar_eval.errors import UserError
from univar_eval.storage.files import write_text
from univar_eval.storage.identity import FULL_HASH, SHORT_HASH

FORMAT = "univar-eval/cards/1"
KINDS = ("encoders", "translators")


# -- what a revision is ------------------------------------------------------------------------------------
def is_pinned(revision: str | None, *, package: str | None = None) -> bool:
    """A full commit hash (or, for an encoder bundled in a Python package, an exact ``==`` version)."""
    if package:
        return bool(revision) and "==" in str(revision)
    return bool(revision) and bool(FULL_HASH.fullmatch(str(revision)))


def describe_revision(revision: str | None, *, package: str | None = None) -> str:
    """``pinned``, or why not, in a few words (for listings)."""
    if package:
        return "pinned (package version)" if is_pinned(revision, package=package) else "UNPINNED (package version)"
    if revision == "local":
        return "local folder"
    if is_pinned(revision):
        return "pinned"
    if revision and SHORT_HASH.fullmatch(revision):
        return f"UNPINNED (short hash {revision})"
    return f"UNPINNED (branch {revision or 'main'})"


def check_revision(revision, where: str) -> None:
    """Refuse a revision that is meant to be a commit hash but does not have a hash's form."""
    if revision is None:
        return
    if not isinstance(revision, str) or not revision.strip() or revision != revision.strip():
        raise UserError(f"{where}: revision {revision!r} is not a revision (a commit hash or a branch name)")
    if FULL_HASH.fullmatch(revision) or SHORT_HASH.fullmatch(revision):
        return
    hexlike = re.fullmatch(r"[0-9a-fA-F]+", revision) is not None
    letters_beyond_f = sum(c.isalpha() and c.lower() > "f" for c in revision)
    mistyped = (
        re.fullmatch(r"[0-9a-zA-Z]{7,40}", revision) is not None
        and sum(c.isdigit() for c in revision) >= 3
        and letters_beyond_f <= 2
    )
    if (hexlike and any(c.isdigit() for c in revision)) or mistyped:
        raise UserError(
            f"{where}: revision {revision!r} looks like a commit hash but is not one (a hash is 7 to 40 "
            "lowercase hex digits, 0-9 and a-f; copy the full 40 from the model's hub page)"
        )


# -- the local cards file ----------------------------------------------------------------------------------
def cards_path() -> Path | None:
    """The local cards file every run reads (it need not exist); None when ``UNIVAR_EVAL_CARDS=off``."""
    env = os.environ.get("UNIVAR_EVAL_CARDS")
    if env and env.lower() in ("off", "0", "none", "false"):
        return None
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "univar-eval" / "cards.yaml"


_READ: dict[tuple, dict] = {}  # (path, content) -> pins: the file is parsed once per change


def read_pins(path: Path | None = None) -> dict[str, dict[str, dict]]:
    """``{kind: {name: {model_id, revision, was}}}`` from the cards file (empty when there is none)."""
    path = cards_path() if path is None else path
    if path is None or not path.is_file():
        return {k: {} for k in KINDS}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(
            f"{path}: cannot read the local cards file ({type(e).__name__}); fix it, rerun "
            "'univar-eval pin', or set UNIVAR_EVAL_CARDS=off"
        ) from None
    key = (str(path), text)
    if key not in _READ:
        _READ.clear()
        _READ[key] = _parse_pins(path, text)
    return {k: dict(v) for k, v in _READ[key].items()}


def _parse_pins(path: Path, text: str) -> dict[str, dict[str, dict]]:
    empty: dict[str, dict[str, dict]] = {k: {} for k in KINDS}
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise UserError(
            f"{path}: cannot read the local cards file ({type(e).__name__}); fix it, rerun "
            "'univar-eval pin', or set UNIVAR_EVAL_CARDS=off"
        ) from None
    if not isinstance(data, dict) or data.get("format", FORMAT) != FORMAT:
        raise UserError(f"{path}: not a univar-eval cards file ({FORMAT}); rerun 'univar-eval pin --cards {path}'")
    out = empty
    for kind in KINDS:
        section = data.get(kind) or {}
        if not isinstance(section, dict):
            raise UserError(f"{path}: '{kind}' must map names to {{model_id, revision}}")
        for name, pin in section.items():
            where = f"{path}: {kind}.{name}"
            if not isinstance(pin, dict) or not isinstance(pin.get("model_id"), str):
                raise UserError(f"{where}: needs a model_id and a revision")
            if not is_pinned(pin.get("revision")):
                raise UserError(
                    f"{where}: revision {pin.get('revision')!r} is not a full commit hash (40 lowercase "
                    "hex digits); rerun 'univar-eval pin'"
                )
            out[kind][str(name)] = pin
    return out


def pinned_revision(kind: str, name: str, model_id: str | None, revision: str | None) -> str | None:
    """The revision to load: the local cards file's full hash for this model when it has one, else ``revision``."""
    if not model_id:
        return revision
    pin = read_pins().get(kind, {}).get(name)
    if pin is None:
        return revision
    where = f"{cards_path()}: {kind}.{name}"
    if pin["model_id"] != model_id:
        raise UserError(f"{where} pins {pin['model_id']} but {name} is {model_id}; rerun 'univar-eval pin'")
    shipped_full = is_pinned(revision)
    if (shipped_full and pin["revision"] != revision) or (
        revision and SHORT_HASH.fullmatch(revision) and not pin["revision"].startswith(revision)
    ):
        raise UserError(
            f"{where} pins {pin['revision']} but the card says {revision}; rerun 'univar-eval pin' "
            "(the card changed since)"
        )
    return pin["revision"]


# -- univar-eval pin ---------------------------------------------------------------------------------------
@dataclass
class Pin:
    kind: str
    name: str
    model_id: str
    was: str | None  # the shipped revision
    revision: str | None  # the full hash found (None: not downloaded)
    status: str  # pinned / already pinned / not downloaded / ...


def resolve_in_cache(model_id: str, revision: str | None, cache_dir: str | Path | None = None) -> str | None:
    """The full commit hash that ``revision`` (a branch, a short or a full hash) of ``model_id`` is in the local
    hub cache, or None when it was not downloaded."""
    from huggingface_hub import constants, scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir(cache_dir or constants.HF_HUB_CACHE)  # read at call time: HF_HOME/HF_HUB_CACHE apply
    except (CacheNotFound, ValueError):
        return None
    wanted = revision or "main"
    for repo in info.repos:
        if repo.repo_id != model_id or repo.repo_type != "model":
            continue
        found = {
            r.commit_hash
            for r in repo.revisions
            if wanted in r.refs
            or r.commit_hash == wanted
            or (SHORT_HASH.fullmatch(wanted) and r.commit_hash.startswith(wanted))
        }
        if len(found) == 1:
            return found.pop()
    return None


def pin_all(
    path: Path, models: list[tuple[str, str, str, str | None]], cache_dir: str | Path | None = None
) -> list[Pin]:
    """Resolve every unpinned model of ``models`` ((kind, name, hub id, shipped revision)) in the local hub cache
    and write the full hashes to ``path`` (pins of models not found this time are kept)."""
    pins = read_pins(path)
    results = []
    for kind, name, model_id, was in models:
        if is_pinned(was):
            results.append(Pin(kind, name, model_id, was, was, "pinned by its card"))
            continue
        full = resolve_in_cache(model_id, was, cache_dir)
        if full is None:
            kept = pins[kind].get(name)
            status = "kept the earlier pin (not in the hub cache now)" if kept else "not downloaded"
            results.append(Pin(kind, name, model_id, was, kept["revision"] if kept else None, status))
            continue
        pins[kind][name] = {"model_id": model_id, "revision": full, "was": was}
        results.append(Pin(kind, name, model_id, was, full, "pinned"))
    header = (
        "# Pinned revisions for univar-eval, written by `univar-eval pin` from the local hub cache.\n"
        "# Every run reads this file (UNIVAR_EVAL_CARDS names another; 'off' ignores it).\n"
    )
    body = {"format": FORMAT, **{k: dict(sorted(pins[k].items())) for k in KINDS}}
    write_text(path, header + yaml.safe_dump(body, sort_keys=False))
    return results
