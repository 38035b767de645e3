"""Step: shared banks. Reference banks published as, and fetched from, Hugging Face dataset repositories.

* :func:`push` publishes a bank folder as one commit to a dataset repository
  (``bank.json``, every entry's array and answers, a ``SHA256SUMS`` file over all of them
  and a ``README.md`` dataset card); entry files of an earlier push that the bank no
  longer names are deleted in the same commit.
* :func:`pull` fetches a revision with ``huggingface_hub.snapshot_download`` (so the hub's
  cache, offline mode and tokens all apply), copies the files into a folder of its own
  (real files, never links into the hub cache), checks every sha256 (``SHA256SUMS`` and
  each entry's own) and records the repository and the resolved commit in ``origin.json``.
  Pulled into a folder that already holds a bank, the entries are added to it as
  ``bank add`` adds them: one made with another encoder is refused.
* :func:`local_bank` turns ``hf://ORG/NAME[@REV]`` (``--bank`` and the ``bank`` metadata
  of an lm-eval run) into a local folder: one per repository and commit under the
  univar-eval cache, pulled once and reused afterwards.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import glob
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from univar_eval.errors import UserError
from univar_eval.resources import cache_dir
from univar_eval.storage.bank import MANIFEST, Bank
from univar_eval.storage.files import read_json, sha256_file, write_json
from univar_eval.storage.identity import FULL_HASH

HF_PREFIX = "hf://"
CHECKSUMS = "SHA256SUMS"
CARD = "README.md"
ORIGIN = "origin.json"
ORIGIN_FORMAT = "univar-eval/bank-origin/1"
REPO_TYPE = "dataset"
_REPO_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}")
#: A revision: a full commit hash, or a branch or tag name without path separators or ``..``.
_REVISION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")
_PULLED: dict[str, str] = {}  # hf:// spec -> local folder, once per process


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``hf://ORG/NAME@REV`` or ``ORG/NAME[@REV]`` -> (``ORG/NAME``, ``REV`` or None)."""
    text = spec[len(HF_PREFIX) :] if spec.startswith(HF_PREFIX) else spec
    repo, _, revision = text.partition("@")
    if not _REPO_RE.fullmatch(repo) or repo.count("/") != 1 or ".." in repo or (revision == "" and "@" in text):
        raise UserError(
            f"{spec!r} is not a hub bank; write ORG/NAME or ORG/NAME@REVISION "
            f"({HF_PREFIX}ORG/NAME@REVISION in --bank and --metadata)"
        )
    if revision and (not _REVISION_RE.fullmatch(revision) or ".." in revision):
        raise UserError(
            f"{spec!r}: revision {revision!r} is neither a 40-hex commit nor a branch or tag name (letters, digits, "
            "'_', '-', '.'; no path separators, no '..')"
        )
    return repo, revision or None


def is_hub_spec(spec: str | None) -> bool:
    return bool(spec) and str(spec).startswith(HF_PREFIX)


# -- push ------------------------------------------------------------------------------------------------
@dataclass
class PushPlan:
    files: dict[str, Path]  # path in the repository -> local file
    checksums: str  # SHA256SUMS text
    card: str  # README.md text
    message: str  # commit message


def verify_bank(bank: Bank) -> None:
    """Every entry's array and answers file against the sha256 the manifest records (a UserError if not)."""
    for e in bank.entries():
        bank.load(e, verify=True)
        if e.get("answers_sha256") and sha256_file(bank.path / e["answers"]) != e["answers_sha256"]:
            raise UserError(
                f"{bank.path / e['answers']}: sha256 does not match the bank manifest; "
                "remove the entry and add it again"
            )


def plan_push(bank_dir: str | os.PathLike, repo: str) -> PushPlan:
    """What :func:`push` uploads, after checking the bank: its manifest and the files its entries name."""
    bank = Bank(bank_dir)
    entries = bank.entries()
    if not entries:
        raise UserError(f"bank {bank.path} has no entries; nothing to publish")
    verify_bank(bank)
    files = {MANIFEST: bank.path / MANIFEST}
    for e in entries:
        for key in ("array", "answers"):
            files[Path(e[key]).as_posix()] = bank.path / e[key]
    checksums = "".join(f"{sha256_file(path)}  {name}\n" for name, path in sorted(files.items()))
    enc = bank.encoder() or {}
    models = bank.models()
    message = (
        f"univar-eval bank: {len(entries)} entries of {len(models)} models, encoder {enc.get('name')}@"
        f"{enc.get('revision')} (fingerprint {enc.get('fingerprint_id')})"
    )
    return PushPlan(files, checksums, _card(repo, bank), message)


def _card(repo: str, bank: Bank) -> str:
    enc = bank.encoder() or {}
    lines = [
        "---",
        "tags:",
        "- univar-eval",
        "- value-embeddings",
        "---",
        "",
        f"# {repo}: a univar-eval reference bank",
        "",
        f"Value distributions of {len(bank.models())} reference models, embedded with "
        f"`{enc.get('name')}` (`{enc.get('model_id')}` at revision `{enc.get('revision')}`, fingerprint "
        f"`{enc.get('fingerprint_id')}`). Use it with the same encoder:",
        "",
        "```",
        f"univar-eval bank pull {repo}@<commit> banks/{repo.split('/')[1]}",
        f'lm_eval ... --metadata \'{{"encoder": "{enc.get("name")}", "bank": "{HF_PREFIX}{repo}@<commit>"}}\'',
        "```",
        "",
        "| model | task | language | answers |",
        "|---|---|---|---|",
    ]
    lines += [f"| {e['model']} | {e['task']} | {e['lang']} | {e['n_answers']} |" for e in bank.entries()]
    lines += ["", f"`{CHECKSUMS}` lists the sha256 of every file; `univar-eval bank pull` checks them.", ""]
    return "\n".join(lines)


def push(
    bank_dir: str | os.PathLike,
    repo: str,
    *,
    branch: str | None = None,
    message: str | None = None,
    private: bool = False,
    token: str | None = None,
):
    """Publish the bank as one commit to the dataset repository ``repo``; returns huggingface_hub's CommitInfo."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    repo, revision = parse_spec(repo)
    if revision:
        raise UserError(f"--repo {repo}@{revision}: a push goes to a branch; pass --branch {revision}")
    plan = plan_push(bank_dir, repo)
    api = HfApi(token=token)
    try:
        api.create_repo(repo, repo_type=REPO_TYPE, private=private, exist_ok=True)
        if branch:
            api.create_branch(repo, branch=branch, repo_type=REPO_TYPE, exist_ok=True)
        try:
            existing = api.list_repo_files(repo, repo_type=REPO_TYPE, revision=branch)
        except (RepositoryNotFoundError, RevisionNotFoundError):
            existing = []
        ops = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(path)) for name, path in plan.files.items()]
        ops += [
            CommitOperationAdd(path_in_repo=CHECKSUMS, path_or_fileobj=plan.checksums.encode()),
            CommitOperationAdd(path_in_repo=CARD, path_or_fileobj=plan.card.encode()),
        ]
        ops += [
            CommitOperationDelete(path_in_repo=f)
            for f in sorted(existing)
            if f.startswith("entries/") and f not in plan.files
        ]
        return api.create_commit(
            repo, ops, commit_message=message or plan.message, repo_type=REPO_TYPE, revision=branch
        )
    except HfHubHTTPError as e:
        raise UserError(
            f"publishing to {repo} failed: {str(e).splitlines()[0]}; check the name and that you are "
            "logged in with write access (hf auth login, or HF_TOKEN)"
        ) from None
    except (OSError, ValueError) as e:  # offline mode, no connection, bad repository name
        raise UserError(
            f"publishing to {repo} failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
            "; a push needs the hub (unset HF_HUB_OFFLINE)"
        ) from None


# -- pull ------------------------------------------------------------------------------------------------
@dataclass
class Pulled:
    path: Path  # the local bank
    repo: str
    revision: str  # the commit
    n_entries: int  # entries fetched
    merged: bool  # added to a bank that was there already


def snapshot(repo: str, revision: str | None) -> Path:
    """The hub cache's snapshot of the dataset repository at ``revision`` (downloaded when needed and allowed)."""
    from huggingface_hub import constants, snapshot_download

    if revision is not None:
        parse_spec(f"{repo}@{revision}")  # never a path: checked however this was called
    try:
        snap = Path(snapshot_download(repo, repo_type=REPO_TYPE, revision=revision))
    except (OSError, ValueError) as e:  # not found, offline without a cached copy, no connection
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(
            f"cannot fetch the bank {repo}@{revision or 'main'} ({type(e).__name__}: {first}); check "
            "the name and revision (with HF_HUB_OFFLINE=1 it must be in the hub cache already)"
        ) from None
    # resolved only inside this repository's snapshots in the hub cache, under its commit's name
    snapshots = Path(constants.HF_HUB_CACHE) / f"datasets--{repo.replace('/', '--')}" / "snapshots"
    if snap.resolve().parent != snapshots.resolve() or not FULL_HASH.fullmatch(snap.resolve().name):
        raise UserError(
            f"the hub gave {snap} for {repo}@{revision or 'main'}, which is not a commit snapshot of it in the hub "
            f"cache ({snapshots}); refusing it"
        )
    return snap.resolve()


def read_checksums(text: str, where: str) -> dict[str, str]:
    sums = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = re.fullmatch(r"([0-9a-f]{64}) [ *](.+)", line)
        if not m:
            raise UserError(f"{where}:{lineno}: not a sha256 line ('<64 hex digits>  <file>')")
        sums[m.group(2)] = m.group(1)
    return sums


def _copy_snapshot(snap: Path, target: Path) -> None:
    """Real copies of the snapshot's bank files (the hub cache holds links to its blobs; those are followed):
    ``bank.json``, ``SHA256SUMS``, the card and ``entries/``. Anything else, such as an ``origin.json`` the
    repository carries, is left behind: provenance is written by us, from what we verified."""
    for src in sorted(snap.rglob("*")):
        if src.is_dir():
            continue
        rel = src.relative_to(snap)
        if rel.as_posix() not in (MANIFEST, CHECKSUMS, CARD) and rel.parts[0] != "entries":
            continue
        if ".." in rel.parts:
            raise UserError(f"{src}: a file name that leaves the snapshot; refusing it")
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)  # follows the link: the bank never points into the hub cache


def _verify_copy(folder: Path, repo: str, commit: str) -> Bank:
    """Every sha256 of the copy: those of ``SHA256SUMS`` (when the push wrote one), then each entry's own."""
    where = f"{HF_PREFIX}{repo}@{commit}"
    if not (folder / MANIFEST).is_file():
        raise UserError(f"{where} holds no {MANIFEST}; it is not a univar-eval bank")
    if (folder / CHECKSUMS).is_file():
        sums = read_checksums((folder / CHECKSUMS).read_text(encoding="utf-8"), f"{where}/{CHECKSUMS}")
        for name, digest in sorted(sums.items()):
            path = folder / name
            if not path.resolve().is_relative_to(folder.resolve()):
                raise UserError(f"{where}/{CHECKSUMS} names {name!r}, outside the bank")
            if not path.is_file():
                raise UserError(f"{where}: {name} is listed in {CHECKSUMS} but missing")
            if sha256_file(path) != digest:
                raise UserError(
                    f"{where}: {name} does not match its sha256 in {CHECKSUMS} (damaged upload or "
                    "download); pull again, or ask the publisher to push again"
                )
    bank = Bank(folder)
    if (folder / CHECKSUMS).is_file():
        unlisted = sorted({Path(e[k]).as_posix() for e in bank.entries() for k in ("array", "answers")} - set(sums))
        if MANIFEST not in sums:
            unlisted.insert(0, MANIFEST)
        if unlisted:
            raise UserError(f"{where}: {', '.join(unlisted[:3])} not listed in {CHECKSUMS}; the push was incomplete")
    verify_bank(bank)
    return bank


def _record_origin(folder: Path, record: dict, *, fresh: bool = False) -> None:
    """Add ``record`` to the folder's ``origin.json`` (``fresh``: a new file, whatever was there)."""
    path = folder / ORIGIN
    data = read_json(path) if path.exists() and not fresh else {"format": ORIGIN_FORMAT, "pulls": []}
    if not isinstance(data, dict) or not isinstance(data.get("pulls"), list):
        data = {"format": ORIGIN_FORMAT, "pulls": []}
    data["pulls"].append(record)
    write_json(path, data)


def pull(spec: str, dest: str | os.PathLike, *, replace: bool = True, check=None) -> Pulled:
    """Fetch the bank ``ORG/NAME[@REV]`` into ``dest``, checked; see the module's description. ``check(bank)``
    (e.g. re-embedding a sample) runs on the fetched copy before it lands in ``dest``."""
    repo, revision = parse_spec(spec)
    snap = snapshot(repo, revision)
    return pull_snapshot(snap, repo, revision, Path(dest), replace=replace, check=check)


def pull_snapshot(
    snap: Path, repo: str, revision: str | None, dest: Path, *, replace: bool = True, check=None
) -> Pulled:
    commit = snap.name
    if not FULL_HASH.fullmatch(commit):
        raise UserError(f"{snap}: not a hub snapshot folder (its name is not a commit hash)")
    holds_bank = (dest / MANIFEST).exists()
    if dest.exists() and not dest.is_dir():
        raise UserError(f"{dest} is a file; a bank is a folder")
    if dest.is_dir() and any(dest.iterdir()) and not holds_bank:
        raise UserError(f"{dest} is neither empty nor a bank; pull into a new folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _pull_lock(dest):
        _remove_interrupted_pulls(dest)
        return _pull_locked(snap, repo, revision, dest, commit, holds_bank, replace, check)


PULL_PREFIX = ".pull-"


@contextlib.contextmanager
def _pull_lock(dest: Path) -> Iterator[None]:
    """One pull into ``dest`` at a time (a lock file beside it)."""
    lock_path = dest.parent / f".{dest.name}.pull.lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as e:
        raise UserError(f"{lock_path}: cannot lock the pull ({e.strerror or e}); remove it and pull again") from None
    with open(fd, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _remove_interrupted_pulls(dest: Path) -> list[Path]:
    """Folders of pulls into ``dest`` that never finished (killed): removed under the pull lock."""
    gone = []
    for folder in dest.parent.glob(f".{glob.escape(dest.name)}{PULL_PREFIX}*"):
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder)
            gone.append(folder)
    return gone


def _pull_locked(
    snap: Path, repo: str, revision: str | None, dest: Path, commit: str, holds_bank: bool, replace: bool, check
) -> Pulled:
    work = dest.parent / f".{dest.name}{PULL_PREFIX}{secrets.token_hex(4)}"
    try:
        _copy_snapshot(snap, work)
        fetched = _verify_copy(work, repo, commit)
        if check is not None:
            check(fetched)
        record = {
            "repo": repo,
            "revision": commit,
            "requested": revision or "main",
            "pulled": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "entries": len(fetched.entries()),
            "checksums": (work / CHECKSUMS).is_file(),
        }
        if not holds_bank:
            _record_origin(work, record, fresh=True)
            if dest.is_dir():
                dest.rmdir()  # empty (checked above)
            os.replace(work, dest)
            return Pulled(dest, repo, commit, record["entries"], False)
        # into an existing bank: entry by entry, as `bank add` adds them (another encoder is refused)
        bank = Bank(dest)
        source = f"{HF_PREFIX}{repo}@{commit}"
        bank.add_many(
            [(fetched.load(e, with_answers=True), e["model"], source) for e in fetched.entries()], replace=replace
        )
        _record_origin(dest, record)
        return Pulled(dest, repo, commit, record["entries"], True)
    finally:
        if work.exists():
            shutil.rmtree(work)


# -- hf:// banks in --bank and --metadata -------------------------------------------------------------------
def banks_dir() -> Path:
    """Where ``hf://`` banks are kept: ``<univar-eval cache>/banks/<ORG>--<NAME>/<commit>``."""
    base = cache_dir() or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "univar-eval"
    return base / "banks"


def _is_pulled(folder: Path, commit: str) -> bool:
    try:
        origin = read_json(folder / ORIGIN)
    except UserError:
        return False
    pulls = origin.get("pulls") if isinstance(origin, dict) else None
    return bool(pulls) and pulls[0].get("revision") == commit and (folder / MANIFEST).is_file()


def local_bank(spec: str | None) -> str | None:
    """A local folder for ``spec``: ``hf://ORG/NAME[@REV]`` is pulled once (or reused), anything else is a path."""
    if not is_hub_spec(spec):
        return spec
    if spec in _PULLED:
        return _PULLED[spec]
    repo, revision = parse_spec(spec)
    root = banks_dir() / repo.replace("/", "--")
    if revision and FULL_HASH.fullmatch(revision) and _is_pulled(root / revision, revision):
        _PULLED[spec] = str(root / revision)  # a commit never changes: no need to ask the hub
        return _PULLED[spec]
    snap = snapshot(repo, revision)
    folder = root / snap.name
    if not _is_pulled(folder, snap.name):
        if folder.exists():  # a pull that did not finish
            shutil.rmtree(folder)
        try:
            pull_snapshot(snap, repo, revision, folder)
        except OSError:
            if not _is_pulled(folder, snap.name):  # another process pulled it at the same moment
                raise
    _PULLED[spec] = str(folder)
    return _PULLED[spec]


def open_bank(spec: str, check=None) -> Bank:
    """The bank a ``--bank`` option names: a folder, or ``hf://ORG/NAME[@REV]``. ``check(bank)`` is called on a
    hub bank each time it is opened (its local copy lives in the cache folder, which CI may restore)."""
    bank = Bank(local_bank(spec))
    if check is not None and is_hub_spec(spec):
        check(bank)
    return bank
