"""``TorchClassifier``: a torch module as a scikit-learn classifier, with ``embed``, snapshots and dropout passes.

``__init__`` only stores parameters (so ``clone``, ``get_params`` and
``set_params`` work as for any estimator); ``fit`` builds the module from
its factory under the seed, checks its output width against the classes and
trains it. Prediction runs ``predict_batch_size`` rows at a time, so memory is
bounded whatever the number of rows; the engines already hand it the pool a
chunk at a time.

Determinism: with ``device="cpu"`` the same ``random_state`` gives the same
weights and the same probabilities twice (seeded initialisation, a seeded
shuffling generator, ``torch.use_deterministic_algorithms`` while fitting).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
import time

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from torch import nn

from activemine.errors import InputError

__all__ = [
    "AUGMENTATIONS",
    "DEVICES",
    "LOSSES",
    "SCHEDULES",
    "TorchClassifier",
    "check_device",
    "infer_input_shape",
    "learning_rate_at",
    "resolve_device",
]

DEVICES = ("cpu", "cuda", "auto")
#: ``ce``: cross-entropy. ``gce``: generalized cross-entropy ``(1 - p_y^q) / q`` (Zhang and Sabuncu, 2018), which
#: bounds the loss of a sample the network cannot fit, so a wrong label pulls less than under cross-entropy.
#: Its gradient is the cross-entropy's times ``p_y^q``, small while every probability is small, so the first
#: ``warmup_epochs`` train with cross-entropy: from scratch, 4 epochs of GCE alone left a shirt-vs-rest
#: network predicting the majority class (AUC 0.51).
LOSSES = ("ce", "gce")
#: The learning rate over the run, stepped after every batch. ``onecycle``: up from ``lr / 25`` to ``lr`` over the
#: first ``warmup_fraction`` of the steps, then a cosine down to about 0 (``lr / 2.5e5``), with Adam's beta1 cycled
#: the other way (0.95 -> 0.85 -> 0.95; Smith and Topin, 2018; ``torch.optim.lr_scheduler.OneCycleLR``).
#: ``cosine``: a linear warm-up from 0 over ``warmup_fraction`` of the steps, then a cosine down to 0.
#: ``constant``: ``lr`` throughout. A run that ends at a high constant rate ends wherever its last batches left
#: it; decaying to about 0 lets the weights settle.
SCHEDULES = ("onecycle", "cosine", "constant")
#: Training-time augmentation of image rows (``input_shape`` ``(C, H, W)``), drawn from the seed. ``shift``: every
#: row moved by up to ``max_shift`` pixels in each direction (zero padding), which suits most images; ``flip``: a
#: mirror image (left-right) for half the rows, which is wrong where the mirror changes the class (digits, text),
#: so never on by default; ``shift+flip``: both; ``none``. Rows that are not images are not augmented.
AUGMENTATIONS = ("shift", "flip", "shift+flip", "none")


def check_device(device: str) -> str:
    """``device`` checked: one of :data:`DEVICES`; ``"cuda"`` needs a GPU torch can see. Returns it unchanged."""
    if device not in DEVICES:
        raise InputError(f"device must be one of {list(DEVICES)}, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError(
            "device 'cuda' was asked for but torch sees no GPU (torch.cuda.is_available() is False); "
            "use --device cpu or auto"
        )
    return device


def resolve_device(device: str) -> torch.device:
    """The torch device ``device`` names; ``"auto"`` is the GPU when there is one, else the CPU."""
    check_device(device)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def infer_input_shape(n_features: int) -> tuple[int, ...]:
    """The image shape of ``n_features`` flattened values: ``(1, s, s)`` when it is a square, ``(3, s, s)`` when
    a third of it is, else ``(n_features,)`` (a flat vector)."""
    s = math.isqrt(n_features)
    if s * s == n_features:
        return (1, s, s)
    if n_features % 3 == 0:
        s = math.isqrt(n_features // 3)
        if 3 * s * s == n_features:
            return (3, s, s)
    return (int(n_features),)


def learning_rate_at(
    schedule: str, lr: float, step: int, total: int, warmup_fraction: float
) -> tuple[float, float | None]:
    """The learning rate and Adam's beta1 (None: left as it is) at training step ``step`` of ``total`` (0-based),
    under ``schedule`` (one of :data:`SCHEDULES`) peaking at ``lr``."""
    if schedule == "constant":
        return lr, None
    if schedule == "cosine":
        warm = max(1, round(warmup_fraction * total))
        if step < warm:
            return lr * (step + 1) / warm, None
        done = (step - warm) / max(1, total - warm)
        return lr * 0.5 * (1 + math.cos(math.pi * min(done, 1.0))), None
    # onecycle: torch.optim.lr_scheduler.OneCycleLR's steps (div_factor 25, final_div_factor 1e4, cosine anneal,
    # beta1 between 0.85 and 0.95)
    start, low = lr / 25, lr / 25 / 1e4

    def anneal(a: float, b: float, pct: float) -> float:
        return b + (a - b) / 2 * (1 + math.cos(math.pi * min(max(pct, 0.0), 1.0)))

    peak = warmup_fraction * total - 1
    if step <= peak:
        pct = step / peak if peak > 0 else 1.0
        return anneal(start, lr, pct), anneal(0.95, 0.85, pct)
    pct = (step - peak) / (total - 1 - peak) if total - 1 > peak else 1.0
    return anneal(lr, low, pct), anneal(0.85, 0.95, pct)


def _call_factory(factory, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """``factory(input_shape=..., n_classes=...)``, passing only the arguments it takes."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin or C callable: give it both
        params = {"input_shape": None, "n_classes": None}
    kwargs = {}
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if "input_shape" in params or var_kw:
        kwargs["input_shape"] = input_shape
    if "n_classes" in params or var_kw:
        kwargs["n_classes"] = n_classes
    module = factory(**kwargs)
    if not isinstance(module, nn.Module):
        raise InputError(f"the module factory {_name(factory)} returned {type(module).__name__}, not a torch.nn.Module")
    return module


def _name(factory) -> str:
    return getattr(factory, "__qualname__", None) or type(factory).__name__


@contextlib.contextmanager
def _torch_settings(threads: int, deterministic: bool):
    """torch's thread count and determinism for one call, restored afterwards (they are process-wide)."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    if deterministic:
        torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)


class TorchClassifier(ClassifierMixin, BaseEstimator):
    """A torch module trained and used as a scikit-learn classifier.

    Parameters
    ----------
    module : a factory of the network, called as ``module(input_shape=..., n_classes=...)`` with the
        arguments it accepts (a ``torch.nn.Module`` subclass works too); it must return logits
        ``(n, n_classes)``. None: :func:`activemine.deep.small_cnn`.
    input_shape : the shape one row is reshaped to before the network sees it, e.g. ``(1, 28, 28)``;
        None infers it from the number of features (:func:`infer_input_shape`).
    epochs, batch_size, lr, weight_decay : training (AdamW: ``weight_decay`` is decoupled from the gradient,
        Loshchilov and Hutter, 2019; ``lr`` is the peak learning rate of the schedule).
    schedule, warmup_fraction : the learning rate over the run, one of :data:`SCHEDULES`; the warm-up's share
        of the training steps (``onecycle`` and ``cosine``).
    augment, max_shift : training-time augmentation of image rows, one of :data:`AUGMENTATIONS`; the largest
        shift in pixels.
    loss : ``"ce"`` or ``"gce"`` (noise-robust, see :data:`LOSSES`), with ``gce_q``; with ``"gce"`` the first
        ``warmup_epochs`` use cross-entropy.
    device : ``"cpu"``, ``"cuda"`` or ``"auto"``.
    n_jobs : torch threads (None = torch's default).
    random_state : seed of the initial weights, the shuffling and dropout.
    snapshot_epochs : epochs after which a copy of the weights is kept; :meth:`snapshot` returns
        that network as a model of its own (an early-epoch weak model at no extra fit).
    predict_batch_size : rows per forward pass when predicting (bounds memory).

    Attributes after ``fit``: ``classes_``, ``module_``, ``input_shape_``, ``epochs_run_``,
    ``fit_seconds_``, ``snapshots_`` (epoch -> weights on the CPU).
    """

    def __init__(
        self,
        module=None,
        *,
        input_shape=None,
        epochs: int = 8,
        batch_size: int = 64,
        lr: float = 5e-3,
        weight_decay: float = 0.0,
        schedule: str = "onecycle",
        warmup_fraction: float = 0.3,
        augment: str = "none",
        max_shift: int = 2,
        loss: str = "ce",
        gce_q: float = 0.4,
        warmup_epochs: int = 1,
        device: str = "cpu",
        n_jobs: int | None = None,
        random_state: int | None = 0,
        snapshot_epochs=(),
        predict_batch_size: int = 1024,
    ):
        self.module = module
        self.input_shape = input_shape
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.warmup_fraction = warmup_fraction
        self.augment = augment
        self.max_shift = max_shift
        self.loss = loss
        self.gce_q = gce_q
        self.warmup_epochs = warmup_epochs
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.snapshot_epochs = snapshot_epochs
        self.predict_batch_size = predict_batch_size

    # -- checks ----------------------------------------------------------------------
    def check_params(self) -> None:
        """Raise :class:`InputError` naming the first bad parameter (``fit`` calls it before any work)."""
        for name in ("epochs", "batch_size", "predict_batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}")
        if not self.lr > 0:
            raise InputError(f"lr must be positive, got {self.lr!r}")
        if not self.weight_decay >= 0:
            raise InputError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.schedule not in SCHEDULES:
            raise InputError(f"schedule must be one of {list(SCHEDULES)}, got {self.schedule!r}")
        if not 0 < self.warmup_fraction < 1:
            raise InputError(f"warmup_fraction must be in (0, 1), got {self.warmup_fraction!r}")
        if self.augment not in AUGMENTATIONS:
            raise InputError(
                f"augment must be one of {list(AUGMENTATIONS)}, got {self.augment!r} "
                "('flip' mirrors images left-right: only where a mirror image keeps its class)"
            )
        if isinstance(self.max_shift, bool) or int(self.max_shift) != self.max_shift or self.max_shift < 0:
            raise InputError(f"max_shift must be an integer >= 0 (pixels), got {self.max_shift!r}")
        if self.loss not in LOSSES:
            raise InputError(f"loss must be one of {list(LOSSES)}, got {self.loss!r}")
        if not 0 < self.gce_q <= 1:
            raise InputError(f"gce_q must be in (0, 1], got {self.gce_q!r}")
        if (
            isinstance(self.warmup_epochs, bool)
            or int(self.warmup_epochs) != self.warmup_epochs
            or self.warmup_epochs < 0
        ):
            raise InputError(f"warmup_epochs must be an integer >= 0, got {self.warmup_epochs!r}")
        check_device(self.device)
        if self.n_jobs is not None and (
            isinstance(self.n_jobs, bool) or int(self.n_jobs) != self.n_jobs or self.n_jobs < 1
        ):
            raise InputError(f"n_jobs must be a positive integer (torch threads) or None, got {self.n_jobs!r}")
        bad = [e for e in self.snapshot_epochs if int(e) != e or not 1 <= e <= self.epochs]
        if bad:
            raise InputError(f"snapshot_epochs must be epochs 1..{self.epochs}, got {list(self.snapshot_epochs)}")
        if self.module is not None and not callable(self.module):
            raise InputError(f"module must be a factory of a torch.nn.Module, got {type(self.module).__name__}")

    def _seed(self) -> int:
        return 0 if self.random_state is None else int(self.random_state)

    def _threads(self) -> int:
        # None: torch's own thread count (activemine.models.make_model passes the CPUs available explicitly)
        return torch.get_num_threads() if self.n_jobs is None else int(self.n_jobs)

    def _build(self, n_features: int, n_classes: int) -> nn.Module:
        shape = infer_input_shape(n_features) if self.input_shape is None else tuple(int(s) for s in self.input_shape)
        if math.prod(shape) != n_features:
            raise InputError(f"input_shape {shape} holds {math.prod(shape)} values but the rows have {n_features}")
        self.input_shape_ = shape
        if self.module is None:
            if len(shape) != 3:
                raise InputError(
                    f"the default CNN needs image rows (C*H*W values); {n_features} features are not a square image; "
                    "give input_shape or a module"
                )
            from activemine.deep.networks import small_cnn

            factory = small_cnn
        else:
            factory = self.module
        torch.manual_seed(self._seed())
        return _call_factory(factory, shape, n_classes)

    def _check_output(self, module: nn.Module, X: np.ndarray, n_classes: int) -> None:
        """A forward pass of two rows: the network must give ``(2, n_classes)`` (before any training)."""
        module.eval()
        with torch.no_grad():
            out = module(self._tensor(X[:2]))
        if out.ndim != 2 or out.shape[1] != n_classes:
            raise InputError(
                f"the network's output has shape {tuple(out.shape)} for 2 rows; expected (2, {n_classes}): "
                f"one logit per class of {self.classes_.tolist()}"
            )

    def _tensor(self, X) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        return x.reshape((x.shape[0], *self.input_shape_)).to(self.device_)

    # -- fitting ---------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None) -> TorchClassifier:
        """Train on ``X`` ``(n, d)`` float and labels ``y`` ``(n,)``; ``sample_weight`` ``(n,)`` weighs each row's loss."""
        self.check_params()
        X = np.asarray(X)
        y = np.asarray(y)
        if X.ndim != 2 or X.shape[0] != y.shape[0]:
            raise InputError(f"X must be (n, d) with one row per label; got X {X.shape} and y {y.shape}")
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if self.classes_.size < 2:
            raise InputError(f"a classifier needs at least two classes, got only {self.classes_.tolist()}")
        weight = np.ones(y.size) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if weight.shape != y.shape or not np.all(np.isfinite(weight)) or weight.min() < 0:
            raise InputError(f"sample_weight must be ({y.size},) finite and non-negative, got shape {weight.shape}")
        started = time.perf_counter()
        self.device_ = resolve_device(self.device)
        k = self.classes_.size
        with _torch_settings(self._threads(), deterministic=self.device_.type == "cpu"):
            module = self._build(X.shape[1], k).to(self.device_)
            self._check_output(module, X, k)
            self.module_ = module
            self.snapshots_ = {}
            self._train(X, y_idx, weight)
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _loss(self, logits: torch.Tensor, target: torch.Tensor, epoch: int) -> torch.Tensor:
        """Per-row loss ``(b,)`` in ``epoch`` (1-based)."""
        if self.loss == "gce" and epoch > self.warmup_epochs:
            p = torch.softmax(logits, dim=1).gather(1, target[:, None])[:, 0].clamp_min(1e-7)
            return (1.0 - p**self.gce_q) / self.gce_q
        return nn.functional.cross_entropy(logits, target, reduction="none")

    def _augmented(self, xb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """A batch ``(b, C, H, W)`` shifted and/or mirrored as :attr:`augment` says, the draws from ``gen``."""
        if self.augment == "none" or xb.ndim != 4:
            return xb
        b = xb.shape[0]
        if "flip" in self.augment:
            flip = (torch.rand(b, generator=gen) < 0.5).to(xb.device)
            xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
        s = int(self.max_shift)
        if "shift" in self.augment and s > 0:
            h, w = xb.shape[-2:]
            moves = torch.randint(0, 2 * s + 1, (b, 2), generator=gen)
            codes = moves[:, 0] * (2 * s + 1) + moves[:, 1]
            padded = nn.functional.pad(xb, (s, s, s, s))
            out = torch.empty_like(xb)
            for code in torch.unique(codes).tolist():
                dy, dx = divmod(code, 2 * s + 1)
                rows = (codes == code).nonzero()[:, 0].to(xb.device)
                out[rows] = padded[rows, :, dy : dy + h, dx : dx + w]
            xb = out
        return xb

    def _train(self, X: np.ndarray, y_idx: np.ndarray, weight: np.ndarray) -> None:
        module = self.module_
        opt = torch.optim.AdamW(module.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        gen = torch.Generator().manual_seed(self._seed() + 1)
        # augmentation draws from a generator of its own, so the order of the rows is the same with or without it
        aug_gen = torch.Generator().manual_seed(self._seed() + 2)
        targets = torch.from_numpy(y_idx.astype(np.int64))
        weights = torch.from_numpy(weight.astype(np.float32))
        keep = {int(e) for e in self.snapshot_epochs}
        n = X.shape[0]
        size = int(self.batch_size)
        total = int(self.epochs) * math.ceil(n / size)
        step = 0
        self.epochs_run_ = 0
        for epoch in range(1, int(self.epochs) + 1):
            module.train()
            order = torch.randperm(n, generator=gen).numpy()
            for start in range(0, n, size):
                lr, beta1 = learning_rate_at(self.schedule, float(self.lr), step, total, float(self.warmup_fraction))
                step += 1
                rows = np.sort(order[start : start + size])
                if rows.size < 2 and n >= 2:  # one-row batches break batch normalisation
                    continue
                xb = self._augmented(self._tensor(X[rows]), aug_gen)
                tb = targets[rows].to(self.device_)
                wb = weights[rows].to(self.device_)
                total_weight = wb.sum()
                if total_weight <= 0:
                    continue
                for group in opt.param_groups:
                    group["lr"] = lr
                    if beta1 is not None:
                        group["betas"] = (beta1, group["betas"][1])
                loss = (self._loss(module(xb), tb, epoch) * wb).sum() / total_weight
                opt.zero_grad()
                loss.backward()
                opt.step()
            self.epochs_run_ = epoch
            if epoch in keep:
                self.snapshots_[epoch] = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}

    # -- prediction ------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise InputError("this TorchClassifier is not fitted yet; call fit first")

    def _batches(self, X):
        n = X.shape[0]
        step = int(self.predict_batch_size)
        for start in range(0, n, step):
            yield self._tensor(X[start : start + step])

    def _forward_all(self, X, fn) -> np.ndarray:
        self._check_fitted()
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != math.prod(self.input_shape_):
            raise InputError(f"X must be (n, {math.prod(self.input_shape_)}), got {X.shape}")
        self.module_.eval()
        parts = []
        with _torch_settings(self._threads(), deterministic=False), torch.no_grad():
            for xb in self._batches(X):
                parts.append(fn(xb).double().cpu().numpy())
        if not parts:
            return np.zeros((0, self.classes_.size))
        return np.concatenate(parts)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(n, k)`` in the order of ``classes_``, ``predict_batch_size`` rows at a time."""
        return self._forward_all(X, lambda xb: torch.softmax(self.module_(xb), dim=1))

    def predict(self, X) -> np.ndarray:
        """The most probable class of every row ``(n,)``."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def embed(self, X) -> np.ndarray:
        """Penultimate-layer activations ``(n, e)``: the input of the network's last linear layer."""
        self._check_fitted()
        last = [m for m in self.module_.modules() if isinstance(m, nn.Linear)]
        if not last:
            raise InputError("the network has no linear layer; its penultimate layer cannot be found")
        seen = []
        handle = last[-1].register_forward_pre_hook(lambda mod, args: seen.append(args[0].flatten(1)))
        try:

            def run(xb):
                seen.clear()
                self.module_(xb)
                return seen[-1]

            return self._forward_all(X, run)
        finally:
            handle.remove()

    def predict_proba_passes(self, X, n_passes: int = 3, *, random_state: int = 0) -> np.ndarray:
        """Dropout passes as a committee: ``(n_passes, n, k)`` probabilities.

        Pass ``p`` keeps one dropout mask per layer, drawn from ``(random_state, p)``, for every row: each
        pass is one thinned network, so a row's probabilities do not depend on the rows predicted with it
        (chunk size cannot change a selection). A network without dropout layers gives identical passes.
        """
        if isinstance(n_passes, bool) or int(n_passes) != n_passes or n_passes < 1:
            raise InputError(f"n_passes must be a positive integer, got {n_passes!r}")
        self._check_fitted()
        drops = [m for m in self.module_.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
        out = []
        for p in range(int(n_passes)):
            masks: dict[int, torch.Tensor] = {}

            def hook(mod, args, output, _index=None, _pass=p):
                i = _index
                if i not in masks:
                    gen = torch.Generator().manual_seed(int(random_state) * 1_000_003 + _pass * 1009 + i)
                    keep = torch.rand(output.shape[1:], generator=gen) >= mod.p
                    masks[i] = (keep.float() / (1.0 - mod.p)).to(output.device)
                return output * masks[i]

            handles = [
                d.register_forward_hook(lambda m, a, o, _i=i: hook(m, a, o, _index=_i)) for i, d in enumerate(drops)
            ]
            try:
                out.append(self.predict_proba(X))
            finally:
                for h in handles:
                    h.remove()
        return np.stack(out)

    def snapshot(self, epoch: int) -> TorchClassifier:
        """The network as it was after ``epoch`` (one of ``snapshot_epochs``), as a fitted model of its own."""
        self._check_fitted()
        if epoch not in self.snapshots_:
            raise InputError(f"no snapshot of epoch {epoch!r}; kept: {sorted(self.snapshots_)} (set snapshot_epochs)")
        other = copy.copy(self)
        other.module_ = copy.deepcopy(self.module_)
        other.module_.load_state_dict(self.snapshots_[epoch])
        other.snapshots_ = {}
        other.epochs_run_ = epoch
        return other

    def __getstate__(self):
        state = dict(self.__dict__)
        if "device_" in state:
            state["device_"] = str(state["device_"])
        return state

    def __setstate__(self, state):
        if "device_" in state:
            state["device_"] = torch.device(state["device_"])
        self.__dict__.update(state)
