"""``information-loss``: Guan et al.'s information-based explanation of any layer of a HF model.

The theory is in ``docs/information.md``; the loss and its solvers in ``problem``,
``fixed_point`` and ``adam``; the regularisation in ``regularization``.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from textlens import progress
from textlens.adapters.base import ModelAdapter
from textlens.batch import TokenBatch
from textlens.errors import TextlensError
from textlens.lazy import torch
from textlens.methods.base import Scores
from textlens.methods.information.problem import (
    FLOOR_ABSOLUTE,
    Group,
    Result,
    Settings,
    head_logits,
    log_odds,
)
from textlens.methods.information.regularization import MIN_CORPUS, regularization
from textlens.methods.information.solve import optimize
from textlens.methods.layer_conductance import Layers, resolve_layers
from textlens.methods.registry import register
from textlens.methods.settings import setting
from textlens.targets import BoundTarget

HEAD_PHIS = ("logits", "log-odds")
"""The Phi read at the classifier's head (one per text, no layer)."""
HEAD_SAMPLES = 16
"""Noise samples per step on the head's output when ``n_samples`` is not given: on the demo
classifier's logits the fixed-point solver's answers then agree with a long Adam solve's (Spearman
median 0.91-0.99 on 6 test sentences, against 0.66-0.81 with 4 samples at the same settings)."""
DEEP = 12
"""Models with at most this many layers are explained at every layer by default."""
SPREAD = 8
"""Layers explained by default on deeper models."""
TYPICAL_ITERATIONS = 12
"""Iterations a (text, layer) usually takes with the default settings, for cost estimates: the
mean over layers of the median iterations on 48 test sentences of the demo classifier (6 to 31
by layer)."""

LOSS_CHUNK = 4
"""Noise samples a pass when the final loss is measured (``Problem.loss_at``)."""
COMPAT_MAX_STEPS = 5000
"""``max_steps`` when it is not given: the step cap, and the reference's fixed step count."""


class UnsettledWarning(UserWarning):
    """A (text, layer) ran to ``max_steps`` without settling."""


@register
@dataclass(frozen=True)
class InformationLoss:
    """Information-based importance (Guan et al., 2019): how much noise each word tolerates.

    For every chosen layer at once, learns sigma_i per token such that Phi (the layer's hidden
    states of all tokens, the first-token vector, or the logits) stays close to its clean value
    relative to each unit's spread over a corpus. Scores are ``-log sigma`` (larger = the word's
    information reaches Phi more); ``extras`` hold ``sigma``, ``information_nats``
    (H = K log sigma + K/2 log 2 pi e), ``loss`` at the returned sigma (the mean over 16 noise
    samples of its own stream) with its standard error ``loss_se``, ``log_sigma_se`` (each
    score's standard error, fixed-point solver), ``saturated`` (tokens whose sigma reached
    its bound, ``max_sigma``, and where the loss confirmed it: bringing the token back below
    the bound did not lower it; Phi keeps none of their information), ``settled`` (per layer:
    False where the solver stopped at ``max_steps`` before its own tolerance), ``reached_se``
    (per layer: the RMS standard error of log sigma it reached), ``steps`` and
    ``loss_curve``.

    Args:
        phi: ``hidden`` (a layer's hidden states, all tokens), ``cls`` (the first token's
            vector at a layer), ``logits`` (all of a classifier's logits), or ``log-odds``
            (the explained class's log p / (1 - p), or a causal LM's next token's at the last
            position, scaled by its spread over the corpus: only what moves the decision
            counts, and it does not flatten out as the prediction grows confident).
        layers: Layer numbers 0..n_layers for ``hidden`` / ``cls``, or ``"all"``. None = every
            layer of a model up to 12 layers deep, and 8 layers spread from the first to the
            last on deeper ones (each layer costs forward passes to its depth at every step).
        rate: Weight of the entropy term (the reference's default, 0.1).
        n_samples: Noise samples per step. None = 4 on hidden states and 16 on the head's
            output (``logits``, ``log-odds``): a few outputs that saturate give noisy
            estimates, and with 4 samples a word whose estimate dips to zero is pushed to the
            bound on sigma, so two seeds or two solvers disagree (``benchmarks/
            information_bounds.py``).
        solver: ``fixed-point`` (solves the optimum's condition sigma_i^2 = rate / (S a_i) with
            a_i estimated from the noise samples; see ``docs/information.md``) or ``adam``.
        lr: Adam learning rate on log sigma (``adam`` only).
        max_steps: Step cap; optimisation stops earlier when sigma has converged. None = 300,
            or the reference's 5000 with ``compat``.
        precision: When the fixed-point solver stops. ``ranking`` (default): the order of the
            tokens is settled, i.e. the expected Spearman correlation between the answer and
            the answer moved by its standard errors is at least ``1 - tol`` (default 0.03);
            sigma itself may be off by a few per cent. ``values``: each sigma is settled, i.e.
            the RMS standard error of log sigma is at most ``tol`` (default 0.004: sigma within
            about 0.8% at 95%, the paper's information within ``K x 0.008`` nats); on deep layers
            this takes tens to hundreds of iterations (``docs/information.md``).
        tol: Convergence (see ``precision``); ``adam``: RMS change of log sigma between two
            consecutive 10-step windows below ``tol`` (default 0.05). 0 runs every step up to
            ``max_steps``.
        init: ``closed-form`` (first-order start from random vector-Jacobian products) or
            ``constant``.
        corpus_size: Corpus texts used for the regularisation (the first ones).
        corpus: Texts like the ones explained, for the regularisation: a file (``.txt`` a line
            each, ``.jsonl`` / ``.csv`` with a ``text`` field) or ``"demo"`` (the packaged movie
            reviews). None: the texts of the run when there are at least 100 (``explain_many``,
            ``explain-file``; not for the demo classifier, trained on the packaged corpus),
            else the packaged corpus with a notice.
        spread: How the regularisation spreads Phi over the corpus (``hidden``): ``tokens``
            pools every real token's vector; ``sentence-means`` (the reference's, and what
            ``compat`` uses) first averages each sentence's vectors.
        noise_at: Where the noise goes: ``word-embeddings`` (the word table's rows, before
            position / token-type embeddings and the embedding norm) or ``embedding-output``
            (what the embedding module passes to the first block: the paper's and the
            reference's input of Phi, and what ``compat`` uses).
        max_sigma: Each token's largest sigma, as a multiple of the RMS value per dimension of
            its own input vector (10: noise with 100 times the vector's power drowns it). A
            token that reaches it is *saturated*: Phi keeps none of its information
            (``extras["saturated"]``; marked in every view). The bound keeps the loss
            well-posed where Phi saturates (a classifier's logits), where it would otherwise
            have no minimum.
        compat: Follow the reference implementation: sigma = scale * sigmoid(ratio) with
            scale 10 x std of the word embedding table, ratio ~ N(0, 1), one sample per step,
            lr 0.01, 5000 fixed steps, the lowest single-sample loss kept (Adam), and the
            ``sentence-means`` spread and the ``embedding-output`` input (its scale then 10 x
            the embedding output's spread).
        seed: Seeds the noise and the probes.

    References:
        Guan et al., 2019, https://proceedings.mlr.press/v97/guan19a.html
    """

    name: ClassVar[str] = "information-loss"
    backward: ClassVar[bool] = True
    encoder_decoder: ClassVar[bool] = False  # its spreads come from texts on their own
    signed: ClassVar[bool] = False
    layered: ClassVar[bool] = True
    score_label: ClassVar[str] = "-log sigma (higher = more important)"
    unit_reduce: ClassVar[str] = "max"  # a sum of log noise scales means nothing
    diagnostics: ClassVar[tuple[tuple[str, str], ...]] = (("steps", "optimiser steps per layer"),)
    cost_setting: ClassVar[str] = "max_steps"
    memory_setting: ClassVar[str] = "n_samples"
    corpus_setting: ClassVar[str] = "corpus"
    test_settings: ClassVar[dict[str, Any]] = {"max_steps": 30, "corpus_size": 20}
    # the class's logits; a two-unit Phi gives noisy estimates, so the iterations are capped
    # (benchmarks/information_logits.py: as faithful as 300 iterations, about half the time)
    # 4 samples: the comparison over 200 sentences at a quarter of the default's cost per step
    evaluation_settings: ClassVar[dict[str, Any]] = {
        "phi": "logits",
        "max_steps": 100,
        "n_samples": 4,
    }
    # sampled: batched equals one-at-a-time within its own noise; scores are -log sigma
    batch_tolerance: ClassVar[dict[str, float]] = {"rtol": 0.02, "atol": 0.0}
    stable_output: ClassVar[str] = "sigma"
    layer_measure: ClassVar[str] = "information_nats"
    """The per-token extra the layer analysis groups (a measure per layer and token)."""
    phi: Literal["hidden", "cls", "logits", "log-odds"] = "hidden"
    layers: Layers = None
    # the defaults are the solver's (problem.Settings): declared there once
    rate: float = setting(Settings.rate, low=0, low_open=True)
    n_samples: int | None = setting(None, low=1, cap=64)
    solver: Literal["fixed-point", "adam"] = Settings.solver
    precision: Literal["values", "ranking"] = Settings.precision
    lr: float = setting(Settings.lr, low=0, low_open=True)
    max_steps: int | None = setting(None, low=1, cap=2000)
    tol: float | None = setting(None, low=0)  # 0: never stop early (run max_steps)
    init: Literal["closed-form", "constant"] = Settings.init
    corpus_size: int = setting(500, low=MIN_CORPUS, cap=2000, unit="sentences")
    corpus: str | None = setting(None, local=True)
    spread: Literal["tokens", "sentence-means"] = "tokens"
    noise_at: Literal["word-embeddings", "embedding-output"] = "word-embeddings"
    max_sigma: float = setting(Settings.max_sigma, low=0, low_open=True)
    compat: bool = False
    seed: int = Settings.seed

    def settings(self, model: ModelAdapter) -> Settings:
        if not self.compat:
            return Settings(
                rate=self.rate,
                n_samples=self.samples,
                solver=self.solver,
                precision=self.precision,
                lr=self.lr,
                max_steps=Settings.max_steps if self.max_steps is None else self.max_steps,
                tol=self.tol,
                init=self.init,
                max_sigma=self.max_sigma,
                seed=self.seed,
            )
        return Settings(
            rate=self.rate,
            n_samples=1,
            solver="adam",
            lr=0.01,
            max_steps=COMPAT_MAX_STEPS if self.max_steps is None else self.max_steps,
            tol=0.0,
            init="constant",
            parameterization="bounded",
            scale=10 * model.embedding_spread(),
            keep_best=True,
            average_last=False,
            betas=(0.9, 0.999),
            seed=self.seed,
        )

    @property
    def samples(self) -> int:
        """Noise samples per step: ``n_samples``, or its default for this Phi."""
        if self.n_samples is not None:
            return self.n_samples
        return HEAD_SAMPLES if self.phi in HEAD_PHIS else Settings.n_samples

    @property
    def input_point(self) -> str:
        """Where the noise goes (``compat`` follows the reference: the embedding output)."""
        return "embedding-output" if self.compat else self.noise_at

    def memory_bytes(self, model: ModelAdapter, batch: TokenBatch) -> int:
        """Rough peak memory: every (text, layer)'s noise samples of a step, and the noisy
        copies of one group of texts of similar length run forward and back (``length_buckets``
        holds at most 16 texts)."""
        n, width = batch.input_ids.shape
        samples = self.samples if not self.compat else 1
        groups = len(self.chosen_layers(model))
        noise = 2 * n * groups * samples * width * model.embed_dim * 4  # draws, noisy inputs
        rows = min(n, 16) * max(samples, LOSS_CHUNK)
        return noise + model.activation_bytes(rows, width)

    def estimate_seconds(
        self, model: ModelAdapter, batch: TokenBatch, pass_seconds: float
    ) -> tuple[float, float]:
        """Expected and largest seconds for ``batch``, from one forward pass's ``pass_seconds``.

        Every iteration runs, for each layer, ``n_samples`` noisy copies of every text forward to
        that layer and back (about 3 forward passes' work); ``TYPICAL_ITERATIONS`` is the usual
        count, ``max_steps`` the most.
        """
        settings = self.settings(model)
        layers = self.chosen_layers(model)
        depth = sum(min(layer, model.n_layers) / model.n_layers for layer in layers)
        if self.phi in HEAD_PHIS:
            depth = 1.0
        per_iteration = 3.0 * pass_seconds * settings.n_samples * depth
        typical = min(TYPICAL_ITERATIONS, settings.max_steps)
        return per_iteration * typical, per_iteration * settings.max_steps

    def _what(self, layer: int) -> str:
        if self.phi in HEAD_PHIS:
            return "the logits" if self.phi == "logits" else "the log-odds"
        return f"layer {layer}"

    def _check_unsettled(
        self, result: Result, layers: Sequence[int], max_steps: int, n_texts: int
    ) -> None:
        """Warn when a layer ran to ``max_steps`` without settling, with the standard error it
        reached, and say whether saturated tokens kept it from settling."""
        capped = (
            ~result.settled if result.settled is not None else result.steps >= max_steps
        )  # (B, G)
        if self.tol == 0 or self.compat or not bool(capped.any()):
            return
        reached = _reached_se(result)
        where, stuck = [], 0
        saturated = result.saturated
        if saturated is None:
            saturated = torch.zeros_like(result.sigma, dtype=torch.bool)
        for g in torch.nonzero(capped.any(0)).flatten().tolist():
            at_bound = saturated[:, g]
            stuck += int((at_bound & capped[:, g].unsqueeze(-1)).sum())
            worst = reached[:, g][capped[:, g]]
            se = f", RMS standard error of log sigma {float(worst.max()):.3g}" if (
                self.precision == "values" and bool(torch.isfinite(worst).any())
            ) else ""  # fmt: skip
            where.append(
                f"{self._what(layers[g])} ({int(capped[:, g].sum())} of {n_texts} text(s){se})"
            )
        cause = (
            f"{stuck} token(s) kept growing to the largest sigma (Phi barely depends on them: "
            "saturated), so the answer never settled"
            if stuck
            else "the estimates stayed too noisy to settle the answer"
        )
        goal = (
            f" (the goal was {self.settings_tolerance():g}; extras['reached_se'] has each layer's)"
            if self.precision == "values"
            else ""
        )
        warnings.warn(
            f"max_steps={max_steps} reached without settling at {', '.join(where)}{goal}: "
            f"{cause}; the answer is the last iterate (extras['settled'] is False there)",
            UnsettledWarning,
            stacklevel=4,
        )

    def settings_tolerance(self) -> float:
        """The tolerance the solver stops at (``tol``, or its default)."""
        from textlens.methods.information.problem import DEFAULT_TOL

        if self.tol is not None:
            return self.tol
        return DEFAULT_TOL["adam" if self.solver == "adam" else self.precision]

    def explains(self, layers: Sequence[int]) -> str:
        """What Phi is, in words: the scores explain it, not the bound target."""
        if self.phi == "logits":
            return "all of the classifier's logits together (phi=logits), not one class"
        if self.phi == "log-odds":
            return "the log-odds of the explained class or token, log p / (1 - p) (phi=log-odds)"
        where = "every token's hidden state" if self.phi == "hidden" else "the first token's vector"
        return f"{where} at {layer_span(layers)} (phi={self.phi}), not the prediction"

    def chosen_layers(self, model: ModelAdapter) -> tuple[int, ...]:
        if self.phi in HEAD_PHIS:
            return (model.n_layers,)
        if isinstance(self.layers, tuple) and any(v < 0 for v in self.layers):
            raise TextlensError(f"layer numbers run from 0 to {model.n_layers}")
        return resolve_layers(self.layers, model.n_layers, default_layers(model.n_layers))

    def attribute(self, model: ModelAdapter, batch: TokenBatch, target: BoundTarget) -> Scores:
        layers = self.chosen_layers(model)
        spread = "sentence-means" if self.compat else self.spread
        scales = regularization(model, self.phi, self.corpus_size, self.corpus, spread)
        settings = self.settings(model)
        # texts of similar length run together, so little time goes into padding; every
        # (text, layer) has its own noise stream, so a grouping changes results only by float
        # rounding, which can still tip a token with a near-zero estimate towards the upper bound
        parts = []
        began = time.perf_counter()
        point = self.input_point  # compat: the reference's bound, 10 x the word table's std
        for rows in length_buckets(batch.lengths.tolist()):  # weights frozen by the pipeline
            sub = batch.select(rows)
            x = model.embed(sub).detach()
            word = None
            if point == "embedding-output":  # perturb what the embedding module puts out
                word = x
                every = torch.arange(len(rows), device=x.device)
                x = model.hidden_state_at(word, sub, every, 0).detach()
            classes = None
            if self.phi == "log-odds":
                if target.index is None:
                    raise TextlensError(
                        "phi='log-odds' needs a class or next-token target (a classifier's class, "
                        "a causal LM's token)"
                    )
                classes = target.index[torch.as_tensor(rows, device=target.index.device)]
            groups = [self._group(model, sub, layer, scales, word, classes) for layer in layers]

            def settled(g: int, k: int, n: int = len(rows)) -> None:
                spent = time.perf_counter() - began
                progress.say(
                    f"{self.name}: {self._what(layers[g])} settled after {k} iterations "
                    f"({n} text(s), {progress.duration(spent)} so far)"
                )

            result = optimize(groups, x, sub.real_mask, settings, keys=layers, on_settle=settled)
            self._check_unsettled(result, layers, settings.max_steps, len(rows))
            parts.append((rows, result))
        result = _merge(parts, len(batch), batch.input_ids.shape[1])
        log_sigma = torch.log(result.sigma).nan_to_num(0.0)
        reached = _reached_se(result)
        scores = (-log_sigma).masked_fill(~batch.real_mask.unsqueeze(1), 0.0)
        return Scores(
            scores,
            explains=self.explains(layers),
            axes=("batch", "layer", "token"),
            layers=layers if self.phi not in HEAD_PHIS else (model.n_layers,),
            extras={
                "sigma": result.sigma,
                "information_nats": result.information,
                "loss": result.loss,
                "loss_se": result.loss_se,
                **(
                    {"log_sigma_se": result.log_sigma_se} if result.log_sigma_se is not None else {}
                ),
                "saturated": result.saturated,
                "settled": result.settled,
                "reached_se": reached,
                "start_loss": result.start_loss,
                "steps": result.steps,
                "loss_curve": result.curve.permute(1, 2, 0),
            },
            extra_axes={
                "sigma": ("layer", "token"),
                "information_nats": ("layer", "token"),
                "loss": ("layer",),
                "loss_se": ("layer",),
                "log_sigma_se": ("layer", "token"),
                "saturated": ("layer", "token"),
                "settled": ("layer",),
                "reached_se": ("layer",),
                "start_loss": ("layer",),
                "steps": ("layer",),
                "loss_curve": ("layer", "step"),
            },
        )

    def _group(
        self,
        model: ModelAdapter,
        batch: TokenBatch,
        layer: int,
        scales: dict[int, torch.Tensor],
        word: torch.Tensor | None = None,
        classes: torch.Tensor | None = None,
    ) -> Group:
        """Phi at ``layer`` as a function of the perturbed input: the word embeddings, or, with
        ``word`` (the clean word embeddings) given, the embedding module's output. ``classes``:
        the explained class of each text (``log-odds``)."""
        group = self._phi(model, batch, layer, scales, classes)
        if word is None:
            return group

        def entered(xs: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            with model.entering_blocks(xs):
                return group.phi(word[rows], rows)

        return dataclasses.replace(group, phi=entered)

    def _phi(
        self,
        model: ModelAdapter,
        batch: TokenBatch,
        layer: int,
        scales: dict[int, torch.Tensor],
        classes: torch.Tensor | None = None,
    ) -> Group:
        scale = scales[layer if self.phi not in HEAD_PHIS else -1].to(batch.device)
        if float(scale.max()) <= FLOOR_ABSOLUTE * (1 + 1e-6):
            where = self._what(layer) if self.phi in HEAD_PHIS else f"{self.phi} at layer {layer}"
            raise TextlensError(
                f"Phi ({where}) is constant over the regularisation corpus: there is nothing to "
                "explain; choose another layer or phi"
            )
        real = batch.real_mask
        if self.phi == "logits":

            def phi(xs: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
                out = model.forward(xs, batch, rows)
                if getattr(out, "logits", None) is None or out.logits.dim() != 2:
                    raise TextlensError("phi='logits' needs a sequence classifier")
                return out.logits

            return Group(phi, scale)
        if self.phi == "log-odds" and classes is not None:
            chosen = classes.to(batch.device)

            def odds(xs: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
                out = model.forward(xs, batch, rows)
                c = chosen[rows]
                return (log_odds(head_logits(out, batch, rows).float(), c) / scale[c]).unsqueeze(1)

            return Group(odds, torch.ones((), dtype=scale.dtype, device=batch.device))

        def states(xs: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            return model.hidden_state_at(xs, batch, rows, layer)

        if self.phi == "cls":
            return Group(lambda xs, rows: states(xs, rows)[:, 0], scale)
        return Group(states, scale, out_mask=lambda rows: real[rows])


def default_layers(n_layers: int) -> tuple[int, ...]:
    """Every layer of a model up to ``DEEP`` layers; of a deeper one, ``SPREAD`` layers spread
    evenly from the first to the last (a layer costs a forward pass to its depth per step)."""
    if n_layers <= DEEP:
        return tuple(range(1, n_layers + 1))
    return tuple(sorted({round(1 + i * (n_layers - 1) / (SPREAD - 1)) for i in range(SPREAD)}))


def layer_span(layers: Sequence[int]) -> str:
    """``layer 3``, ``layers 0-6`` or ``layers 1, 3, 6``."""
    if len(layers) == 1:
        return f"layer {layers[0]}"
    if list(layers) == list(range(layers[0], layers[-1] + 1)):
        return f"layers {layers[0]}-{layers[-1]}"
    return "layers " + ", ".join(map(str, layers))


def length_buckets(lengths: Sequence[int], waste: float = 1.2, most: int = 16) -> list[list[int]]:
    """Rows grouped by length: padded tokens at most ``waste`` x the real ones, ``most`` rows."""
    buckets: list[list[int]] = []
    current: list[int] = []
    for row in sorted(range(len(lengths)), key=lambda i: (lengths[i], i)):
        grown = [*current, row]
        if current and (
            len(grown) > most or len(grown) * lengths[row] > waste * sum(lengths[i] for i in grown)
        ):
            buckets.append(current)
            grown = [row]
        current = grown
    return [*buckets, current] if current else buckets


def _merge(parts: list[tuple[list[int], Result]], n: int, width: int) -> Result:
    """One Result for the whole batch from the Results of its buckets (padding: NaN)."""
    first = parts[0][1]
    if len(parts) == 1 and parts[0][0] == list(range(n)) and first.sigma.shape[2] == width:
        return first
    n_groups = first.sigma.shape[1]
    n_steps = max(r.curve.shape[0] for _, r in parts)
    like = first.sigma
    sigma = torch.full((n, n_groups, width), math.nan, dtype=like.dtype, device=like.device)
    information = sigma.clone()
    loss = torch.full((n, n_groups), math.nan, dtype=like.dtype, device=like.device)
    start_loss, loss_se = loss.clone(), loss.clone()
    log_sigma_se = sigma.clone()
    saturated = torch.zeros((n, n_groups, width), dtype=torch.bool, device=like.device)
    settled = torch.ones((n, n_groups), dtype=torch.bool, device=like.device)
    steps = torch.zeros((n, n_groups), dtype=torch.long, device=like.device)
    curve = torch.full((n_steps, n, n_groups), math.nan, dtype=like.dtype, device=like.device)
    start: list[str] = [""] * (n * n_groups)
    for rows, r in parts:
        index = torch.tensor(rows, device=like.device)
        w = r.sigma.shape[2]
        sigma[index, :, :w] = r.sigma
        information[index, :, :w] = r.information
        loss[index], start_loss[index], steps[index] = r.loss, r.start_loss, r.steps
        if r.loss_se is not None:
            loss_se[index] = r.loss_se
        if r.log_sigma_se is not None:
            log_sigma_se[index, :, :w] = r.log_sigma_se
        if r.saturated is not None:
            saturated[index, :, :w] = r.saturated
        if r.settled is not None:
            settled[index] = r.settled
        curve[: r.curve.shape[0], index] = r.curve.to(curve.dtype)
        for i, row in enumerate(rows):
            start[row * n_groups : (row + 1) * n_groups] = r.start[
                i * n_groups : (i + 1) * n_groups
            ]
    return Result(
        sigma, information, loss, steps, start_loss, curve, start, loss_se, log_sigma_se,
        saturated, settled,
    )  # fmt: skip


def _reached_se(result: Result) -> torch.Tensor:
    """The RMS standard error of log sigma ``(B, G)`` each (text, layer) reached, over its
    tokens below the bound (NaN without standard errors: the Adam solver)."""
    se = result.log_sigma_se
    if se is None:
        return torch.full(result.loss.shape, math.nan, dtype=result.loss.dtype)
    counted = torch.isfinite(se)
    if result.saturated is not None:
        counted &= ~result.saturated
    total = se.nan_to_num(0.0, posinf=0.0).pow(2).masked_fill(~counted, 0.0).sum(-1)
    rms = (total / counted.sum(-1).clamp_min(1)).sqrt()
    return rms.masked_fill(counted.sum(-1) == 0, math.nan)
