"""Step: reading runs. The value distributions that a run folder (lm-eval ``--output_path``) holds."""

from __future__ import annotations

from pathlib import Path

from univar_eval.errors import UserError
from univar_eval.storage.distribution import MANIFEST_FILE, ValueDistribution
from univar_eval.storage.files import read_json


def find_distributions(path: str | Path, *, missing_ok: bool = False) -> list[Path]:
    """Folders holding a value distribution under ``path``: the newest per (model, task).

    ``missing_ok``: a run without any (e.g. only HVAE or ValueLex results) gives an empty list
    instead of an error; a missing path or a damaged manifest is an error either way.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.is_file():
        path = path.parent
    newest: dict[tuple, tuple[str, Path]] = {}
    for manifest_path in sorted(path.rglob(MANIFEST_FILE)):
        m = read_json(manifest_path)
        if not isinstance(m, dict) or not str(m.get("format", "")).startswith("univar-eval/value-distribution"):
            continue
        key = (m.get("model"), m.get("task"))
        stamp = m.get("created") or ""
        if key not in newest or stamp >= newest[key][0]:
            newest[key] = (stamp, manifest_path.parent)
    if not newest and not missing_ok:
        raise UserError(f"{path}: no univar-eval artifacts found (run lm_eval with a univar task and --output_path, "
                        "or point to the univar_<time> folder)")
    return [folder for _, folder in sorted(newest.values(), key=lambda t: str(t[1]))]


def load_run(path: str | Path, *, missing_ok: bool = False) -> list[ValueDistribution]:
    return [ValueDistribution.load(folder) for folder in find_distributions(path, missing_ok=missing_ok)]


def run_label(dists: list[ValueDistribution], fallback: str) -> str:
    models = {d.manifest.get("model") for d in dists if d.manifest.get("model")}
    return models.pop() if len(models) == 1 else fallback
