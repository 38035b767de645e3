"""``univar-eval map``: PNG files of the asked size, PCA against a hand-computed case, the distance heatmap,
task-family selection, refusals, atomic writes, the CLI end to end on a synthetic bank and run."""

from __future__ import annotations

import importlib.util
import json
import struct
import sys

import numpy as np
import pytest
import synthetic
from synthetic import cloud, manifest

from univar_eval.cli import main
from univar_eval.errors import UserError
from univar_eval.reports import plot
from univar_eval.stats.identify import LabelledSet
from univar_eval.storage.distribution import ValueDistribution

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, "not a PNG file"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    return struct.unpack(">II", data[16:24])


def synthetic_bank(path, **kw):
    """Languages far apart, models close within a language: the map must cluster by language."""
    return synthetic.synthetic_bank(path, model_weight=0.4, lang_weight=2.0, **kw)


def lset(model, lang, emb, questionnaire="pvq"):
    return LabelledSet(
        model,
        lang,
        f"univar_{questionnaire}_{lang}",
        questionnaire,
        np.asarray(emb, np.float32),
        {"name": "fake", "fingerprint": [0.0] * 8, "fingerprint_id": "fp"},
        "test",
    )


# -- pieces ----------------------------------------------------------------------------------------------------
def test_pca_hand_computed():
    points = np.array([[0.0, 5.0], [1.0, 5.0], [3.0, 5.0]])  # on a line: centred x = -4/3, -1/3, 5/3
    xy, share = plot.pca_2d(points)
    assert xy[:, 0] == pytest.approx([-4 / 3, -1 / 3, 5 / 3])
    assert xy[:, 1] == pytest.approx([0, 0, 0], abs=1e-12)
    assert share == pytest.approx([1.0, 0.0])


def test_centroids_are_means_per_model_and_language():
    a1, a2 = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 1.0]])
    keys, cents = plot.centroids([lset("a", "eng", a1), lset("a", "eng", a2, "wvs"), lset("b", "eng", [[0, 1.0]])])
    assert keys == [("a", "eng"), ("b", "eng")]
    assert cents.tolist() == [[2 / 3, 2 / 3], [0.0, 1.0]]
    with pytest.raises(UserError, match="two model-language pairs"):
        plot.centroids([lset("a", "eng", a1)])


def test_task_family_selection_leaves_control_out_by_default():
    sets = [lset("a", "eng", [[1.0, 0]]), lset("a", "eng", [[0, 1.0]], "control"), lset("a", "eng", [[1.0, 1]], "wvs")]
    assert [s.questionnaire for s in plot.select_family(sets, None)] == ["pvq", "wvs"]
    assert [s.questionnaire for s in plot.select_family(sets, "pvq")] == ["pvq"]
    assert [s.questionnaire for s in plot.select_family(sets, "control")] == ["control"]
    with pytest.raises(UserError, match="control, pvq, wvs"):
        plot.select_family(sets, "globe")


def test_distance_matrix_by_hand():
    # three sets of two identical unit vectors: e1, e2 and (0.6, 0.8), and a one-answer set
    pools = [np.array([v, v]) for v in ([1.0, 0.0], [0.0, 1.0], [0.6, 0.8])] + [np.array([[1.0, 0.0]])]
    centroid = plot.distance_matrix(pools, "centroid")  # 1 - cos between the means
    assert centroid[:3, :3] == pytest.approx(np.array([[0, 1, 0.4], [1, 0, 0.2], [0.4, 0.2, 0]]), abs=1e-9)
    # unbiased MMD² with k(x, y) = exp(cos(x, y) - 1): within-set pairs give 1, cross pairs exp(cos - 1),
    # so MMD² = 2 - 2 exp(cos - 1) and the distance is its square root
    mmd = plot.distance_matrix(pools, "mmd")
    assert mmd[0, 1] == pytest.approx(np.sqrt(2 - 2 * np.exp(-1)), abs=1e-6)
    assert mmd[0, 2] == pytest.approx(np.sqrt(2 - 2 * np.exp(-0.4)), abs=1e-6)
    assert np.allclose(mmd[:3, :3], mmd[:3, :3].T) and np.allclose(np.diag(mmd), 0)
    assert np.isnan(mmd[0, 3]) and np.isnan(mmd[3, 1])  # a one-answer set has no MMD


def test_umap_missing_is_a_user_error():
    if importlib.util.find_spec("umap") is not None:
        pytest.skip("umap-learn is installed")
    with pytest.raises(UserError, match="pip install umap-learn"):
        plot.project(np.eye(5), "umap")


def test_missing_matplotlib_is_a_user_error(monkeypatch, tmp_path):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg", "matplotlib.lines"):
        monkeypatch.setitem(sys.modules, name, None)  # as if matplotlib were not installed
    with pytest.raises(UserError, match=r"drawing needs matplotlib: pip install matplotlib"):
        plot.draw_map(np.zeros((2, 2)), [("a", "eng"), ("b", "eng")], tmp_path / "m.png", title="t")
    assert not (tmp_path / "m.png").exists()


def test_draw_writes_png_of_the_asked_size_atomically(tmp_path):
    target = tmp_path / "m.png"
    target.write_bytes(b"old")
    xy = np.array([[0.0, 0.0], [1.0, 0.5], [0.2, 1.0]])
    plot.draw_map(xy, [("a", "eng"), ("b", "eng"), ("a", "fra")], target, title="t", size=(5, 3), dpi=60)
    assert png_size(target) == (300, 180)
    assert [p.name for p in tmp_path.iterdir()] == ["m.png"]  # no temporary file left behind
    plot.draw_heatmap(
        np.array([[0, 1.0], [1.0, 0]]), ["a$eng", "b$eng"], tmp_path / "h.png", title="t", size=(4, 4), dpi=50
    )
    assert png_size(tmp_path / "h.png") == (200, 200)
    with pytest.raises(UserError, match=r"\.png, \.svg or \.pdf"):
        plot.draw_map(xy, [("a", "eng"), ("b", "eng"), ("a", "fra")], tmp_path / "m.jpg", title="t")


# -- CLI -------------------------------------------------------------------------------------------------------
def test_cli_map_on_bank_and_run(tmp_path, capsys):
    synthetic_bank(tmp_path / "bank")
    rng = np.random.default_rng(9)
    ValueDistribution(cloud(rng.normal(size=16), 25, rng), [{}] * 25, manifest("cand", "eng")).save(
        tmp_path / "run" / "univar_x" / "univar_pvq_eng"
    )
    out, heat, js = tmp_path / "map.png", tmp_path / "heat.png", tmp_path / "map.json"
    assert (
        main(
            [
                "map",
                str(tmp_path / "run"),
                "--bank",
                str(tmp_path / "bank"),
                "-o",
                str(out),
                "--heatmap",
                str(heat),
                "--size",
                "6",
                "4.5",
                "--dpi",
                "80",
                "--json",
                str(js),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "10 model-language centroids (3 languages, 4 models), PCA, encoder fake" in text
    assert png_size(out) == (480, 360) and png_size(heat) == (480, 360)
    result = json.loads(js.read_text())
    labels = result["labels"]
    assert labels[0] == "alpha$eng" and "cand$eng" in labels and len(result["distances"]) == 10
    d = np.array(result["distances"])
    assert np.allclose(d, d.T) and np.allclose(np.diag(d), 0)
    # the known structure: the three models of a language sit together, far from other languages
    pts = {(p["model"], p["lang"]): np.array([p["x"], p["y"]]) for p in result["points"]}
    for lang in ("eng", "fra", "zho"):
        own = [pts[(m, lang)] for m in ("alpha", "beta", "gamma")]
        other = [pts[(m, lg)] for m in ("alpha", "beta", "gamma") for lg in ("eng", "fra", "zho") if lg != lang]
        within = max(np.linalg.norm(a - b) for a in own for b in own)
        between = min(np.linalg.norm(a - b) for a in own for b in other)
        assert within < between
    i, j = labels.index("alpha$eng"), labels.index("beta$eng")
    k = labels.index("alpha$fra")
    assert d[i, j] < d[i, k]  # same language closer than same model


def test_cli_map_default_size_and_errors(tmp_path, capsys):
    synthetic_bank(tmp_path / "bank", models=("alpha", "beta"), langs=("eng",))
    assert main(["map", "--bank", str(tmp_path / "bank"), "-o", str(tmp_path / "m.png")]) == 0
    assert png_size(tmp_path / "m.png") == (1200, 900)  # 8 x 6 inches at 150 dpi
    capsys.readouterr()
    assert main(["map", "-o", str(tmp_path / "x.png")]) == 2
    assert "nothing to draw" in capsys.readouterr().err
    assert main(["map", "--bank", str(tmp_path / "bank"), "--task-family", "wvs", "-o", str(tmp_path / "x.png")]) == 2
    assert "the inputs have: pvq" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


# -- issue 16, item 8: the map never exaggerates noise ---------------------------------------------------
def _lab(rgb):
    r = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ r
    f = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(f > 0.008856, np.cbrt(f), 7.787 * f + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_one_language_map_is_one_dimensional_and_says_so():
    from univar_eval.reports.plot import map_figure, project

    rng = np.random.default_rng(0)
    # three models, one language; the centroids differ along one direction only (PC2 explains ~0 %)
    direction = rng.normal(size=16)
    points = np.vstack([a * direction for a in (1.0, 1.0001, 3.0)])
    xy, labels = project(points)
    assert np.all(xy[:, 1] == 0) and labels[1].startswith("one dimension: PC2 explains 0.0%")
    fig = map_figure(xy, [("a", "eng"), ("b", "eng"), ("c", "eng")], title="t", axis_labels=labels)
    ax = fig.axes[0]
    assert "one language (eng): points differ by model only" in ax.get_title()
    assert list(ax.get_yticks()) == [] and ax.get_aspect() == 1.0


def test_axes_share_one_scale_so_noise_is_not_stretched():
    from univar_eval.reports.plot import map_figure

    xy = np.array([[-1.0, 0.0], [1.0, 0.02], [0.0, -0.02], [0.5, 0.01]])  # PC2 tiny but above the flat cut
    fig = map_figure(xy, [("a", "eng"), ("b", "eng"), ("a", "fra"), ("b", "fra")], title="t", size=(6, 6), dpi=80)
    ax = fig.axes[0]
    fig.canvas.draw()
    box = ax.get_window_extent()
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    assert (box.width / (x1 - x0)) == pytest.approx(box.height / (y1 - y0), rel=1e-3)  # pixels per unit


def test_model_markers_above_stars_and_labels_never_overlap():
    from univar_eval.reports.plot import map_figure

    langs = [f"l{i:02d}" for i in range(25)]
    keys = [(m, lg) for lg in langs for m in ("a", "b")]
    xy = np.random.default_rng(1).normal(scale=1e-3, size=(len(keys), 2)) + [[1.0, 1.0]]  # all centroids piled up
    fig = map_figure(xy, keys, title="t", size=(8, 6), dpi=80)
    ax = fig.axes[0]
    points = [c for c in ax.collections if len(c.get_sizes())]
    stars = [c for c in points if c.get_sizes()[0] == 260]  # the centroid stars are the big markers
    others = [c for c in points if c not in stars]
    assert len(stars) == 25 and len(others) == 50
    assert stars and min(c.get_zorder() for c in others) > max(c.get_zorder() for c in stars)
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in ax.texts]
    assert len(boxes) == 25
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_25_language_colours_are_distinguishable():
    from matplotlib.colors import to_rgb

    from univar_eval.reports.plot import _colours

    lab = np.array([_lab(np.array(to_rgb(c))) for c in _colours(25)])
    d = np.sqrt(((lab[:, None] - lab[None]) ** 2).sum(-1)) + np.eye(25) * 1e9
    assert d.min() >= 15  # CIE76: clearly different colours (the old hsv wheel had neighbours about 5 apart)


def test_heatmap_scale_starts_at_zero():
    from univar_eval.reports.plot import heatmap_figure

    m = np.array([[0.0, 0.30, 0.31], [0.30, 0.0, 0.32], [0.31, 0.32, 0.0]])
    image = heatmap_figure(m, ["a", "b", "c"], title="t").axes[0].images[0]
    assert image.norm.vmin == 0.0 and image.norm.vmax == pytest.approx(0.32)
