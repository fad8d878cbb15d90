"""Networks as models: TorchClassifier, --model cnn / module:factory, and the network side of HW and QBC."""

import sys
import textwrap

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch")

from activemine.cli import app  # noqa: E402
from activemine.data import LabeledSet, PoolChunk  # noqa: E402
from activemine.deep import TorchClassifier, infer_input_shape  # noqa: E402
from activemine.engines.mining import mine  # noqa: E402
from activemine.errors import InputError  # noqa: E402
from activemine.models import make_model, network_options  # noqa: E402
from activemine.selection.strategies import make_strategy  # noqa: E402

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output + (getattr(result, "stderr", "") or "")


@pytest.fixture(scope="module")
def digits():
    from activemine.data.datasets import load_dataset

    d = load_dataset("digits")
    X = np.asarray(d.X_train, dtype=np.float32)
    return X / X.max(), np.asarray(d.y_train)


def tiny(**kw):
    return TorchClassifier(**{"epochs": 2, "batch_size": 64, "n_jobs": 1, "random_state": 0, **kw})


def test_infer_input_shape():
    assert infer_input_shape(784) == (1, 28, 28)
    assert infer_input_shape(3 * 32 * 32) == (3, 32, 32)
    assert infer_input_shape(10) == (10,)


def test_fit_predict_and_clone_like_any_estimator(digits):
    from sklearn.base import clone

    X, y = digits
    names = np.array(list("abcdefghij"))[y]  # string labels come back as classes_
    model = tiny()
    other = clone(model).set_params(epochs=1)
    assert other.get_params()["epochs"] == 1 and model.epochs == 2
    model.fit(X[:600], names[:600])
    proba = model.predict_proba(X[600:700])
    assert proba.shape == (100, 10) and np.allclose(proba.sum(axis=1), 1)
    assert list(model.classes_) == list("abcdefghij")
    assert (model.predict(X[600:900]) == names[600:900]).mean() > 0.5  # it learned something in 2 epochs
    assert model.embed(X[:5]).shape == (5, 128)


def test_same_seed_same_network_and_chunk_size_changes_nothing(digits):
    X, y = digits
    a = tiny().fit(X[:400], y[:400]).predict_proba(X[400:500])
    b_model = tiny(predict_batch_size=7).fit(X[:400], y[:400])
    assert np.array_equal(a, tiny().fit(X[:400], y[:400]).predict_proba(X[400:500]))
    # another batch size changes the float32 arithmetic by rounding only
    np.testing.assert_allclose(a, b_model.predict_proba(X[400:500]), rtol=0, atol=1e-6)
    c = tiny(random_state=1).fit(X[:400], y[:400]).predict_proba(X[400:500])
    assert not np.allclose(a, c)


def test_dropout_passes_are_seeded_per_pass_and_do_not_depend_on_the_chunk(digits):
    X, y = digits
    model = tiny().fit(X[:400], y[:400])
    whole = model.predict_proba_passes(X[400:460], 3, random_state=5)
    assert whole.shape == (3, 60, 10)
    assert not np.allclose(whole[0], whole[1])  # each pass is another thinned network
    parts = np.concatenate(
        [
            model.predict_proba_passes(X[400:430], 3, random_state=5),
            model.predict_proba_passes(X[430:460], 3, random_state=5),
        ],
        axis=1,
    )
    np.testing.assert_allclose(whole, parts, rtol=1e-5, atol=1e-6)


def test_snapshot_is_the_network_after_that_epoch(digits):
    X, y = digits
    # with a constant rate the first epoch of two is a one-epoch run (a schedule spans the whole run)
    model = tiny(snapshot_epochs=(1,), schedule="constant").fit(X[:400], y[:400])
    one = tiny(epochs=1, schedule="constant").fit(X[:400], y[:400])
    np.testing.assert_allclose(model.snapshot(1).predict_proba(X[:50]), one.predict_proba(X[:50]), atol=1e-6)
    with pytest.raises(InputError, match="no snapshot of epoch 2"):
        model.snapshot(2)


def test_gce_loss_trains(digits):
    X, y = digits
    model = tiny(loss="gce", epochs=3).fit(X[:600], y[:600])
    assert (model.predict(X[600:900]) == y[600:900]).mean() > 0.3


def test_network_whose_output_is_not_the_classes_fails_before_training(digits):
    X, y = digits
    model = tiny(module=lambda input_shape: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3)))
    with pytest.raises(InputError, match=r"expected \(2, 10\)"):
        model.fit(X[:200], y[:200])
    assert not hasattr(model, "epochs_run_")  # no epoch ran


def test_cuda_without_a_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InputError, match="device 'cuda'.*no GPU"):
        network_options("cnn", device="cuda")
    assert network_options("cnn", device="auto").device == "auto"


def test_network_options_are_for_networks_only():
    with pytest.raises(InputError, match="--epochs apply to a network model"):
        network_options("lightgbm", epochs=3)
    assert network_options("lightgbm") == "lightgbm"


def test_factories_a_network_an_estimator_and_one_that_does_not_import(tmp_path, monkeypatch):
    (tmp_path / "usernets.py").write_text(
        textwrap.dedent(
            """
            import torch
            from sklearn.linear_model import LogisticRegression

            def mlp(input_shape, n_classes):
                d = 1
                for s in input_shape:
                    d *= s
                return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(d, 16), torch.nn.ReLU(),
                                           torch.nn.Linear(16, n_classes))

            def logreg():
                return LogisticRegression(max_iter=200)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert isinstance(network_options("usernets:mlp", epochs=1), TorchClassifier)
    assert type(make_model("usernets:logreg")).__name__ == "LogisticRegression"
    with pytest.raises(InputError, match="cannot import module 'no_such_module'"):
        network_options("no_such_module:net")
    with pytest.raises(InputError, match="has no 'nothing'"):
        network_options("usernets:nothing")
    sys.modules.pop("usernets", None)


def test_hw_weak_model_is_an_early_snapshot_and_qbc_takes_dropout_passes(digits):
    X, y = digits
    labeled = LabeledSet(X[:300], y[:300], np.arange(300))
    pool = PoolChunk(np.arange(300, 700), X=X[300:700])
    hw = make_strategy("hw", model=tiny(), weak_trees=1, random_state=0).fit(labeled)
    assert hw.weak_model_.epochs_run_ == 1 and hw.strong_model_.epochs_run_ == 2
    # one network fit; the difficulty step's held-out check trains the cheap LightGBM, not the network
    assert hw.n_fits_ == 1 + hw.difficulty_["fits"]
    qbc = make_strategy("qbc", model=tiny(), committee="dropout", disagreement="bald", random_state=0)
    batch = mine(qbc, pool, budget=30, labeled=labeled)
    again = mine(
        make_strategy("qbc", model=tiny(), committee="dropout", disagreement="bald", random_state=0),
        pool,
        budget=30,
        labeled=labeled,
        chunk_size=77,
    )
    assert len(batch) == 30 and list(batch.ids) == list(again.ids)
    with pytest.raises(InputError, match="dropout passes"):
        make_strategy("qbc", model="logreg", committee="dropout").fit(labeled)


def test_network_embedding_serves_near_duplicate_suppression(digits):
    X, y = digits
    labeled = LabeledSet(X[:300], y[:300], np.arange(300))
    U = np.concatenate([X[300:500], X[300:500]])  # every pool image twice
    pool = PoolChunk(np.arange(1000, 1400), X=U)
    from activemine.diversity.options import DiversityOptions
    from activemine.selection.plan import SelectionPlan

    strategy = make_strategy("lc", model=tiny(), random_state=0)
    plan = SelectionPlan.build(strategy, budget=40, diversity=DiversityOptions.from_cli(near_duplicates="auto"))
    batch = mine(strategy, pool, plan=plan, labeled=labeled)
    sources = (np.asarray(batch.ids) - 1000) % 200
    assert np.unique(sources).size == 40  # no image with its copy
    assert "penultimate" in batch.diversity.embedding


def _noisy(digits, n=600, rate=0.1):
    from activemine.experiments.noise import inject_label_noise

    X, y = digits
    noisy, flipped = inject_label_noise(y[:n], rate, random_state=0)
    return X[:n], noisy, flipped


def test_dirty_step_with_a_head_on_frozen_embeddings_finds_flips_at_one_network_fit(digits):
    from activemine.dirty import DirtyDataFilter

    X, noisy, flipped = _noisy(digits)
    settings = dict(model=tiny(epochs=3), oof_method="embedding-head", rule="target", soften=False, n_jobs=1)
    step = DirtyDataFilter(**settings)
    step(X, noisy, random_state=0)
    report = step.report_
    assert report.extra["oof_method"] == "embedding-head"
    assert report.extra["network_fits"] == 1 and report.extra["oof_fits"] == 3 and report.extra["seconds"] > 0
    precision, recall = flipped[report.suspect].mean(), report.suspect[flipped].mean()
    assert precision > 0.6 and recall > 0.5, (precision, recall)
    assert flipped[~report.keep].mean() > 0.8  # the rows dropped are mostly the flipped ones
    # the same network's embeddings given: no network fit, the same suspects
    network = make_model(tiny(epochs=3), random_state=0, n_jobs=1).fit(X, noisy)
    again = DirtyDataFilter(**settings)
    again(X, noisy, random_state=0, embeddings=network.embed(X))
    assert again.network_fits_ == 0 and (again.report_.suspect == report.suspect).all()
    with pytest.raises(InputError, match=r"embeddings must have shape \(600, e\)"):
        DirtyDataFilter(**settings)(X, noisy, random_state=0, embeddings=network.embed(X)[:10])
    with pytest.raises(InputError, match="'lightgbm', which has no penultimate layer"):
        DirtyDataFilter(oof_method="embedding-head", model="lightgbm")


def test_hw_embedding_head_reuses_the_strong_network(digits):
    X, noisy, _ = _noisy(digits, n=400)
    labeled = LabeledSet(X, noisy, np.arange(X.shape[0]))
    hw = make_strategy(
        "hw", model=tiny(), oof_method="embedding-head", soft_labels=False, random_state=0, n_jobs=1
    ).fit(labeled)
    report = hw.dirty_report_
    assert report.extra["oof_method"] == "embedding-head" and report.extra["network_fits"] == 0
    assert hw.n_fits_ == 1 + hw.difficulty_["fits"]  # the strong network is the only network trained
    with pytest.raises(InputError, match="no penultimate layer"):
        make_strategy("hw", model="logreg", oof_method="embedding-head")


def test_clean_embedding_head_with_a_network_from_the_cli(tmp_path, digits):
    import pyarrow as pa

    X, noisy, flipped = _noisy(digits)
    path = tmp_path / "L.parquet"
    pq.write_table(
        pa.table({"id": np.arange(noisy.size), "label": noisy, **{f"px{j}": X[:, j] for j in range(64)}}), path
    )
    out = tmp_path / "suspects.parquet"
    args = ["clean", "--labeled", path, "--out", out, "--model", "cnn", "--epochs", 3, "--batch-size", 64]
    code, text = invoke(
        *args, "--oof-method", "embedding-head", "--rule", "target", "--no-soft-labels", "--folds", 3, "--n-jobs", 1
    )
    assert code == 0, text
    assert "out-of-fold probabilities: embedding-head, " in text and "and 1 network fit" in text
    action = np.array(pq.read_table(out).column("action").to_pylist())
    assert (action == "drop").any() and flipped[action == "drop"].mean() > 0.8


# -- the CLI, end to end with a tiny network, from folders of image files ----------------------------
@pytest.fixture
def image_folders(tmp_path, digits):
    """digits as 8x8 PNG files: L/<class>/ (300 images) and U/ (500 images, in two parts)."""
    from PIL import Image

    X, y = digits
    pixels = np.rint(X * 255).astype(np.uint8).reshape(-1, 8, 8)
    L, U = tmp_path / "L", tmp_path / "U"
    for i in range(300):
        (L / str(y[i])).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels[i], mode="L").save(L / str(y[i]) / f"{i:04d}.png")
    for i in range(300, 800):
        part = U / f"part{i % 2}"
        part.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels[i], mode="L").save(part / f"{i:04d}.png")
    return L, U


def test_mine_with_cnn_from_image_folders_twice_gives_the_same_batch(tmp_path, image_folders):
    L, U = image_folders
    outs = []
    for i, chunk in enumerate((1000, 77)):
        out = tmp_path / f"b{i}.parquet"
        code, text = invoke(
            "mine",
            "--pool",
            U,
            "--labeled",
            L,
            "--budget",
            25,
            "--out",
            out,
            "--model",
            "cnn",
            "--epochs",
            1,
            "--batch-size",
            64,
            "--device",
            "cpu",
            "--n-jobs",
            1,
            "--chunk-size",
            chunk,
            "--quiet",
        )
        assert code == 0, text
        outs.append(pq.read_table(out).column("id").to_pylist())
    assert len(outs[0]) == 25 and outs[0] == outs[1]
    assert "dirty-data check of L (refit): " in text  # HW's step on L, with its fits and seconds
    assert all(i.startswith("part") and i.endswith(".png") for i in outs[0])  # ids: paths relative to the pool


def test_cli_bad_network_inputs_fail_before_reading_anything(tmp_path, image_folders, monkeypatch):
    L, U = image_folders
    out = tmp_path / "b.parquet"
    code, text = invoke("mine", "--pool", U, "--labeled", L, "--budget", 5, "--out", out, "--model", "nowhere.nets:cnn")
    assert code == 2 and "cannot import module 'nowhere.nets'" in text and not out.exists()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, text = invoke(
        "mine", "--pool", U, "--labeled", L, "--budget", 5, "--out", out, "--model", "cnn", "--device", "cuda"
    )
    assert code == 2 and "no GPU" in text and not out.exists()
    code, text = invoke(
        "mine", "--pool", U, "--labeled", L, "--budget", 5, "--out", out, "--model", "lightgbm", "--epochs", 2
    )
    assert code == 2 and "--epochs apply to a network model" in text and not out.exists()


def test_experiment_and_a_campaign_round_with_cnn_from_image_folders(tmp_path, image_folders):
    L, U = image_folders
    code, text = invoke(
        "experiment",
        "--dataset",
        L,
        "--task",
        "binary:3",
        "--labeled-size",
        120,
        "--budget",
        40,
        "--strategies",
        "lc,hw",
        "--model",
        "cnn",
        "--epochs",
        1,
        "--n-jobs",
        1,
        "--out",
        tmp_path / "exp",
        "--quiet",
    )
    assert code == 0, text
    assert (tmp_path / "exp" / "results.json").exists()
    camp = tmp_path / "camp"
    code, text = invoke("campaign", "init", camp, "--pool", U, "--labeled", L)
    assert code == 0, text
    code, text = invoke(
        "campaign",
        "mine",
        camp,
        "--budget",
        20,
        "--strategy",
        "hw",
        "--model",
        "cnn",
        "--epochs",
        1,
        "--weak-trees",
        1,
        "--oof-method",
        "embedding-head",
        "--n-jobs",
        1,
        "--quiet",
    )
    assert code == 0 and "round 1: 20 samples" in text, text


def test_experiment_takes_the_committee_embeddings_and_dirty_step_options_of_mine(tmp_path, image_folders):
    import json

    L, _ = image_folders
    args = ["experiment", "--dataset", L, "--task", "binary:3", "--labeled-size", 150, "--budget", 30]
    code, text = invoke(
        *args,
        "--strategies",
        "lc+near-duplicates,qbc+near-duplicates,hw",
        "--committee",
        "seeded",
        "--committee-size",
        2,
        "--oof-method",
        "embedding-head",
        "--model",
        "cnn",
        "--epochs",
        1,
        "--n-jobs",
        1,
        "--out",
        tmp_path / "exp",
        "--quiet",
    )
    assert code == 0, text
    runs = {r["strategy"]: r for r in json.loads((tmp_path / "exp" / "results.json").read_text())["runs"]}
    for name in ("lc+near-duplicates", "qbc+near-duplicates"):
        assert runs[name]["diversity"]["embedding"].startswith("the network's penultimate layer (")
    assert runs["qbc+near-duplicates"]["model_fits"] == 2  # two networks, seeds apart
    hw = runs["hw"]
    assert hw["dirty"]["oof_method"] == "embedding-head" and hw["dirty"]["network_fits"] == 0
    assert hw["final_dirty_step"]["oof_method"] == "embedding-head" and hw["final_dirty_step"]["network_fits"] == 1
    code, text = invoke(*args, "--strategies", "qbc", "--committee", "dropout", "--out", tmp_path / "x")
    assert code == 2 and "committee='dropout' needs a network" in text and not (tmp_path / "x").exists()


def test_a_non_square_image_shape_comes_from_the_labeled_set():
    rng = np.random.default_rng(0)
    X = rng.random((120, 3 * 10 * 14), dtype=np.float32)
    y = (X[:, :20].mean(axis=1) > 0.5).astype(int)
    with pytest.raises(InputError, match="not a square image"):
        tiny(epochs=1).fit(X, y)
    labeled = LabeledSet(X, y, np.arange(120), image_shape=(3, 10, 14))
    strategy = make_strategy("lc", model=tiny(epochs=1), random_state=0).fit(labeled)
    assert strategy.model_.input_shape_ == (3, 10, 14)


def test_onecycle_steps_are_torchs_and_every_schedule_ends_near_zero():
    from activemine.deep.classifier import learning_rate_at

    total, lr = 37, 3e-3
    params = [torch.nn.Parameter(torch.zeros(1))]
    opt = torch.optim.Adam(params, lr=lr)
    ref = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=0.3)
    for step in range(total):
        got_lr, got_beta1 = learning_rate_at("onecycle", lr, step, total, 0.3)
        assert got_lr == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9)
        assert got_beta1 == pytest.approx(opt.param_groups[0]["betas"][0], rel=1e-9)
        opt.step()
        if step < total - 1:
            ref.step()
    for schedule in ("onecycle", "cosine"):
        rates = [learning_rate_at(schedule, lr, s, total, 0.3)[0] for s in range(total)]
        assert max(rates) == pytest.approx(lr, rel=0.02) and rates[-1] < lr / 100
        assert rates[0] < lr / 5  # a warm-up
    assert {learning_rate_at("constant", lr, s, total, 0.3) for s in range(total)} == {(lr, None)}


@pytest.mark.parametrize("schedule", ["onecycle", "cosine"])
def test_a_schedule_trains_another_network_with_the_same_seed_the_same(digits, schedule):
    X, y = digits
    a = tiny(schedule=schedule).fit(X[:400], y[:400])
    assert np.array_equal(
        a.predict_proba(X[400:450]), tiny(schedule=schedule).fit(X[:400], y[:400]).predict_proba(X[400:450])
    )
    assert not np.allclose(
        a.predict_proba(X[400:450]), tiny(schedule="constant").fit(X[:400], y[:400]).predict_proba(X[400:450])
    )


def test_shift_moves_each_image_by_at_most_max_shift_and_flip_is_opt_in():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((64, 2, 9, 7), dtype=np.float32)) + 0.5  # no zeros: padding is visible
    shifted = TorchClassifier(augment="shift", max_shift=2)._augmented(x, torch.Generator().manual_seed(3))
    moves = set()
    for row, orig in zip(shifted, x):
        found = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if torch.equal(row, torch.roll(torch.nn.functional.pad(orig, (2, 2, 2, 2)), (dy, dx), (1, 2))[:, 2:11, 2:9])
        ]
        assert len(found) == 1  # each image is the original moved by (dy, dx) in [-2, 2], zeros where it came from
        moves.add(found[0])
    assert len(moves) > 10  # the moves are drawn per image
    again = TorchClassifier(augment="shift", max_shift=2)._augmented(x, torch.Generator().manual_seed(3))
    assert torch.equal(shifted, again)
    flipped = TorchClassifier(augment="flip")._augmented(x, torch.Generator().manual_seed(3))
    mirrored = [torch.equal(f, o.flip(-1)) for f, o in zip(flipped, x)]
    assert 16 < sum(mirrored) < 48 and all(m or torch.equal(f, o) for m, f, o in zip(mirrored, flipped, x))
    assert "flip" not in TorchClassifier().augment  # mirror images change digits and text: never by default
    assert torch.equal(TorchClassifier(augment="none")._augmented(x, torch.Generator()), x)


def test_augmentation_changes_training_and_is_seeded(digits):
    X, y = digits
    a = tiny(augment="shift").fit(X[:400], y[:400]).predict_proba(X[400:450])
    assert np.array_equal(a, tiny(augment="shift").fit(X[:400], y[:400]).predict_proba(X[400:450]))
    assert not np.allclose(a, tiny(augment="none").fit(X[:400], y[:400]).predict_proba(X[400:450]))


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        ("schedule", "step", r"schedule must be one of \['onecycle', 'cosine', 'constant'\], got 'step'"),
        ("warmup_fraction", 1.0, r"warmup_fraction must be in \(0, 1\), got 1.0"),
        ("augment", "hflip", r"augment must be one of .*'shift\+flip'.*got 'hflip'"),
        ("max_shift", -1, r"max_shift must be an integer >= 0 \(pixels\), got -1"),
        ("max_shift", 1.5, r"max_shift must be an integer >= 0 \(pixels\), got 1.5"),
        ("weight_decay", -0.1, r"weight_decay must be >= 0, got -0.1"),
    ],
)
def test_bad_training_recipe_is_a_clear_error_before_training(digits, param, value, message):
    X, y = digits
    model = tiny(**{param: value})
    with pytest.raises(InputError, match=message):
        model.fit(X[:100], y[:100])
    assert not hasattr(model, "module_")
