"""The network's shapes and the checkpoint format, including every kind of bad file."""

from __future__ import annotations

import os
import re

import pytest
import torch
from conftest import ROOT

from emotion.checkpoint import FORMAT, CheckpointError, load_checkpoint, save_checkpoint
from emotion.classes import EMOTIONS, NUM_CLASSES, STYLES
from emotion.model import CustomDeepEmotionNet, EmotionNetConfig, MirrorEnsemble, fuse_batchnorm
from emotion.preprocess import FER_MEAN, FER_STD


def test_classes_have_styles_and_circumplex_coordinates():
    assert EMOTIONS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    for name in EMOTIONS:
        style = STYLES[name]
        assert -1 <= style.valence <= 1 and -1 <= style.arousal <= 1
        assert re.fullmatch(r"#[0-9a-f]{6}", style.colour)
    assert STYLES["happy"].valence > 0 > STYLES["sad"].valence


@pytest.mark.parametrize("size", [48, 64])
def test_model_shapes(size):
    model = CustomDeepEmotionNet(EmotionNetConfig(input_size=size)).eval()
    assert len(model.features) == 5
    out = model(torch.zeros(3, 1, size, size))
    assert out.shape == (3, NUM_CLASSES)
    assert 2.0e6 < sum(p.numel() for p in model.parameters()) < 2.6e6


def test_model_layers_are_named_for_what_they_are():
    names = {name for name, _ in CustomDeepEmotionNet().named_children()}
    assert names == {"features", "global_pool", "dropout", "classifier"}
    block = CustomDeepEmotionNet().features[0]
    kinds = [type(m).__name__ for m in block]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]


def test_folding_batchnorm_keeps_the_outputs():
    torch.manual_seed(0)
    model = CustomDeepEmotionNet().eval()
    for m in model.modules():  # non-trivial statistics, as after training
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    fused = fuse_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    x = torch.randn(4, 1, 48, 48)
    torch.testing.assert_close(fused(x), model(x), atol=1e-4, rtol=1e-4)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # the original is untouched


def test_bad_architecture_arguments_fail():
    with pytest.raises(ValueError, match="same length"):
        EmotionNetConfig(widths=(8, 8), depths=(1,))
    with pytest.raises(ValueError, match="too small"):
        EmotionNetConfig(input_size=16)


def test_config_round_trips_through_the_checkpoint_dict():
    config = EmotionNetConfig(widths=(8, 8, 16), depths=(1, 2, 1), dropout=0.1, input_size=32)
    stored = config.to_dict()
    assert stored == {"num_classes": NUM_CLASSES, "in_channels": 1, "widths": [8, 8, 16], "depths": [1, 2, 1],
                      "dropout": 0.1, "input_size": 32}  # lists, as every checkpoint so far stores them
    assert EmotionNetConfig.from_dict(stored) == config
    assert EmotionNetConfig.from_dict(stored).widths == (8, 8, 16)  # tuples again: equal, hashable, immutable
    assert CustomDeepEmotionNet(config).config is config
    assert CustomDeepEmotionNet().config == EmotionNetConfig()
    with pytest.raises(TypeError):
        EmotionNetConfig.from_dict({**stored, "kernel": 5})


@pytest.mark.parametrize("name", ["emotion_ferplus", "emotion_fer2013"])
def test_shipped_checkpoints_load_into_the_default_config(name):
    """Files written before EmotionNetConfig (model_config as a dict of lists) load unchanged."""
    assert load_checkpoint(ROOT / "checkpoints" / f"{name}.pt").model.config == EmotionNetConfig()


def save(path, model=None, **metadata):
    model = model or CustomDeepEmotionNet(EmotionNetConfig(widths=(8, 8, 16, 16, 16), depths=(1, 1, 1, 1, 1)))
    save_checkpoint(path, model, mean=FER_MEAN, std=FER_STD, metadata=metadata or {"dataset": "test"})
    return model


def test_round_trip_restores_architecture_weights_and_metadata(tmp_path):
    path = tmp_path / "model.pt"
    model = save(path, dataset="ferplus", metrics={"accuracy": 0.5}).eval()
    loaded = load_checkpoint(path)
    assert loaded.classes == EMOTIONS and loaded.input_size == 48
    assert (loaded.mean, loaded.std) == (pytest.approx(FER_MEAN), pytest.approx(FER_STD))
    assert loaded.metadata == {"dataset": "ferplus", "metrics": {"accuracy": 0.5}}
    assert loaded.model.config == model.config
    assert torch.load(path, weights_only=True)["model_config"] == model.config.to_dict()
    x = torch.randn(2, 1, 48, 48)
    assert torch.equal(loaded.model(x), model(x))


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_truncated_file(tmp_path):
    path = tmp_path / "model.pt"
    save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated, corrupt"):
        load_checkpoint(path)


def test_text_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("these are not weights\n")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(path)


def test_foreign_pytorch_file(tmp_path):
    path = tmp_path / "resnet.pt"
    torch.save(CustomDeepEmotionNet().state_dict(), path)  # a bare state_dict, no format marker
    with pytest.raises(CheckpointError, match="not a moodtunes emotion checkpoint"):
        load_checkpoint(path)


def test_pickled_objects_are_refused_not_executed_and_named(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "payload": os.getcwd, "x": object()}, path)
    getcwd = f"{os.getcwd.__module__}.getcwd"  # posix.getcwd, or nt.getcwd on Windows
    with pytest.raises(CheckpointError, match="refused for safety") as refusal:
        load_checkpoint(path)
    assert f"(it pickles builtins.object, {getcwd})" in str(refusal.value)


def edit(path, **changes):
    payload = torch.load(path, weights_only=True)
    payload.update(changes)
    torch.save(payload, path)


def test_wrong_class_count(tmp_path):
    path = tmp_path / "model.pt"
    save(path)
    edit(path, classes=[*EMOTIONS, "contempt"])
    with pytest.raises(CheckpointError, match="predicts 8 classes"):
        load_checkpoint(path)


def test_weights_that_do_not_fit_the_architecture(tmp_path):
    path = tmp_path / "model.pt"
    save(path)
    other = CustomDeepEmotionNet(EmotionNetConfig(widths=(16, 16, 16, 16, 16), depths=(1, 1, 1, 1, 1)))
    edit(path, state_dict=other.state_dict())
    with pytest.raises(CheckpointError, match="do not fit the architecture"):
        load_checkpoint(path)


def test_incomplete_and_newer_files(tmp_path):
    path = tmp_path / "model.pt"
    save(path)
    payload = torch.load(path, weights_only=True)
    del payload["normalization"]
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="lacks normalization"):
        load_checkpoint(path)
    save(path)
    edit(path, format_version=99)
    with pytest.raises(CheckpointError, match="format version 99"):
        load_checkpoint(path)


def test_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    save(path, dataset="good")
    before = path.read_bytes()

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        save(path, dataset="new")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary file left behind
    assert load_checkpoint(path).metadata == {"dataset": "good"}


def tiny_network(seed: int) -> CustomDeepEmotionNet:
    torch.manual_seed(seed)
    return CustomDeepEmotionNet(EmotionNetConfig(widths=(8, 8, 16, 16, 16), depths=(1, 1, 1, 1, 1))).eval()


def test_mirror_ensemble_averages_its_networks_over_the_face_and_its_mirror_image():
    a, b = tiny_network(0), tiny_network(1)
    x = torch.randn(3, 1, 48, 48)
    mirrored = x.flip(-1)
    expected = (a(x) + a(mirrored) + b(x) + b(mirrored)) / 4
    torch.testing.assert_close(MirrorEnsemble([a, b], mirror=True)(x), expected)
    torch.testing.assert_close(MirrorEnsemble([a, b], mirror=False)(x), (a(x) + b(x)) / 2)
    alone = MirrorEnsemble([a], mirror=True)
    torch.testing.assert_close(alone(mirrored), alone(x))  # a face and its mirror image read alike
    torch.testing.assert_close(fuse_batchnorm(alone)(x), alone(x), atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="same shape"):
        MirrorEnsemble([a, CustomDeepEmotionNet().eval()], mirror=False)


def test_a_mirror_ensemble_round_trips_through_its_checkpoint(tmp_path):
    path = tmp_path / "combined.pt"
    model = save(path, MirrorEnsemble([tiny_network(0), tiny_network(1)], mirror=True)).eval()
    assert torch.load(path, weights_only=True)["ensemble"] == {"members": 2, "mirror": True}
    loaded = load_checkpoint(path).model
    assert isinstance(loaded, MirrorEnsemble) and loaded.mirror and len(loaded.members) == 2
    x = torch.randn(2, 1, 48, 48)
    assert torch.equal(loaded(x), model(x))
    for bad in ({"members": 0, "mirror": True}, {"members": 2}, "two"):
        edit(path, ensemble=bad)
        with pytest.raises(CheckpointError, match="ensemble entry"):
            load_checkpoint(path)
