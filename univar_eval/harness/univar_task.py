"""Step: lm-eval task. Value questionnaires as lm-eval generation tasks.

Every backend lm-eval supports (hf, vllm, OpenAI-compatible APIs, ...) answers
the questions; :class:`UniVaRTask` then turns the answers into a value
distribution at aggregation time, once per task: translate to English, format
``Q: ... A: ...``, embed, store the artifacts next to lm-eval's output, and
report counts, dispersion and (with a bank) distances to reference models.

In a run of several ranks (``accelerate launch -m lm_eval``), the translation and the embedding are
spread over the ranks before lm-eval gathers the results (``prepare``, see
:class:`~univar_eval.harness.task_base.TaskLevelTask`): the blocks of
:mod:`univar_eval.pipeline.shard`, so every answer is translated and embedded exactly as in one
process; rank 0 builds the distribution from the gathered blocks and writes it once.

The task YAMLs (``tasks/univar/``) name this class with
``class: !function univar_eval.harness.univar_task.UniVaRTask`` and load their questions
with ``custom_dataset: !function univar_eval.harness.univar_task.load_dataset``.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any

import numpy as np

from univar_eval.errors import UserError
from univar_eval.harness.task_base import TaskLevelTask, announce_artifacts, artifact_dir, run_model_name
from univar_eval.pipeline import questionnaire as questionnaire_mod
from univar_eval.pipeline.answers import TEXT_FORMAT
from univar_eval.pipeline.cache import cached_encode
from univar_eval.pipeline.embed import block_size, build_distribution
from univar_eval.pipeline.encoders import get_card, load_encoder
from univar_eval.pipeline.shard import SINGLE, World, current_world, from_main, grid, rank_device, run_blocks, together
from univar_eval.pipeline.translate import get_translator
from univar_eval.safe_text import terminal_text
from univar_eval.stats.dispersion import dispersion
from univar_eval.stats.references import reference_distances
from univar_eval.storage.bank import Bank
from univar_eval.storage.distribution import comparability_problem
from univar_eval.storage.hub import is_hub_spec, local_bank

log = logging.getLogger("univar_eval")

#: The fixed metrics, stated in the YAML (tasks/univar/_univar_template_yaml); with a bank, the distances
#: to its models are added in code (BANK_METRICS, and mmd@<reference> per model), since they depend on the bank.
BASE_METRICS = ("n_answers", "n_empty", "refusal_rate", "n_truncated", "n_encoder_truncated", "value_dispersion")
BANK_METRICS = {"nearest_distance": False, "nearest_reference": None}
_UNVERIFIED_SAID: set[str] = set()  # banks whose "not verified" warning was given in this process


def load_dataset(questionnaire: str | None = None, lang: str | None = None, **_metadata):
    """``custom_dataset`` for the questionnaire tasks: the questions as a ``test`` split."""
    import datasets

    q = questionnaire_mod.load(questionnaire, lang)
    docs = [
        {**r, "questionnaire": q.name, "questionnaire_version": q.version, "doc_index": i}
        for i, r in enumerate(q.records)
    ]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def answer_of(text: str) -> str:
    """The (English) answer of an embedded ``Q: <question> A: <answer>`` text: what follows the first
    " A: " (the questionnaires' questions hold none, which tests check; the answer may)."""
    head, sep, answer = text.partition(" A: ")
    return answer.strip() if sep and head.startswith("Q:") else text.strip()


def metric_name_for(reference: str) -> str:
    """lm-eval metric key for the distance to one reference model."""
    return "mmd@" + re.sub(r"[^\w.\-]+", "_", reference)


class UniVaRTask(TaskLevelTask):
    """A value questionnaire: generation, then a value distribution per task and language."""

    def configure(self, config: dict) -> None:
        kw = config.get("dataset_kwargs") or {}
        self.questionnaire = kw.get("questionnaire")
        self.lang = kw.get("lang")
        if is_hub_spec(self.settings.bank):  # hf://ORG/NAME@REV: pulled once into the cache, then a folder
            self.settings = dataclasses.replace(self.settings, bank=local_bank(self.settings.bank))
        self._references = self._bank_references(config["task"])
        self._check_models()
        self._verify_bank()
        announce_artifacts(artifact_dir(config["task"], self.settings, stamp=self.run_stamp).parent)

    def _check_models(self) -> None:
        """Load the encoder (and translator) now: a missing one fails in seconds, not after generation.

        Both are loaded once per process and reused at aggregation time; in a launch of several
        processes, each on its own GPU (``cuda:<LOCAL_RANK>``), where its share will be embedded.
        """
        try:
            device = rank_device(self.settings.encoder_device, current_world(init=False))
        except UserError:  # an incomplete launch environment: lm-eval's model says more about it
            device = self.settings.encoder_device
        self._device = device  # the same device (and loaded copy) when rank 0 embeds alone at aggregation
        try:
            load_encoder(self.settings.encoder, device=device)
        except UserError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure to load is the same news for the user
            raise UserError(f"encoder {self.settings.encoder!r} cannot be loaded ({_first_line(e)})") from None
        if self.lang and self.lang != "eng" and self.settings.translator not in (None, "", "none"):
            try:
                get_translator(self.settings.translator, device=device)._load()
            except Exception as e:  # noqa: BLE001
                raise UserError(
                    f"{_first_line(e)}; non-English tasks need a translator (or pass "
                    '--metadata \'{"translator": "none"}\' to embed the original text)'
                ) from None

    def check_before_generation(self, limit: int | None) -> None:
        super().check_before_generation(limit)
        n = limit * int(self.config.repeats or 1) if limit else None
        if n is not None and n < self.settings.min_answers:
            log.warning(
                "univar-eval: %s: --limit leaves %d answers, fewer than min_answers (%d): the task will have "
                "too few answers for a distance (lower min_answers, or raise --limit)",
                self.config.task,
                n,
                self.settings.min_answers,
            )

    def metric_names(self, config: dict) -> list[str]:
        return list(BASE_METRICS)

    def extra_metrics(self, config: dict) -> list[dict]:
        if not self.settings.bank:
            return []
        distances = [metric_name_for(r) for r in self._references]
        return [{"metric": n, "higher_is_better": h} for n, h in BANK_METRICS.items()] + [
            {"metric": n, "higher_is_better": False} for n in distances
        ]

    def doc_to_text(self, doc, doc_to_text=None):
        # A chat model gets the question alone (as in UniVaR); a base model gets a QA frame to continue.
        question = doc["question"].strip()
        return question if self._chat else f"Question: {question}\nAnswer:"

    def document_record(self, doc: dict, responses: list[str]) -> dict:
        return {
            "doc_index": doc["doc_index"],
            "id": doc["id"],
            "value": doc["value"],
            "higher_order": doc["higher_order"],
            "lang": doc["lang"],
            "question": doc["question"],
            "answers": responses,
        }

    def kept_answers(self, items: list[dict]) -> list[dict]:
        """One row per answer (every repeat), as ``answers.jsonl`` of a distribution has them."""
        records = []
        for item in items:
            for k, answer in enumerate(item["answers"]):
                records.append({**{k2: v for k2, v in item.items() if k2 != "answers"}, "repeat": k, "answer": answer})
        return records

    def pending_manifest(self) -> dict:
        return {"questionnaire": self.questionnaire, "lang": self.lang, "model": run_model_name(self.settings)}

    shares_work = True

    def prepare(self, items: list[dict], world: World):
        """Every rank: its share of the translation and embedding of all answers (the same blocks as one
        process) and of the answers embedded alone (``value_dispersion``); rank 0 gets the distribution,
        its counts and the dispersion, the others None."""
        together(lambda: self._load_models(world), world)  # a model missing on one node stops every rank
        dist, counts = together(lambda: self._distribution(items, world), world)
        spread = together(lambda: self._answer_dispersion(dist, world), world)
        return (dist, counts, spread) if world.is_main else None

    def _device_for(self, world: World) -> str | None:
        """The encoder's and translator's device: this rank's GPU when the ranks share the work, else the
        device they were loaded on before generation."""
        if world.distributed:
            return rank_device(self.settings.encoder_device, world)
        return getattr(self, "_device", self.settings.encoder_device)

    def _load_models(self, world: World) -> None:
        device = self._device_for(world)
        load_encoder(self.settings.encoder, device=device)
        translator = get_translator("none" if self.lang == "eng" else self.settings.translator, device=device)
        getattr(translator, "_load", lambda: None)()

    def _distribution(self, items: list[dict], world: World = SINGLE):
        settings = self.settings
        if not world.distributed:  # (build_distribution picks each rank's device itself)
            settings = dataclasses.replace(settings, encoder_device=self._device_for(world))
        return build_distribution(
            self.kept_answers(items),
            task=self.config.task,
            questionnaire=self.questionnaire,
            lang=self.lang,
            settings=settings,
            model=run_model_name(self.settings),
            world=world,
        )

    def analyse(self, items: list[dict]) -> dict:
        """Embed every answer once (or take what the ranks embedded), write the artifacts, compute the metrics."""
        shared = self.prepared(items)
        if shared is not None:
            dist, counts, spread = shared
        else:
            dist, counts = self._distribution(items)
            spread = self._answer_dispersion(dist)
        folder = artifact_dir(self.config.task, self.settings, stamp=self.run_stamp)
        dist.save(folder)
        log.info("univar-eval: %d value embeddings of %s written to %s", len(dist), self.config.task, folder)
        if counts["n_answers"] < self.settings.min_answers:
            log.warning(
                "univar-eval: %s has %d answers, fewer than min_answers (%d): its distances will be "
                "'insufficient' (was --limit too low?)",
                self.config.task,
                counts["n_answers"],
                self.settings.min_answers,
            )
        metrics: dict[str, Any] = {
            "n_answers": counts["n_answers"],
            "n_empty": counts["n_empty"],
            "refusal_rate": counts["n_refused"] / counts["n_answers"] if counts["n_answers"] else float("nan"),
            "n_truncated": counts.get("n_truncated", 0),
            "n_encoder_truncated": counts.get("n_encoder_truncated", 0),
            "value_dispersion": spread,
        }
        if self.settings.bank:
            metrics.update(self._bank_metrics(dist))
        return metrics

    def _answer_dispersion(self, dist, world: World = SINGLE) -> float:
        """``value_dispersion``: the spread of what the model said, the answers embedded alone (see
        :mod:`univar_eval.stats.dispersion`). Each distinct answer is embedded once (and cached), in the
        blocks of :mod:`~univar_eval.pipeline.shard`, spread over ``world`` (rank 0 holds ``dist``'s
        rows and gets the value; the other ranks embed their share and get NaN)."""
        answers = [answer_of(r["text"]) for r in dist.records]
        distinct = from_main(sorted(set(answers)), world)
        if len(distinct) < 2:
            return float("nan") if len(answers) < 2 else 0.0
        encoder = load_encoder(self.settings.encoder, device=self._device_for(world))

        def encode(block: list[str]) -> np.ndarray:
            return cached_encode(encoder, block, batch_size=self.settings.encoder_batch_size, progress=False)

        size = block_size(self.settings)
        if world.distributed:
            done = run_blocks(
                distinct,
                encode,
                block=size,
                world=world,
                label=f"embedding the answers of {self.config.task} alone",
                progress=False,
            )
            if done is None:
                return float("nan")
            blocks = done[0]
        else:
            blocks = [encode(distinct[start:stop]) for start, stop in grid(len(distinct), size)]
        vectors = np.vstack(blocks)
        index = {a: i for i, a in enumerate(distinct)}
        return dispersion(vectors[[index[a] for a in answers]])

    # -- reference bank ------------------------------------------------------------------------
    def _bank_references(self, task: str) -> list[str]:
        self._bank: Bank | None = None
        self._bank_entries: list[dict] = []
        if not self.settings.bank:
            return []

        # the bank as read now: its entries are verified before generation (_verify_bank) and the distances at
        # aggregation use this manifest, whose checksums every file read then must match (a file replaced during
        # generation is refused, never used unverified)
        bank = self._bank = Bank(self.settings.bank)
        entries = self._bank_entries = bank.entries(task=task)
        # What can be checked before any answer is generated (a mismatch found only after hours of
        # generation would waste them): the same rule as at aggregation, without the encoder
        # fingerprint, which needs the loaded encoder.
        planned = self._planned_manifest()
        held = (bank.encoder() or {}).get("name")
        if held and held != planned["encoder"]["name"]:  # a bank is one coordinate system, whatever its tasks
            raise UserError(
                f"bank {bank.path} is not comparable with this run: encoder differs (the bank holds {held} "
                f"embeddings, this run uses {planned['encoder']['name']}); pass --metadata "
                f'\'{{"encoder": "{held}"}}\' or use another bank'
            )
        for e in entries:
            problem = comparability_problem(planned, e, fingerprint=False)
            if problem:
                raise UserError(
                    f"bank entry {e['model']} / {task} in {bank.path} is not comparable with this run: "
                    f"{problem}; set the same encoder/translator, or rebuild the entry"
                )
        return sorted({e["model"] for e in entries})

    def _verify_bank(self) -> None:
        """Before generation (hours of it must not be spent against a forged bank): a sample of each bank entry this
        task compares with is translated and embedded again with the run's models, bypassing the caches, and
        checked against the bank (:mod:`univar_eval.pipeline.verify`; the run setting ``verify``, default 16
        answers an entry). Each entry is checked once per process, one log line each with its seed; a mismatch is
        a UserError, so the run stops here with exit 2 and one line."""
        from univar_eval.pipeline import verify

        if self._bank is None or not self._bank_entries:
            return
        n = verify.DEFAULT_SAMPLE if self.settings.verify is None else self.settings.verify
        if n == 0:
            if str(self._bank.path) not in _UNVERIFIED_SAID:  # once per bank, not once per task
                _UNVERIFIED_SAID.add(str(self._bank.path))
                log.warning(
                    "univar-eval: bank %s not verified (verify: 0); its embeddings are used unchecked",
                    terminal_text(str(self._bank.path)),
                )
            return
        translator = None
        if self.lang and self.lang != "eng" and self.settings.translator not in (None, "", "none"):
            translator = get_translator(self.settings.translator, device=self.settings.encoder_device)
        verify.verify_bank_entries_once(
            self._bank,
            self._bank_entries,
            n,
            device=self.settings.encoder_device,
            translator=translator,
            announce=lambda line: log.info("univar-eval: %s", terminal_text(line)),
        )

    def _planned_manifest(self) -> dict:
        """What the manifest of this task's distribution will say, as far as it is known before loading models."""
        card = get_card(self.settings.encoder)
        return {
            "encoder": {"name": card.name, "revision": card.revision},
            "questionnaire": self.questionnaire,
            "questionnaire_version": questionnaire_mod.load(self.questionnaire, self.lang).version
            if self.questionnaire
            else None,
            "lang": self.lang,
            "text_format": TEXT_FORMAT,
            "translator": {"name": "none"}
            if self.lang == "eng"
            else get_translator(self.settings.translator).describe(),
        }

    def _bank_metrics(self, dist) -> dict[str, Any]:
        # the metrics report distances only: no permutation test, no bootstrap behind them
        verified = getattr(self, "_bank", None)  # the manifest read (and verified) before generation
        bank = verified if verified is not None else self.settings.bank
        assert bank is not None  # only called with a bank setting
        try:
            result = reference_distances(
                dist,
                bank,
                min_answers=self.settings.min_answers,
                n_permutations=0,
                n_bootstrap=0,
            )
        except UserError as e:  # the distribution is saved already: only the distances are lost, and say why
            log.error(
                "univar-eval: %s: distances to the bank not computed (%s); the answers and their embeddings are saved",
                self.config.task,
                terminal_text(str(e).splitlines()[0] if str(e) else type(e).__name__),
            )
            return {
                **{metric_name_for(ref): float("nan") for ref in self._references},
                "nearest_reference": "error",
                "nearest_distance": float("nan"),
            }
        metrics: dict[str, Any] = {metric_name_for(ref): r["distance"] for ref, r in result["references"].items()}
        metrics["nearest_reference"] = result["nearest"] or result.get("status", "none")
        metrics["nearest_distance"] = (
            result["references"][result["nearest"]]["distance"] if result["nearest"] else float("nan")
        )
        return metrics
