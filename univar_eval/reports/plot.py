"""Step: value maps. UniVaR's picture of model-language value centroids, and a heatmap of their distances.

* :func:`centroids`: the mean embedding of every (model, language) over the chosen tasks;
* :func:`project`: 2-D coordinates, PCA by default (numpy SVD of the centred centroids), UMAP
  when ``umap-learn`` is installed and asked for;
* :func:`draw_map`: points coloured by language and marked by model; each language's centroid
  (the mean of its models' points in the map) is drawn and linked to its points. A PCA map keeps
  one unit the same length on both axes, so no axis is stretched beyond its share of the variance;
  when the second axis explains (almost) nothing, the map is drawn in one dimension and says so;
* :func:`distance_matrix` / :func:`draw_heatmap`: pairwise distances between the
  model-language distributions (MMD by default, see :mod:`univar_eval.stats.distance`).

matplotlib is used through its Agg canvas only (no pyplot, no display, no global backend
switch); every figure is written to a temporary file beside the target and renamed into place.
The pixel size of a PNG is ``size × dpi`` exactly (no tight bounding box).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from univar_eval.errors import UserError
from univar_eval.hvae.svo import TARGETS
from univar_eval.stats import designs
from univar_eval.stats import distance as distance_mod
from univar_eval.stats.identify import LabelledSet, check_one_encoder
from univar_eval.storage.files import atomic_path

CONTROL = "control"
FORMATS = ("png", "svg", "pdf")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "p", "8", "d", "H")
MAX_POINTS = 300  # rows per model-language set in the distance heatmap (a seeded subsample above it)
FLAT_SHARE = 0.01  # a second PCA axis explaining less than this share of the variance is not drawn
#: 25 colours that stay apart (CIE76 distance >= 15 between any two): Kelly's contrast colours and five more
PALETTE = (
    "#F3C300",
    "#875692",
    "#F38400",
    "#A1CAF1",
    "#BE0032",
    "#C2B280",
    "#848482",
    "#008856",
    "#E68FAC",
    "#0067A5",
    "#F99379",
    "#604E97",
    "#F6A600",
    "#B3446C",
    "#DCD300",
    "#882D17",
    "#8DB600",
    "#654522",
    "#E25822",
    "#2B3D26",
    "#00CED1",
    "#000080",
    "#FF00FF",
    "#7FFFD4",
    "#222222",
)


# -- data --------------------------------------------------------------------------------------------------
def select_family(sets: list[LabelledSet], family: str | None) -> list[LabelledSet]:
    """Sets of one questionnaire family (``pvq`` matches questionnaire pvq and tasks ``univar_pvq_*``).

    Without a family every value questionnaire is kept and the non-value control is left out.
    """
    if family is None:
        kept = [s for s in sets if s.questionnaire != CONTROL]
    else:
        kept = [s for s in sets if s.questionnaire == family or (s.task or "").startswith(f"univar_{family}_")]
    if not kept:
        have = sorted({str(s.questionnaire) for s in sets})
        raise UserError(
            f"no inputs for task family {family or 'any value questionnaire'}; "
            f"the inputs have: {', '.join(have) or 'nothing'}"
        )
    return kept


def grouped(sets: list[LabelledSet]) -> tuple[list[tuple[str, str]], list[np.ndarray]]:
    """(model, lang) keys in sorted order and the pooled embeddings of each."""
    pools: dict[tuple[str, str], list[np.ndarray]] = {}
    for s in sets:
        if len(s.embeddings):
            pools.setdefault((s.model, s.lang), []).append(np.asarray(s.embeddings, dtype=np.float64))
    keys = sorted(pools)
    return keys, [np.vstack(pools[k]) for k in keys]


def grouped_question_ids(sets: list[LabelledSet], keys: list[tuple[str, str]]) -> list[list | None]:
    """For each (model, lang) key, the question of every pooled answer as ``questionnaire:key`` (shared across
    models and languages), or None when a set does not record them; in the order of :func:`grouped`'s pools."""
    ids: dict[tuple[str, str], list | None] = {}
    for s in sets:
        if len(s.embeddings):
            key, have = (s.model, s.lang), ids.get((s.model, s.lang), [])
            ids[key] = None if have is None or s.questions is None else have + [f"{s.source}:{q}" for q in s.questions]
    return [ids.get(k) for k in keys]


def centroids(sets: list[LabelledSet]) -> tuple[list[tuple[str, str]], np.ndarray]:
    """(model, lang) keys and the mean embedding of each (rows of the returned matrix)."""
    keys, pools = grouped(sets)
    if len(keys) < 2:
        raise UserError(
            f"a map needs two model-language pairs or more; the inputs have "
            f"{', '.join('$'.join(k) for k in keys) or 'none'}"
        )
    return keys, np.vstack([p.mean(axis=0) for p in pools])


# -- projection --------------------------------------------------------------------------------------------
def pca_2d(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates on the first two principal axes and the share of variance each explains."""
    centred = np.asarray(points, dtype=np.float64) - np.mean(points, axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    xy = np.zeros((len(points), 2))
    r = min(2, len(s))
    xy[:, :r] = u[:, :r] * s[:r]
    total = float(np.sum(s**2))
    share = np.zeros(2)
    share[:r] = (s[:r] ** 2) / total if total > 0 else 0.0
    # a fixed sign: the largest coordinate of each axis is positive (SVD signs are arbitrary)
    for j in range(2):
        if xy[np.argmax(np.abs(xy[:, j])), j] < 0:
            xy[:, j] *= -1
    return xy, share


def umap_2d(points: np.ndarray, seed: int = 0) -> np.ndarray:
    try:
        import umap
    except ImportError:
        raise UserError(
            "--method umap needs the umap-learn package: pip install umap-learn (or use the default --method pca)"
        ) from None
    if len(points) < 4:
        raise UserError(f"UMAP needs four model-language pairs or more (got {len(points)}); use --method pca")
    reducer = umap.UMAP(n_components=2, n_neighbors=min(15, len(points) - 1), metric="cosine", random_state=seed)
    return np.asarray(reducer.fit_transform(np.asarray(points, dtype=np.float32)), dtype=np.float64)


def project(points: np.ndarray, method: str = "pca", seed: int = 0) -> tuple[np.ndarray, tuple[str, str]]:
    """2-D coordinates and the axis labels (a one-dimensional PCA map has its second coordinate at 0)."""
    if method == "pca":
        xy, share = pca_2d(points)
        if share[1] < FLAT_SHARE:
            xy[:, 1] = 0.0
            return xy, (
                f"PC1 ({100 * share[0]:.1f}% of variance)",
                f"one dimension: PC2 explains {100 * share[1]:.1f}% of the variance",
            )
        return xy, (f"PC1 ({100 * share[0]:.1f}% of variance)", f"PC2 ({100 * share[1]:.1f}% of variance)")
    if method == "umap":
        return umap_2d(points, seed), ("UMAP 1", "UMAP 2")
    raise UserError(f"unknown --method {method!r}; choose pca or umap")


# -- distances ---------------------------------------------------------------------------------------------
def distance_matrix(
    pools: list[np.ndarray],
    metric: str = "mmd",
    max_points: int = MAX_POINTS,
    seed: int = 0,
    groups: list[list | None] | None = None,
) -> np.ndarray:
    """Symmetric matrix of distances between sets (NaN where a pair cannot be compared); zero diagonal.

    Each pair is compared with :func:`univar_eval.stats.distance.compare_sets` (distance only). With
    question ids (``groups``, one list per pool) the pair is paired: a seeded subsample of at most
    ``max_points`` answers a side, drawn by shared question id, so both sides keep the same questions.
    Without ids each side is subsampled on its own and compared unpaired.
    """
    groups = groups or [None] * len(pools)
    n = len(pools)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            gi, gj = (groups[i], groups[j]) if groups[i] is not None and groups[j] is not None else (None, None)
            ix, iy = designs.paired_subsample(gi, gj, max_points, seed, n_x=len(pools[i]), n_y=len(pools[j]))
            if min(len(ix), len(iy)) < 2:
                out[i, j] = out[j, i] = np.nan
                continue
            r = distance_mod.compare_sets(
                pools[i][ix],
                pools[j][iy],
                metric,
                n_permutations=0,
                n_bootstrap=0,
                groups_x=None if gi is None else [gi[k] for k in ix],
                groups_y=None if gj is None else [gj[k] for k in iy],
            )
            out[i, j] = out[j, i] = np.nan if r.problem else r.distance
    return out


# -- drawing -----------------------------------------------------------------------------------------------
def _figure(size: tuple[float, float], dpi: float):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UserError(
            'drawing needs matplotlib: pip install matplotlib (or ".[plot]" in a univar-eval checkout)'
        ) from None
    fig = Figure(figsize=size, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def output_format(path: str | Path) -> str:
    fmt = Path(path).suffix.lower().lstrip(".") or "png"
    if fmt not in FORMATS:
        raise UserError(f"{path}: cannot write .{fmt} pictures; name the file .png, .svg or .pdf")
    return fmt


def _save(fig, path: str | Path, dpi: float) -> Path:
    fmt = output_format(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi)
    return Path(path)


def _colours(n: int) -> list:
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    if n <= len(PALETTE):
        return list(PALETTE[:n])
    return [colormaps["hsv"](i / n) for i in range(n)]


def _spread_labels(fig, texts) -> None:
    """Move annotation labels up (in steps of their own height) until no two overlap."""
    fig.canvas.draw()  # lays the figure out once; moving a label does not change the layout
    renderer = fig.canvas.get_renderer()
    placed = []
    for text in texts:
        for _ in range(len(texts) + 1):
            box = text.get_window_extent(renderer).expanded(1.05, 1.1)
            if not any(box.overlaps(other) for other in placed):
                break
            x, y = text.xyann  # the label's offset from its star, in points
            text.xyann = (x, y + box.height * 72.0 / fig.dpi)
            text.update_positions(renderer)
        placed.append(text.get_window_extent(renderer))


def draw_map(
    xy: np.ndarray,
    keys: list[tuple[str, str]],
    path: str | Path,
    *,
    title: str,
    axis_labels: tuple[str, str] = ("", ""),
    size: tuple[float, float] = (8.0, 6.0),
    dpi: float = 150,
) -> Path:
    """Points coloured by language, marked by model; each language's centroid linked to its points."""
    output_format(path)
    fig = map_figure(xy, keys, title=title, axis_labels=axis_labels, size=size, dpi=dpi)
    return _save(fig, path, dpi)


def map_figure(
    xy: np.ndarray,
    keys: list[tuple[str, str]],
    *,
    title: str,
    axis_labels: tuple[str, str] = ("", ""),
    size: tuple[float, float] = (8.0, 6.0),
    dpi: float = 150,
):
    """The map as a matplotlib figure (see :func:`draw_map`)."""
    fig = _figure(size, dpi)  # first: a missing matplotlib is reported before anything else imports it
    from matplotlib.lines import Line2D

    langs = sorted({lang for _, lang in keys})
    models = sorted({model for model, _ in keys})
    colour = dict(zip(langs, _colours(len(langs))))
    marker = {m: MARKERS[i % len(MARKERS)] for i, m in enumerate(models)}
    ax = fig.add_subplot()
    labels = []
    for lang in langs:
        rows = [i for i, (_, lg) in enumerate(keys) if lg == lang]
        centre = xy[rows].mean(axis=0)
        for i in rows:
            ax.plot([centre[0], xy[i, 0]], [centre[1], xy[i, 1]], color=colour[lang], alpha=0.45, lw=1, zorder=1)
        ax.scatter(
            [centre[0]],
            [centre[1]],
            marker="*",
            s=260,
            color=colour[lang],
            edgecolors="black",
            linewidths=0.8,
            zorder=2,
        )
        labels.append(
            ax.annotate(
                lang, centre, xytext=(6, 6), textcoords="offset points", fontsize=9, fontweight="bold", zorder=4
            )
        )
    for i, (model, lang) in enumerate(keys):  # above the stars: a model's point is never hidden by its centroid
        ax.scatter(
            [xy[i, 0]],
            [xy[i, 1]],
            marker=marker[model],
            s=55,
            color=colour[lang],
            edgecolors="black",
            linewidths=0.4,
            zorder=3,
        )
    lang_handles = [
        Line2D([], [], ls="", marker="o", color=colour[lg], markeredgecolor="black", label=lg) for lg in langs
    ]
    lang_handles.append(
        Line2D(
            [], [], ls="", marker="*", markersize=12, color="white", markeredgecolor="black", label="language centroid"
        )
    )
    model_handles = [
        Line2D([], [], ls="", marker=marker[m], color="grey", markeredgecolor="black", label=m) for m in models
    ]
    # "outside" legends: constrained layout shrinks the axes so that both fit inside the figure
    fig.legend(handles=lang_handles, title="language", loc="outside right upper", fontsize=8, title_fontsize=9)
    fig.legend(handles=model_handles, title="model", loc="outside right lower", fontsize=8, title_fontsize=9)
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    flat = not np.any(xy[:, 1])
    if flat:  # one dimension: a strip, never a second axis stretched over noise
        ax.set_yticks([])
    # one unit is as long on both axes: an axis takes the room its share of the variance earns
    ax.set_aspect("equal", adjustable="datalim")
    notes = []
    if len(langs) == 1:
        notes.append(f"one language ({langs[0]}): points differ by model only")
    if len(models) == 1:
        notes.append(f"one model ({models[0]}): points differ by language only")
    ax.set_title(title + ("\n" + "; ".join(notes) if notes else ""), fontsize=10)
    ax.grid(alpha=0.25)
    _spread_labels(fig, labels)
    return fig


def draw_heatmap(
    matrix: np.ndarray,
    labels: list[str],
    path: str | Path,
    *,
    title: str,
    metric: str = "mmd",
    size: tuple[float, float] = (8.0, 6.0),
    dpi: float = 150,
) -> Path:
    """Pairwise distances with the labels on both axes (values written in the cells when there are few)."""
    output_format(path)
    fig = heatmap_figure(matrix, labels, title=title, metric=metric, size=size, dpi=dpi)
    return _save(fig, path, dpi)


def heatmap_figure(
    matrix: np.ndarray,
    labels: list[str],
    *,
    title: str,
    metric: str = "mmd",
    size: tuple[float, float] = (8.0, 6.0),
    dpi: float = 150,
):
    """The heatmap as a matplotlib figure (see :func:`draw_heatmap`)."""
    fig = _figure(size, dpi)
    ax = fig.add_subplot()
    n = len(labels)
    finite = matrix[np.isfinite(matrix)]
    top = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    # distances are never negative: the scale starts at 0, so a small spread does not look large
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap="viridis", interpolation="nearest", vmin=0.0, vmax=top)
    fig.colorbar(image, ax=ax, label=f"{metric} distance")
    font = max(4.0, min(9.0, 240.0 / max(n, 1)))
    ax.set_xticks(range(n), labels, rotation=60, ha="right", rotation_mode="anchor", fontsize=font)
    ax.set_yticks(range(n), labels, fontsize=font)
    if n <= 12:
        middle = top / 2
        for i in range(n):
            for j in range(n):
                v = matrix[i, j]
                text = "n/a" if not np.isfinite(v) else f"{v:.2f}"
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=font * 0.85,
                    color="white" if np.isfinite(v) and v < middle else "black",
                )
    fig.suptitle(title, fontsize=10)
    return fig


# -- the command's work ------------------------------------------------------------------------------------
def value_map(
    sets: list[LabelledSet],
    output: str | Path,
    *,
    method: str = "pca",
    family: str | None = None,
    heatmap: str | Path | None = None,
    metric: str = "mmd",
    size: tuple[float, float] = (8.0, 6.0),
    dpi: float = 150,
    seed: int = 0,
) -> dict:
    """Draw the map (and the heatmap); return the coordinates and distances as plain data."""

    sets = select_family(sets, family)
    encoder = check_one_encoder(sets)
    output_format(output)
    if heatmap:
        output_format(heatmap)
    keys, points = centroids(sets)
    xy, axis_labels = project(points, method, seed)
    enc_name = encoder.get("name") or "unknown encoder"
    what = family or "value questionnaires"
    draw_map(
        xy,
        keys,
        output,
        title=f"Value map ({what}, {method.upper()})\nencoder {enc_name}",
        axis_labels=axis_labels,
        size=size,
        dpi=dpi,
    )
    result = {
        "encoder": {k: encoder.get(k) for k in ("name", "fingerprint_id")},
        "method": method,
        "task_family": family,
        "map": str(output),
        "points": [{"model": m, "lang": lg, "x": float(p[0]), "y": float(p[1])} for (m, lg), p in zip(keys, xy)],
    }
    if heatmap:
        group_keys, pools = grouped(sets)
        matrix = distance_matrix(pools, metric, seed=seed, groups=grouped_question_ids(sets, group_keys))
        labels = [f"{m}${lg}" for m, lg in keys]
        draw_heatmap(
            matrix,
            labels,
            heatmap,
            metric=metric,
            size=size,
            dpi=dpi,
            title=f"{metric.upper()} between model-language value distributions\n({what}), encoder {enc_name}",
        )
        result.update(
            heatmap=str(heatmap),
            labels=labels,
            distances=[[None if not np.isfinite(v) else float(v) for v in row] for row in matrix],
        )
    return result


def draw_hvae_bars(
    table: list[dict], path: str | Path, *, size: tuple[float, float] = (8.0, 4.5), dpi: float = 150
) -> Path:
    """Grouped bars of HVAE value rationality per target value, one bar per run and task form."""

    if not table:
        raise UserError("no HVAE results to plot (run lm_eval with --tasks hvae_svo or hvae_svo_mc)")
    fig = _figure(size, dpi)
    ax = fig.add_subplot()
    width = 0.8 / len(table)
    colours = _colours(len(table))
    for k, row in enumerate(table):
        values = [row["targets"].get(t, {}).get("value_rationality") for t in TARGETS]
        heights = [v if isinstance(v, (int, float)) and v == v else 0.0 for v in values]
        xs = [i - 0.4 + width * (k + 0.5) for i in range(len(TARGETS))]
        ax.bar(xs, heights, width=width, color=colours[k], label=f"{row['run']} ({row['form']})")
        for x, v in zip(xs, values):
            if not (isinstance(v, (int, float)) and v == v):
                ax.text(x, 0.02, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
    ax.set_xticks(range(len(TARGETS)), TARGETS)
    lowest = min(
        [0.0]
        + [
            v
            for row in table
            for v in (row["targets"].get(t, {}).get("value_rationality") for t in TARGETS)
            if isinstance(v, (int, float)) and v == v
        ]
    )
    ax.set_ylim(min(-0.1, lowest - 0.05), 1.05)  # chance-corrected: below 0 is worse than chance
    ax.axhline(0.0, color="black", lw=0.8, ls="--", label="chance")
    ax.set_ylabel("value rationality (1 ideal, 0 chance)")
    ax.set_title("HVAE: value rationality per target value")
    ax.legend(fontsize=8)
    return _save(fig, path, dpi)


# -- drift: which values moved --------------------------------------------------------------------------
#: PVQ's 19 values in the order of Schwartz's circle (refined theory), going round once.
PVQ_CIRCLE = (
    "sd_thought",
    "sd_action",
    "stimulation",
    "hedonism",
    "achievement",
    "power_dominance",
    "power_resources",
    "face",
    "security_personal",
    "security_societal",
    "tradition",
    "conformity_rules",
    "conformity_interpersonal",
    "humility",
    "benevolence_dependability",
    "benevolence_caring",
    "universalism_concern",
    "universalism_nature",
    "universalism_tolerance",
)
#: colours of PVQ's higher-order groups on the circle
PVQ_GROUP_COLOURS = {
    "openness_to_change": "#e6902e",
    "self_enhancement": "#c8453b",
    "conservation": "#3f76b5",
    "self_transcendence": "#3f9b5a",
}


def _drift_rows(values: list, quantity: str) -> dict[str, tuple[float, float | None, float | None, bool]]:
    """label -> (magnitude, low, high, significant); insufficient labels are left out."""
    out = {}
    for v in values:
        if v.status != "ok":
            continue
        if quantity == "share":
            mag, lo, hi = v.share, v.share_low, v.share_high
        else:
            mag, lo, hi = v.distance, v.ci_low, v.ci_high
        if mag is None:
            continue
        out[v.label] = (
            max(float(mag), 0.0),
            None if lo is None else max(float(lo), 0.0),
            None if hi is None else max(float(hi), 0.0),
            bool(v.significant),
        )
    return out


def draw_value_circle(
    values: list,
    path: str | Path,
    *,
    title: str,
    groups: dict[str, str] | None = None,
    quantity: str = "distance",
    size: tuple[float, float] = (7.5, 7.5),
    dpi: float = 150,
) -> Path:
    """PVQ's 19 values round Schwartz's circle: one wedge per value whose length is its distance (or share)
    from the baseline, a whisker for its interval, a black edge and a star when significant. Lengths are
    magnitudes: a distance says how much a value moved, never in which direction."""
    output_format(path)
    fig = _figure(size, dpi)
    from matplotlib.patches import Patch

    rows = _drift_rows(values, quantity)
    groups = groups or {}
    n = len(PVQ_CIRCLE)
    theta = 2 * np.pi * np.arange(n) / n
    ax = fig.add_subplot(projection="polar")
    ax.set_theta_offset(np.pi / 2)  # self-direction at the top, going round clockwise
    ax.set_theta_direction(-1)
    top = max([r[2] if r[2] is not None else r[0] for r in rows.values()] + [1e-6])
    for i, label in enumerate(PVQ_CIRCLE):
        colour = PVQ_GROUP_COLOURS.get(groups.get(label, ""), "#888888")
        if label not in rows:
            ax.text(theta[i], top * 0.08, "n/a", ha="center", va="center", fontsize=7, color="grey")
            continue
        mag, lo, hi, sig = rows[label]
        ax.bar(
            theta[i],
            mag,
            width=2 * np.pi / n * 0.8,
            color=colour,
            alpha=0.9 if sig else 0.45,
            edgecolor="black" if sig else colour,
            linewidth=1.6 if sig else 0.5,
            zorder=2,
        )
        if lo is not None and hi is not None:
            whisker = "black" if sig else "#555555"
            ax.plot([theta[i], theta[i]], [lo, hi], color=whisker, lw=1.2 if sig else 0.8, zorder=3)
            ax.plot([theta[i]], [hi], marker="_", color=whisker, zorder=3)
        if sig:
            ax.text(
                theta[i],
                (hi if hi is not None else mag) + top * 0.06,
                "*",
                ha="center",
                va="center",
                fontsize=15,
                fontweight="bold",
                zorder=4,
            )
    ax.set_xticks(
        theta, [lb.replace("sd_", "self-direction_").replace("_", "\n", 1) for lb in PVQ_CIRCLE], fontsize=7.5
    )
    ax.set_ylim(0, top * 1.18)
    ax.set_rlabel_position(0)
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(alpha=0.3)
    what = "share of the task's shift" if quantity == "share" else "distance from the baseline (MMD)"
    ax.set_title(f"{title}\n{what}; whisker: 95% interval; * and black edge: significant (BH)", fontsize=9.5)
    handles = [Patch(color=c, label=g.replace("_", " ")) for g, c in PVQ_GROUP_COLOURS.items()]
    fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=8)
    return _save(fig, path, dpi)


def draw_value_bars(
    values: list,
    path: str | Path,
    *,
    title: str,
    quantity: str = "distance",
    size: tuple[float, float] = (8.0, 5.0),
    dpi: float = 150,
) -> Path:
    """One horizontal bar per value label (largest at the top) with its interval; significant ones dark and
    starred. For questionnaires without Schwartz's circle (WVS themes, GLOBE dimensions, situation domains)."""
    output_format(path)
    fig = _figure(size, dpi)
    rows = _drift_rows(values, quantity)
    if not rows:
        raise UserError("no value has enough answers to draw")
    order = sorted(rows, key=lambda lb: (rows[lb][0], lb))
    ax = fig.add_subplot()
    ys = np.arange(len(order))
    mags = [rows[lb][0] for lb in order]
    colours = ["#2c5d8f" if rows[lb][3] else "#9bb7d4" for lb in order]
    ax.barh(ys, mags, color=colours, zorder=2)
    for y, lb in zip(ys, order):
        mag, lo, hi, sig = rows[lb]
        if lo is not None and hi is not None:
            ax.plot([lo, hi], [y, y], color="black", lw=1.2, zorder=3)
        if sig:
            ax.text((hi if hi is not None else mag), y, "  *", va="center", fontsize=12, fontweight="bold")
    ax.set_yticks(ys, [lb.replace("_", " ") for lb in order], fontsize=8)
    ax.set_xlim(left=0)
    ax.set_xlabel("share of the task's shift" if quantity == "share" else "distance from the baseline (MMD)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"{title}\nline: 95% interval; dark and *: significant (BH)", fontsize=9.5)
    return _save(fig, path, dpi)


def draw_drift(
    result, path: str | Path, *, questionnaire: str | None, title: str, quantity: str = "distance", dpi: float = 150
) -> Path:
    """The value circle for PVQ, bars for the other questionnaires (``result``: a stats.drift.DriftResult)."""
    if result.design != "per_question":
        title += "\none answer per question: descriptive (mean answer distance), no interval, no test"
    if questionnaire == "pvq" and {v.label for v in result.values} <= set(PVQ_CIRCLE):
        return draw_value_circle(
            result.values, path, title=title, groups=result.value_groups, quantity=quantity, dpi=dpi
        )
    return draw_value_bars(result.values, path, title=title, quantity=quantity, dpi=dpi)
