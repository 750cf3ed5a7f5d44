"""Training: every loader on generated fixtures, a learning epoch, exact resume, evaluate's JSON."""

from __future__ import annotations

import csv
import importlib
import json
import os
import re
import subprocess
import sys
import zipfile

import cv2
import numpy as np
import pytest
import torch
from conftest import FER2013_CSV, FER2013_ZIP, FERPLUS_ZIP, ROOT, SHIPPED_CHECKPOINT, needs

from emotion.checkpoint import load_checkpoint
from emotion.classes import EMOTIONS
from emotion.decision import softmax
from emotion.device import inference_dtype
from emotion.errors import MoodtunesError
from emotion.preprocess import FER_MEAN, FER_STD
from training.datasets import DATA_HELP, NO_LABEL, load_dataset
from training.evaluate import main as evaluate_main
from training.train import predict_logits

SPLIT_PREFIX = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}


def pattern(label: int, i: int) -> np.ndarray:
    """A learnable 48x48 face stand-in: a bright blob whose position encodes the class."""
    rng = np.random.default_rng(label * 1000 + i)
    image = rng.integers(0, 60, (48, 48)).astype(np.uint8)
    y, x = divmod(label, 3)
    image[6 + 14 * y : 18 + 14 * y, 6 + 14 * x : 18 + 14 * x] = 230
    return image


@pytest.fixture
def fer_csv(tmp_path):
    path = tmp_path / "fer2013.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for usage, n in (("Training", 70), ("PublicTest", 14), ("PrivateTest", 14)):
            for i in range(n):
                label = i % 7
                w.writerow([label, " ".join(map(str, pattern(label, i).ravel())), usage])
        w.writerow([3, "1 2 3", "Training"])  # corrupt: 3 pixels
        w.writerow(["x", "1 " * 2304, "Training"])  # corrupt: label
    return path


@pytest.fixture
def fer_folder(tmp_path):
    root = tmp_path / "fer2013"
    folder_names = {EMOTIONS.index(n): n for n in EMOTIONS}
    for split, n in (("train", 35), ("val", 7), ("test", 7)):
        for i in range(n):
            label = i % 7
            top = "train" if split == "train" else "test"
            path = root / top / folder_names[label] / f"{SPLIT_PREFIX[split]}_{i}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), pattern(label, i))
    (root / "train" / "happy" / "Training_broken.jpg").write_bytes(b"not a jpeg")
    return root


# FER+ vote columns: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
FERPLUS_ROWS = [
    ("fer0.png", [10, 0, 0, 0, 0, 0, 0, 0, 0, 0], "neutral"),
    ("fer1.png", [0, 8, 2, 0, 0, 0, 0, 0, 0, 0], "happy"),
    ("fer2.png", [0, 0, 0, 4, 4, 0, 0, 0, 2, 0], None),  # tie sad/angry: no majority label
    ("fer3.png", [2, 0, 0, 0, 0, 0, 0, 6, 2, 0], "drop"),  # contempt majority: not one of the 7
    ("fer4.png", [1, 0, 0, 0, 0, 0, 0, 0, 9, 0], "drop"),  # unknown
    ("fer5.png", [0, 0, 0, 0, 0, 0, 0, 0, 0, 10], "drop"),  # not a face
    ("fer6.png", [0, 0, 7, 0, 0, 0, 3, 0, 0, 0], "surprise"),
    ("fer7.png", [0, 0, 0, 0, 0, 0, 9, 0, 1, 0], "fear"),
    ("broken.png", [0, 10, 0, 0, 0, 0, 0, 0, 0, 0], "corrupt"),
]


@pytest.fixture
def ferplus_folder(tmp_path):
    root = tmp_path / "ferplus"
    for folder in ("FER2013Train", "FER2013Valid", "FER2013Test"):
        (root / folder).mkdir(parents=True)
        with open(root / folder / "label.csv", "w", newline="") as f:
            w = csv.writer(f)
            for i, (name, votes, _) in enumerate(FERPLUS_ROWS):
                w.writerow([name, "(0, 0, 48, 48)", *votes])
                if name == "broken.png":
                    (root / folder / name).write_bytes(b"\x89PNG broken")
                else:
                    cv2.imwrite(str(root / folder / name), pattern(i % 7, i))
    return root


def zip_folder(folder, path, top=""):
    with zipfile.ZipFile(path, "w") as z:
        for p in folder.rglob("*"):
            if p.is_file():
                z.write(p, top + p.relative_to(folder).as_posix())
    return path


def test_fer2013_csv_loader_skips_corrupt_rows(fer_csv):
    with pytest.warns(UserWarning, match="skipped 2"):
        train = load_dataset("fer2013", fer_csv, "train")
    assert train.images.shape == (70, 48, 48) and train.images.dtype == np.uint8
    assert np.array_equal(train.images[3], pattern(3, 3)) and train.labels[3] == 3
    assert len(load_dataset("fer2013", fer_csv, "val")) == 14
    assert len(load_dataset("fer2013", fer_csv, "test")) == 14


def test_fer2013_csv_xz_is_read_directly(fer_csv, tmp_path):
    import lzma

    xz = tmp_path / "fer2013.csv.xz"
    xz.write_bytes(lzma.compress(fer_csv.read_bytes()))
    with pytest.warns(UserWarning):
        assert len(load_dataset("fer2013", xz, "train")) == 70


def test_fer2013_folder_and_zip_loaders(fer_folder, tmp_path):
    with pytest.warns(UserWarning, match="skipped 1"):
        train = load_dataset("fer2013", fer_folder, "train")
    assert len(train) == 35 and sorted(np.bincount(train.labels)) == [5] * 7
    assert len(load_dataset("fer2013", fer_folder, "val")) == 7
    zipped = zip_folder(fer_folder, tmp_path / "fer.zip", top="fer2013/")  # zips often add a top folder
    with pytest.warns(UserWarning, match="skipped 1"):
        from_zip = load_dataset("fer2013", zipped, "train")
    order = np.lexsort((from_zip.images.reshape(35, -1).sum(1), from_zip.labels))
    reference = np.lexsort((train.images.reshape(35, -1).sum(1), train.labels))
    assert np.array_equal(from_zip.labels[order], train.labels[reference])


def test_ferplus_majority_votes_ties_and_soft_targets(ferplus_folder, tmp_path):
    for source in (ferplus_folder, zip_folder(ferplus_folder, tmp_path / "ferplus.zip")):
        with pytest.warns(UserWarning, match="skipped 1"):
            data = load_dataset("ferplus", source, "test")
        expected = [row[2] for row in FERPLUS_ROWS if row[2] not in ("drop", "corrupt")]
        assert [EMOTIONS[i] if i != NO_LABEL else None for i in data.labels] == expected
        assert data.soft_targets.shape == (5, 7)
        np.testing.assert_allclose(data.soft_targets.sum(1), 1)
        tie = data.soft_targets[expected.index(None)]
        assert tie[EMOTIONS.index("sad")] == tie[EMOTIONS.index("angry")] == pytest.approx(0.5)
        assert len(data.labelled()) == 4


def test_missing_or_wrong_data_fails_clearly(tmp_path, fer_csv):
    with pytest.raises(MoodtunesError, match="Dataset not found"):
        load_dataset("fer2013", tmp_path / "none.csv", "train")
    with pytest.raises(MoodtunesError, match="no FER2013Train/label.csv"):
        load_dataset("ferplus", fer_csv.parent, "train")
    bad = tmp_path / "other.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(MoodtunesError, match="not a FER2013 CSV"):
        load_dataset("fer2013", bad, "train")
    notes = tmp_path / "notes.txt"  # neither a CSV nor a zip: the message names what --data takes
    notes.write_text("hello")
    for dataset in ("fer2013", "ferplus"):
        with pytest.raises(MoodtunesError, match="not a readable zip file: re-download it, or pass --data as "
                           + re.escape(DATA_HELP)):
            load_dataset(dataset, notes, "train")


def test_packed_shards_hold_the_same_faces_and_a_missing_shard_is_named(ferplus_folder, tmp_path, capsys):
    from training.pack import main as pack_main

    packed = tmp_path / "packed"
    two_faces = str(2 * 48 * 48 / 2**20)
    with pytest.warns(UserWarning):
        assert pack_main(["--dataset", "ferplus", "--data", str(ferplus_folder), "--out", str(packed),
                          "--shard-mib", two_faces]) == 0
        originals = {split: load_dataset("ferplus", ferplus_folder, split) for split in ("train", "test")}
    assert sorted(f.name for f in packed.glob("test-*.npz")) == ["test-000.npz", "test-001.npz", "test-002.npz"]
    for split, original in originals.items():
        loaded = load_dataset("ferplus", packed, split)
        np.testing.assert_array_equal(loaded.images, original.images)
        np.testing.assert_array_equal(loaded.labels, original.labels)  # ties (NO_LABEL) included
        np.testing.assert_array_equal(loaded.soft_targets, original.soft_targets)
    with pytest.raises(MoodtunesError, match="holds ferplus, not fer2013: pass --dataset ferplus"):
        load_dataset("fer2013", packed, "train")
    (packed / "test-001.npz").unlink()
    with pytest.raises(MoodtunesError, match="holds 3 of the 5 test faces in 2 of 3 shards"):
        load_dataset("ferplus", packed, "test")
    capsys.readouterr()
    assert pack_main(["--dataset", "fer2013", "--data", str(ferplus_folder), "--out", str(packed)]) == 2
    refusal = f"error: {packed} already holds ferplus: pack fer2013 into another folder."
    assert capsys.readouterr().err.strip() == refusal


TINY_MODEL = ["--widths", "8", "8", "16", "16", "16", "--depths", "1", "1", "1", "1", "1", "--workers", "0",
              "--batch-size", "14", "--threads", "1"]


def train(*args: str) -> None:
    from training.train import main

    assert main([*TINY_MODEL, *args]) == 0


def training_loss(model, data) -> float:
    probs = softmax(predict_logits(model, data.images, FER_MEAN, FER_STD, torch.device("cpu")))
    return float(-np.log(probs[np.arange(len(probs)), data.labels] + 1e-9).mean())


@pytest.mark.parametrize("recipe", [[], ["--sam", "0.05"]], ids=["sgd", "sam"])
def test_one_epoch_lowers_the_loss(fer_csv, tmp_path, recipe):
    from emotion.model import CustomDeepEmotionNet, EmotionNetConfig

    with pytest.warns(UserWarning):
        data = load_dataset("fer2013", fer_csv, "train")
    torch.manual_seed(0)  # train.py seeds the same way before building its model
    before = training_loss(CustomDeepEmotionNet(EmotionNetConfig(widths=(8, 8, 16, 16, 16), depths=(1,) * 5)), data)
    with pytest.warns(UserWarning, match="skipped 2"):
        train("--dataset", "fer2013", "--data", str(fer_csv), "--out", str(tmp_path / "run"), "--epochs", "1",
              "--warmup-epochs", "0", "--lr", "0.02", "--erase", "0", "--rotate", "0", "--scale", "0", "--shift", "0",
              *recipe)
    after = training_loss(load_checkpoint(tmp_path / "run" / "last.pt").model, data)
    assert after < before
    for name in ("best.pt", "last.pt", "log.csv", "curves.png"):
        assert (tmp_path / "run" / name).exists()


def test_sam_climbs_rho_along_the_gradient_and_comes_back_exactly():
    from emotion.model import CustomDeepEmotionNet, EmotionNetConfig
    from training.sam import batchnorm_stats_frozen, climb_back, climb_to_sharpest

    torch.manual_seed(0)
    model = CustomDeepEmotionNet(EmotionNetConfig(widths=(4, 4, 8, 8, 8), depths=(1,) * 5)).train()
    x = torch.randn(6, 1, 48, 48)
    model(x).logsumexp(1).mean().backward()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    gradient = torch.cat([p.grad.flatten() for p in model.parameters()])

    moved = climb_to_sharpest(model, 0.05)
    step = torch.cat([(p.detach() - original).flatten() for p, original in moved])
    assert len(moved) == len(list(model.parameters()))
    assert float(step.norm()) == pytest.approx(0.05, rel=1e-4)
    assert float(torch.nn.functional.cosine_similarity(step, gradient, dim=0)) == pytest.approx(1.0, abs=1e-4)

    with batchnorm_stats_frozen(model):
        model(x * 3 + 1)  # a training-mode forward on other activations: running statistics must not move
    climb_back(moved)
    after = model.state_dict()
    for key, value in before.items():
        if not key.endswith("num_batches_tracked"):  # counts forwards; unused with a fixed momentum
            assert torch.equal(after[key], value), key
    assert all(m.momentum == 0.1 for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))

    for p in model.parameters():
        p.grad = torch.full_like(p, float("inf"))  # an fp16 overflow: GradScaler skips the step, SAM stays put
    assert climb_to_sharpest(model, 0.05) == []


def test_resume_continues_exactly(ferplus_folder, tmp_path):
    common = ["--dataset", "ferplus", "--data", str(ferplus_folder), "--epochs", "3", "--soft-targets",
              "--batch-size", "2"]
    with pytest.warns(UserWarning):
        train(*common, "--out", str(tmp_path / "straight"))
        train(*common, "--out", str(tmp_path / "split"), "--stop-after", "1")
        stopped = load_checkpoint(tmp_path / "split" / "last.pt")
        assert stopped.training_state["epoch"] == 0 and stopped.metadata["epoch"] == 1
        train("--resume", str(tmp_path / "split" / "last.pt"))
    straight = load_checkpoint(tmp_path / "straight" / "last.pt")
    resumed = load_checkpoint(tmp_path / "split" / "last.pt")
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    a, b = straight.training_state["optimizer"]["state"], resumed.training_state["optimizer"]["state"]
    assert a.keys() == b.keys() and all(torch.equal(a[k]["momentum_buffer"], b[k]["momentum_buffer"]) for k in a)
    log = (tmp_path / "split" / "log.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in log] == ["epoch", "1", "2", "3"]


def test_resume_needs_a_last_checkpoint(tmp_path, tiny_checkpoint, fer_csv):
    from training.train import main

    code = main(["--dataset", "fer2013", "--data", str(fer_csv), "--out", str(tmp_path), "--resume",
                 str(tiny_checkpoint)])
    assert code == 2


def test_evaluate_prints_the_metrics_json(fer_csv, tmp_path, tiny_checkpoint):
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(tiny_checkpoint.read_bytes())
    result = subprocess.run([sys.executable, "-m", "training.evaluate", "--dataset", "fer2013", "--data", str(fer_csv),
                             "--split", "test", "--checkpoint", str(ckpt), "--tta"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120, env=os.environ.copy())
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["n"] == 14 and 0 <= metrics["accuracy"] <= 1 and 0 <= metrics["macro_f1"] <= 1
    assert set(metrics["per_class_recall"]) == set(EMOTIONS)
    cm = np.array(metrics["confusion_matrix"])
    assert cm.shape == (7, 7) and list(cm.sum(1)) == [2] * 7  # rows are the true classes
    assert metrics["accuracy"] == pytest.approx(np.trace(cm) / 14)
    assert os.path.exists(metrics["confusion_png"])


def test_evaluate_reports_the_precision_it_ran_in(fer_csv, tiny_checkpoint, capsys):
    base = ["--dataset", "fer2013", "--data", str(fer_csv), "--split", "test", "--checkpoint", str(tiny_checkpoint),
            "--device", "cpu", "--no-plot"]
    results = {}
    for precision in ("float32", "app"):
        assert evaluate_main([*base, "--precision", precision]) == 0
        results[precision] = json.loads(capsys.readouterr().out)
    assert results["float32"]["precision"] == "float32"
    assert results["app"]["precision"] == str(inference_dtype(torch.device("cpu"))).removeprefix("torch.")
    assert results["app"]["n"] == results["float32"]["n"] == 14


def test_evaluate_averages_several_checkpoints_as_one_ensemble(fer_csv, tmp_path, tiny_checkpoint, capsys):
    """Several --checkpoint: the metrics of their averaged probabilities (how a teacher ensemble is measured)."""
    from emotion.checkpoint import save_checkpoint
    from emotion.model import CustomDeepEmotionNet, EmotionNetConfig

    torch.manual_seed(1)
    other = tmp_path / "other.pt"
    tiny = CustomDeepEmotionNet(EmotionNetConfig(widths=(8, 8, 16, 16, 16), depths=(1,) * 5))
    save_checkpoint(other, tiny, mean=FER_MEAN, std=FER_STD, metadata={"dataset": "none"})
    assert evaluate_main(["--dataset", "fer2013", "--data", str(fer_csv), "--split", "test", "--device", "cpu",
                          "--checkpoint", str(tiny_checkpoint), str(other)]) == 0
    result = json.loads(capsys.readouterr().out)
    data = load_dataset("fer2013", fer_csv, "test").labelled()
    probs = [softmax(predict_logits(load_checkpoint(path).model, data.images, FER_MEAN, FER_STD, torch.device("cpu")))
             for path in (tiny_checkpoint, other)]
    expected = np.zeros((7, 7), int)
    np.add.at(expected, (data.labels, ((probs[0] + probs[1]) / 2).argmax(1)), 1)
    assert result["checkpoint"] == [str(tiny_checkpoint), str(other)]
    assert result["confusion_matrix"] == expected.tolist()
    assert result["confusion_png"].endswith("tiny_ensemble_of_2_confusion_fer2013_test.png")


def test_evaluate_bad_checkpoint_is_one_line(fer_csv, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_text("nope")
    result = subprocess.run([sys.executable, "-m", "training.evaluate", "--dataset", "fer2013", "--data", str(fer_csv),
                             "--checkpoint", str(bad), "--no-plot"], capture_output=True, text=True, cwd=ROOT,
                            timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr and result.stderr.startswith("error:")


@needs(FER2013_CSV)
@pytest.mark.parametrize("split,n", [("train", 28709), ("val", 3589), ("test", 3589)])
def test_fer2013_csv_split_sizes(split, n):
    data = load_dataset("fer2013", FER2013_CSV, split)
    assert len(data) == n


@needs(FER2013_ZIP)
def test_fer2013_folder_split_sizes_and_class_counts():
    train = load_dataset("fer2013", FER2013_ZIP, "train")
    assert len(train) == 28709
    counts = dict(zip(EMOTIONS, np.bincount(train.labels), strict=True))
    assert counts == {"angry": 3995, "disgust": 436, "fear": 4097, "happy": 7215, "sad": 4830, "surprise": 3171,
                      "neutral": 4965}
    assert len(load_dataset("fer2013", FER2013_ZIP, "val")) + len(load_dataset("fer2013", FER2013_ZIP, "test")) == 7178


@needs(FERPLUS_ZIP)
def test_ferplus_split_sizes():
    # Images per folder: 28,558 / 3,579 / 3,573; kept with a 7-class majority (ties kept for
    # soft targets): 27,922 / 3,489 / 3,492; with a single majority label: 26,775 / 3,370 / 3,344.
    for split, kept, labelled in (("train", 27922, 26775), ("val", 3489, 3370), ("test", 3492, 3344)):
        data = load_dataset("ferplus", FERPLUS_ZIP, split)
        assert (len(data), len(data.labelled())) == (kept, labelled)


def fer_csv_of(path, n_train: int = 140, n_eval: int = 28):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for usage, n in (("Training", n_train), ("PublicTest", n_eval), ("PrivateTest", n_eval)):
            for i in range(n):
                w.writerow([i % 7, " ".join(map(str, pattern(i % 7, i).ravel())), usage])
    return path


def strings_in(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings_in(item)
    elif isinstance(value, str):
        yield value


ABSOLUTE_PATH = re.compile(r"(^|[\s=])(/[^\s/]+/|[A-Za-z]:\\)")


def test_torchrun_trains_on_two_cpu_processes_as_one_run(tmp_path):
    data = fer_csv_of(tmp_path / "fer.csv")
    out = tmp_path / "ddp"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                "-m", "training.train"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.run([*torchrun, "--dataset", "fer2013", "--data", str(data), "--out", str(out), "--epochs", "2",
                            "--stop-after", "1", "--ema", "0.9", *TINY_MODEL], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    second = subprocess.run([*torchrun, "--resume", str(out / "last.pt")], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resumed from" in second.stdout and second.stdout.count("resumed from") == 1  # rank 0 alone speaks
    rows = list(csv.DictReader((out / "log.csv").read_text().splitlines()))
    assert [r["epoch"] for r in rows] == ["1", "2"]  # one writer: one row per epoch
    best = load_checkpoint(out / "best.pt")
    assert not any(k.startswith("module.") for k in best.model.state_dict())
    assert best.metadata["val_metrics"]["n"] == 28  # both ranks' halves of the validation split, added up
    assert best.metadata["command"].startswith("torchrun --nproc_per_node 2 -m training.train")
    assert best.metadata["device"] == "2 x cpu"
    from emotion.recognizer import EmotionRecognizer

    faces = [pattern(3, 1)] * 2
    assert EmotionRecognizer(out / "best.pt", device="cpu", detector="haar").classify(faces).shape == (2, 7)


def test_sam_trains_under_torchrun(tmp_path):
    """SAM's first backward runs without DDP's gradient sync (each rank climbs its own way); the second syncs."""
    data = fer_csv_of(tmp_path / "fer.csv")
    out = tmp_path / "ddp_sam"
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "training.train", "--dataset", "fer2013", "--data", str(data), "--out", str(out),
                          "--epochs", "1", "--sam", "0.05", *TINY_MODEL], cwd=ROOT,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    best = load_checkpoint(out / "best.pt")
    assert best.metadata["args"]["sam"] == 0.05 and best.metadata["device"] == "2 x cpu"


def test_distillation_ema_mixing_and_corruption_train_and_record_portable_paths(tmp_path, tiny_checkpoint):
    data = fer_csv_of(tmp_path / "fer.csv")
    out = tmp_path / "student"
    train("--dataset", "fer2013", "--data", str(data.resolve()), "--out", str(out.resolve()), "--epochs", "1",
          "--teacher", str(tiny_checkpoint), "--distill", "0.7", "--temperature", "2", "--ema", "0.9", "--mixup", "0.2",
          "--cutmix", "1.0", "--corrupt", "0.5")
    best = load_checkpoint(out / "best.pt")
    assert best.metadata["args"]["teacher"] and best.metadata["args"]["corrupt"] == 0.5
    for text in strings_in(best.metadata):
        assert not ABSOLUTE_PATH.search(text), f"absolute path in the checkpoint's metadata: {text}"


@pytest.mark.parametrize("teacher", ["missing.pt", "tiny.onnx"])
def test_a_bad_teacher_is_one_line_and_leaves_no_run_folder(tmp_path, tiny_checkpoint, teacher, capsys):
    from training.train import main

    data = fer_csv_of(tmp_path / "fer.csv")
    (tmp_path / "tiny.onnx").write_bytes(b"not a checkpoint")  # an exported model is no teacher: the .pt is
    out = tmp_path / "student"
    assert main([*TINY_MODEL, "--dataset", "fer2013", "--data", str(data), "--out", str(out), "--epochs", "1",
                 "--teacher", str(tiny_checkpoint), str(tmp_path / teacher)]) == 2
    last_line = capsys.readouterr().err.split("\r")[-1]  # after the data's progress bar
    assert last_line.count("\n") == 1 and last_line.startswith("error:") and teacher in last_line
    assert not out.exists()  # nothing to clean up after a typo


@pytest.mark.parametrize("name", ["emotion_ferplus", "emotion_fer2013"])
def test_shipped_checkpoints_name_no_absolute_paths(name):
    from emotion.classifier import read_onnx_metadata

    pt = load_checkpoint(ROOT / "checkpoints" / f"{name}.pt").metadata
    onnx = read_onnx_metadata(ROOT / "checkpoints" / f"{name}.onnx")
    for text in [*strings_in(pt), *strings_in(json.loads(onnx["checkpoint_metadata"]))]:
        assert not ABSOLUTE_PATH.search(text), f"{name}: {text}"


@pytest.mark.parametrize("name", ["emotion_ferplus", "emotion_fer2013"])
def test_each_onnx_twin_is_its_checkpoint(name):
    """The .onnx next to each shipped .pt was exported from exactly that file and predicts the same."""
    import hashlib

    from emotion.classifier import OpenCVClassifier, read_onnx_metadata

    pt_path, onnx_path = ROOT / "checkpoints" / f"{name}.pt", ROOT / "checkpoints" / f"{name}.onnx"
    meta = read_onnx_metadata(onnx_path)
    assert meta["source_sha256"] == hashlib.sha256(pt_path.read_bytes()).hexdigest(), \
        f"{onnx_path.name} is stale: python -m training.export --checkpoint {pt_path.relative_to(ROOT)}"
    assert json.loads(meta["classes"]) == list(EMOTIONS) and int(meta["input_size"]) == 48
    if FERPLUS_ZIP.exists():
        faces = load_dataset("ferplus", FERPLUS_ZIP, "test").labelled().images
    else:
        faces = np.random.default_rng(0).integers(0, 256, (512, 48, 48), dtype=np.uint8)
    ckpt = load_checkpoint(pt_path)
    opencv = OpenCVClassifier(onnx_path)
    assert opencv.decision == ckpt.decision  # the twin decides as its checkpoint does
    reference = ckpt.decision.probabilities(predict_logits(ckpt.model, faces, ckpt.mean, ckpt.std,
                                                           torch.device("cpu")))
    twin = np.concatenate([opencv(faces[i : i + 512]) for i in range(0, len(faces), 512)])
    agreement = (twin.argmax(1) == reference.argmax(1)).mean()
    assert agreement >= 0.999, f"top-1 agreement {agreement:.4%}"
    assert np.abs(twin - reference).max() < 1e-3


@pytest.mark.parametrize("name", ["emotion_ferplus", "emotion_fer2013"])
def test_each_int8_twin_is_its_float_model(name):
    """The shipped .int8.onnx was quantised from the shipped float model (same checksum, metadata and
    decision) and gives its labels to nearly every test face."""
    from emotion.classifier import OnnxRuntimeClassifier, read_onnx_metadata
    from training.evaluate import classifier_probabilities

    float_path, int8_path = ROOT / "checkpoints" / f"{name}.onnx", ROOT / "checkpoints" / f"{name}.int8.onnx"
    float_meta, int8_meta = read_onnx_metadata(float_path), read_onnx_metadata(int8_path)
    assert int8_meta.pop("precision") == "int8", f"{int8_path.name} is not int8"
    float_meta.pop("precision", None)
    assert int8_meta == float_meta, (f"{int8_path.name} is stale: python -m training.quantize --model "
                                     f"{float_path.relative_to(ROOT)} --out {int8_path.relative_to(ROOT)} ...")
    dataset, data = ("ferplus", FERPLUS_ZIP) if name == "emotion_ferplus" else ("fer2013", FER2013_CSV)
    if not data.exists():
        pytest.skip(f"{data} is not here")
    faces = load_dataset(dataset, data, "test").labelled().images
    float_model, int8 = OnnxRuntimeClassifier(float_path), OnnxRuntimeClassifier(int8_path)
    labels = [classifier_probabilities(model, faces).argmax(1) for model in (float_model, int8)]
    same = (labels[0] == labels[1]).mean()
    assert same >= 0.985, f"int8 gives the float model's label to {same:.2%} of the test faces"


def test_export_refuses_nothing_good_and_writes_atomically(tmp_path, tiny_checkpoint):
    from emotion.classifier import read_onnx_metadata
    from training.export import main as export_main

    out = tmp_path / "m.onnx"
    assert export_main(["--checkpoint", str(tiny_checkpoint), "--out", str(out)]) == 0
    meta = read_onnx_metadata(out)
    assert json.loads(meta["normalization"]) == {"mean": FER_MEAN, "std": FER_STD}
    good = out.read_bytes()
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    assert export_main(["--checkpoint", str(bad), "--out", str(out)]) == 2
    assert out.read_bytes() == good  # a failed export leaves the last good file alone
    assert export_main(["--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path)]) == 2  # a folder: one line
    from training.quantize import main as quantize_main

    assert quantize_main(["--model", str(out), "--dataset", "fer2013", "--data", "nowhere",
                          "--out", str(tmp_path)]) == 2


def test_init_trains_a_checkpoint_further_with_its_own_architecture(tmp_path, tiny_checkpoint):
    data = fer_csv_of(tmp_path / "fer.csv")
    from training.train import main

    # The command line asks for the default (large) widths; --init's network wins.
    assert main(["--dataset", "fer2013", "--data", str(data), "--out", str(tmp_path / "more"), "--epochs", "1",
                 "--init", str(tiny_checkpoint), "--workers", "0", "--batch-size", "14", "--threads", "1"]) == 0
    trained = load_checkpoint(tmp_path / "more" / "last.pt")
    assert trained.model.config == load_checkpoint(tiny_checkpoint).model.config
    assert trained.model.config.widths == (8, 8, 16, 16, 16)
    assert trained.metadata["args"]["widths"] == [8, 8, 16, 16, 16]  # the recipe records what it trained
    start = load_checkpoint(tiny_checkpoint).model.state_dict()
    assert any(not torch.equal(v, start[k]) for k, v in trained.model.state_dict().items())  # it trained
    assert trained.metadata["args"]["init"] == os.path.relpath(tiny_checkpoint)


@pytest.mark.parametrize("script,argv,message", [
    ("train", ["--dataset", "fer2013", "--epochs", "x"], "--epochs: invalid int value"),
    ("train", ["--epochs", "3"], "--dataset, --data and --out are required"),
    ("evaluate", ["--dataset", "nope", "--data", "x", "--checkpoint", "x"], "--dataset: invalid choice"),
    ("evaluate_pipeline", ["--dataset", "ferplus", "--data", "x", "--checkpoint", "x", "--no-such-option"],
     "unrecognized arguments: --no-such-option"),
    ("export", ["--out", "x.onnx"], "required: --checkpoint"),
    ("pack", ["--dataset", "ferplus"], "required: --data"),
    ("robustness", [], "required"),
])
def test_each_training_script_answers_a_bad_argument_in_one_line(capsys, script, argv, message):
    main = importlib.import_module(f"training.{script}").main
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "usage:" not in err  # no usage block in front of the error
    assert message in err and err.strip().endswith(f"(see python -m training.{script} --help)")


@pytest.mark.parametrize("script", ["train", "evaluate", "evaluate_pipeline", "export", "pack", "robustness", "combine",
                                    "decide"])
def test_each_training_script_helps_under_the_name_it_is_run_by(script):
    result = subprocess.run([sys.executable, "-m", f"training.{script}", "--help"], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr
    usage, summary = result.stdout.split("\n\n")[:2]
    assert usage.startswith(f"usage: python -m training.{script} ")
    assert summary.strip() and not summary.startswith("options:")  # the docstring's first line
    assert f"python -m training.{script} --" in result.stdout  # its example, each backslash kept
    assert not re.search(r"\S {5,}--", result.stdout)  # no example's two lines joined into one


def test_a_quantized_model_keeps_its_metadata_and_opens_as_the_app_opens_it(tiny_onnx, tmp_path):
    from emotion.classifier import OnnxRuntimeClassifier
    from training.quantize import quantize_onnx

    faces = np.random.default_rng(5).integers(0, 256, (64, 48, 48), dtype=np.uint8)
    out = quantize_onnx(tiny_onnx, tmp_path / "tiny.int8.onnx", faces)
    float_model, int8 = OnnxRuntimeClassifier(tiny_onnx), OnnxRuntimeClassifier(out)
    assert (float_model.precision, int8.precision) == ("float32", "int8")
    assert int8.model_id == float_model.model_id and int8.decision == float_model.decision
    assert int8.logits(faces).shape == (64, 7)
    assert out.stat().st_size < tiny_onnx.stat().st_size
    assert [f.name for f in tmp_path.iterdir()] == ["tiny.int8.onnx"]  # nothing half-written left beside it


@needs(FERPLUS_ZIP)
def test_the_int8_model_gives_the_float_models_labels(tmp_path):
    """The shipped FER+ model in int8, calibrated on training faces: the same label on nearly every
    validation face."""
    from emotion.classifier import OnnxRuntimeClassifier
    from training.quantize import quantize_onnx

    train = load_dataset("ferplus", FERPLUS_ZIP, "train").labelled()
    val = load_dataset("ferplus", FERPLUS_ZIP, "val").labelled()
    shipped = SHIPPED_CHECKPOINT.with_suffix(".onnx")
    int8 = OnnxRuntimeClassifier(quantize_onnx(shipped, tmp_path / "int8.onnx", train.images[:512]))
    faces = val.images[:1000]
    same = (int8(faces).argmax(1) == OnnxRuntimeClassifier(shipped)(faces).argmax(1)).mean()
    assert same >= 0.98


def test_combined_networks_run_as_one_model_on_every_backend(tmp_path, tiny_checkpoint, capsys):
    """training.combine writes one checkpoint of two networks that also read the mirror image; its ONNX
    export gives the same logits on OpenCV, ONNX Runtime and torch, and it can still be trained from nowhere."""
    from emotion.checkpoint import save_checkpoint
    from emotion.classifier import OpenCVClassifier, TorchClassifier
    from emotion.model import CustomDeepEmotionNet, EmotionNetConfig, MirrorEnsemble
    from training.combine import main as combine_main
    from training.export import export_onnx
    from training.train import main as train_main

    torch.manual_seed(1)
    other = tmp_path / "other.pt"
    save_checkpoint(other, CustomDeepEmotionNet(load_checkpoint(tiny_checkpoint).model.config),
                    mean=FER_MEAN, std=FER_STD, metadata={"dataset": "none"})
    combined = tmp_path / "combined.pt"
    assert combine_main(["--checkpoint", str(tiny_checkpoint), str(other), "--mirror", "--out", str(combined)]) == 0
    assert "has no decision rule yet" in capsys.readouterr().err  # said, so the user runs training.decide
    ckpt = load_checkpoint(combined)
    assert isinstance(ckpt.model, MirrorEnsemble) and ckpt.decision.prior is None  # training.decide chooses anew
    assert [m["checkpoint"] for m in ckpt.metadata["members"]] == [os.path.relpath(tiny_checkpoint),
                                                                   os.path.relpath(other)]

    faces = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    onnx = export_onnx(combined, tmp_path / "combined.onnx")  # fails itself if a runtime disagrees
    torch_logits = TorchClassifier(combined, "cpu", precision="float32").logits(faces)
    np.testing.assert_allclose(OpenCVClassifier(onnx).logits(faces), torch_logits, atol=1e-4)
    np.testing.assert_allclose(TorchClassifier(combined, "cpu", precision="float32").logits(faces[:, :, ::-1]),
                               torch_logits, atol=1e-4)  # the mirror image reads as the face

    capsys.readouterr()
    wider = tmp_path / "wider.pt"
    save_checkpoint(wider, CustomDeepEmotionNet(EmotionNetConfig()), mean=FER_MEAN, std=FER_STD,
                    metadata={"dataset": "none"})
    refused = tmp_path / "refused.pt"
    refusals = {
        (str(tiny_checkpoint), str(wider), "--mirror", "--out", str(refused)): "another shape",
        (str(combined), "--mirror", "--out", str(refused)): "already a combined model",
        (str(tiny_checkpoint), "--out", str(refused)): "One network without --mirror",
        (str(tiny_checkpoint), str(tiny_checkpoint), "--out", str(refused)): "named twice",
        (str(tiny_checkpoint), os.path.relpath(tiny_checkpoint), "--out", str(refused)): "named twice",  # one file
        (str(onnx), "--mirror", "--out", str(refused)): "exported ONNX model; this needs the .pt",
        (str(tiny_checkpoint), "--mirror", "--out", str(tmp_path)): "is a folder",
        (str(tiny_checkpoint), "--mirror", "--out", str(tmp_path / "refused.onnx")): "writes a .pt file",
    }
    for argv, refusal in refusals.items():
        assert combine_main(["--checkpoint", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and refusal in err and "\n" not in err, err
        assert not refused.exists() and not (tmp_path / "refused.onnx").exists()
    data = fer_csv_of(tmp_path / "fer.csv")
    assert train_main(["--dataset", "fer2013", "--data", str(data), "--out", str(tmp_path / "more"), "--epochs", "1",
                       "--init", str(combined), "--workers", "0", "--threads", "1"]) == 2
    assert "combined model" in capsys.readouterr().err


def test_evaluate_takes_a_shipped_model_by_name_from_any_folder(fer_csv, tmp_path):
    """After `pip install .` the shipped files live in site-packages; their name is how a user reaches them."""
    import importlib.util

    def evaluate(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "training.evaluate", "--dataset", "fer2013", "--data", str(fer_csv),
                   "--split", "test", *args]
        return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})

    runs = {}
    for backend in ("auto", "opencv"):
        result = evaluate("--checkpoint", "emotion_ferplus", "--backend", backend)
        assert result.returncode == 0, result.stderr
        runs[backend] = json.loads(result.stdout)
        assert runs[backend]["checkpoint"] == "emotion_ferplus" and runs[backend]["n"] == 14
    # as the app runs it: int8 on ONNX Runtime where installed; float32 on OpenCV when asked
    has_ort = importlib.util.find_spec("onnxruntime") is not None
    assert runs["auto"]["precision"] == ("int8" if has_ort else "float32")
    assert (runs["opencv"]["backend"], runs["opencv"]["precision"]) == ("opencv", "float32")
    png = os.path.abspath(tmp_path / runs["opencv"]["confusion_png"])
    assert os.path.dirname(png) == str(tmp_path)  # in the folder it ran from, not in site-packages
    missing = evaluate("--checkpoint", "emotion_ferplus.onnx", "--no-plot")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.count("\n") == 1 and "emotion_ferplus, emotion_fer2013" in missing.stderr
    assert "leave it out" not in missing.stderr  # --checkpoint is required here


def _pixels_of(image: np.ndarray, rgb: tuple[int, int, int]) -> int:
    return int((np.abs(image.astype(int) - rgb[::-1]).sum(2) < 30).sum())


def test_training_curves_show_balanced_accuracy_and_a_single_epoch(tmp_path):
    from training.metrics import plot_training_curves
    from training.train import LOG_FIELDS

    log = tmp_path / "log.csv"  # as train.py writes it
    log.write_text(",".join(LOG_FIELDS) + "\n1,0.01,1.05,0.78,0.60,0.856,0.78,0.814,-0.5,74\n")
    old_log = tmp_path / "old_log.csv"  # runs from before balanced selection logged no balanced accuracy
    old_log.write_text("epoch,lr,train_loss,train_acc,val_loss,val_acc,seconds\n1,0.01,1.05,0.78,0.60,0.856,74\n")
    for source in (log, old_log):
        plot_training_curves(source, tmp_path / f"{source.stem}.png")
    new, old = (cv2.imread(str(tmp_path / f"{name}.png")) for name in ("log", "old_log"))
    axes = new[: int(0.85 * new.shape[0])]  # above the legends, which sit under the axes
    assert _pixels_of(axes, (31, 119, 180)) > 20  # one epoch is a visible point per curve, not an invisible line
    assert _pixels_of(new, (44, 160, 44)) > 20 and _pixels_of(old, (44, 160, 44)) == 0  # the balanced curve
