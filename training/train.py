"""Train CustomDeepEmotionNet on FER2013 or FER+, on its own or taught by other models.

    python -m training.train --dataset ferplus --data ../shared/datasets/ferplus.zip --out runs/ferplus
    torchrun --nproc_per_node 2 -m training.train ...     (data-parallel: gloo on CPUs, nccl on GPUs)

Every epoch writes <out>/last.pt (with optimiser state, for --resume) and, when the model
improves on validation, <out>/best.pt (weights and decision rule, what the app ships), both
atomically; plus <out>/log.csv and <out>/curves.png. "Improves" means, by default, a higher
balanced accuracy (mean per-class recall) at the best logit adjustment whose accuracy stays
at or above --accuracy-floor (training.balance); --select accuracy keeps the plain argmax.
Interrupt at any time and continue with `python -m training.train --resume <out>/last.pt`:
the run continues bit-for-bit from the last finished epoch, with the recipe stored in the checkpoint.

Distillation: `--teacher A.pt B.pt ...` averages the teachers' temperature-softened
probabilities on the very view the student sees (before --corrupt damages the student's copy,
so teachers say what the face shows, and the student learns to see it through the damage),
and mixes them with the dataset's own targets by --distill. Both terms see the student's
logit-adjusted logits, so teachers are read as following the training prior. Teachers trained
for balance already give the balanced posterior: distil them with --logit-adjust 0 (and
--distill 1), or the prior would be counted twice.

Balance: `--logit-adjust TAU` trains with the logit-adjusted loss (Menon et al. 2021; TAU 1 is
the balanced softmax of Ren et al. 2020): the loss sees logits + TAU * log(prior), so the
network's own logits learn the class-balanced posterior.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import shlex
import sys
import time
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from emotion.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from emotion.classes import NUM_CLASSES
from emotion.cli import error, warn
from emotion.decision import DecisionRule, class_prior
from emotion.device import cpu_has_bf16, resolve_device
from emotion.errors import MoodtunesError
from emotion.model import CustomDeepEmotionNet, EmotionNetConfig, MirrorEnsemble
from emotion.preprocess import FER_MEAN, FER_STD, normalize
from training.augment import AugmentedFaces, build_augmentation, mix_batch
from training.balance import SELECTIONS, DecisionChoice, choose_tau, confusions_by_tau
from training.cli import script_parser
from training.datasets import DATA_HELP, DATASETS, FaceData, load_dataset, resize_images
from training.metrics import PlotUnavailable, plot_training_curves
from training.provenance import git_commit, portable_args, portable_path
from training.sam import batchnorm_stats_frozen, climb_back, climb_to_sharpest
from training.teachers import Teachers

LOG_FIELDS = ("epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "val_macro_f1",
              "val_balanced_acc", "tau", "seconds")  # val_*: at the epoch's chosen tau
# The EmotionNetConfig fields the command line sets (the others keep their defaults).
ARCHITECTURE_ARGS = ("widths", "depths", "dropout", "input_size")
# What a resumed run takes from today's command line rather than from its checkpoint: the machine and how long.
MACHINE_ARGS = ("device", "threads", "workers", "resume", "stop_after")


def build_parser() -> argparse.ArgumentParser:
    p = script_parser("training.train", __doc__)
    p.add_argument("--dataset", choices=DATASETS, help="required unless resuming")
    p.add_argument("--data", help=f"{DATA_HELP} (required unless resuming; then it defaults to the original path)")
    p.add_argument("--out", help="run folder for checkpoints, log.csv and curves.png "
                                 "(required unless resuming; then it defaults to the checkpoint's folder)")
    # model
    p.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128, 256, 256])
    p.add_argument("--depths", type=int, nargs="+", default=[2, 2, 2, 2, 2])
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--input-size", type=int, default=48, help="faces are resized to this side (data is 48x48)")
    p.add_argument("--init", metavar="CKPT",
                   help="start from this checkpoint's network and weights (its widths, depths and input size) "
                        "and train it further with this recipe")
    # optimisation
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=128, help="global batch, split evenly across torchrun ranks")
    p.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd", help="sgd = SGD with Nesterov momentum")
    p.add_argument("--lr", type=float, default=0.05, help="peak learning rate")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--scheduler", choices=("cosine", "plateau"), default="cosine")
    p.add_argument("--warmup-epochs", type=int, default=2, help="linear warm-up (cosine schedule only)")
    p.add_argument("--plateau-patience", type=int, default=5, help="epochs without improvement before lr /= 10")
    p.add_argument("--early-stop", type=int, default=20,
                   help="stop after this many epochs without a better validation score (see --select)")
    p.add_argument("--select", choices=SELECTIONS, default="balanced",
                   help="what picks best.pt and its decision rule on validation: balanced = the highest balanced "
                        "accuracy over logit adjustments whose accuracy is at least --accuracy-floor; "
                        "accuracy = the highest plain accuracy (tau 0)")
    p.add_argument("--accuracy-floor", type=float, default=0.0, metavar="PERCENT",
                   help="validation accuracy a decision must keep to be chosen (e.g. 85.5); 0 = none")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--soft-targets", action="store_true", help="ferplus: learn the annotators' vote distribution")
    p.add_argument("--class-weights", action="store_true", help="weight the loss by inverse class frequency")
    p.add_argument("--logit-adjust", type=float, default=0.0, metavar="TAU",
                   help="logit-adjusted loss: the loss sees logits + TAU * log(class prior of the training "
                        "targets), so the logits themselves learn balance (1 = balanced softmax; 0 = off)")
    p.add_argument("--grad-clip", type=float, default=5.0, help="max gradient norm (0 = off)")
    p.add_argument("--sam", type=float, default=0.0, metavar="RHO",
                   help="sharpness-aware minimisation: take each step's gradient at the worst weights within RHO "
                        "(e.g. 0.05); twice the compute per step; 0 = off")
    p.add_argument("--ema", type=float, default=0.0,
                   help="keep an exponential moving average of the weights with this decay per step (e.g. 0.999) "
                        "and validate and ship it; 0 = off")
    # teachers
    p.add_argument("--teacher", nargs="+", default=[], metavar="CKPT",
                   help="checkpoints whose averaged predictions teach the student (FER+ and FER2013 models alike)")
    p.add_argument("--distill", type=float, default=0.5, help="weight of the teachers against the dataset's targets")
    p.add_argument("--temperature", type=float, default=1.0, help="softens teachers and student for distillation")
    # augmentation
    p.add_argument("--rotate", type=float, default=15.0, help="max rotation in degrees")
    p.add_argument("--shift", type=float, default=0.1, help="max translation as a fraction of the side")
    p.add_argument("--scale", type=float, default=0.15, help="max zoom in or out as a fraction")
    p.add_argument("--jitter", type=float, default=0.4, help="brightness and contrast jitter")
    p.add_argument("--erase", type=float, default=0.5, help="probability of random erasing")
    p.add_argument("--corrupt", type=float, default=0.0,
                   help="probability that the student's view gets one webcam corruption (noise, blur, low light, "
                        "gamma, JPEG, downscale, hand, glasses) at a random strength")
    p.add_argument("--mixup", type=float, default=0.0, help="mixup Beta(a, a) parameter (0 = off)")
    p.add_argument("--cutmix", type=float, default=0.0,
                   help="CutMix Beta(a, a) parameter (0 = off); with --mixup too, each batch picks one")
    # system
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (torchrun: each rank its GPU)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = torch's default)")
    p.add_argument("--workers", type=int, default=1, help="DataLoader processes for augmentation (per rank)")
    p.add_argument("--amp", choices=("auto", "off"), default="auto",
                   help="auto: bfloat16 autocast on CPUs that support it, fp16/bf16 AMP on CUDA")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", help="continue from a last.pt written by an earlier run")
    p.add_argument("--stop-after", type=int, default=0,
                   help="end this invocation after N epochs (resume later); 0 = run to --epochs")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    if not args.resume and not (args.dataset and args.data and args.out):
        p.error("--dataset, --data and --out are required (unless you --resume a run)")
    return args


def training_targets(data: FaceData, args: argparse.Namespace) -> tuple[FaceData, torch.Tensor]:
    """Faces to train on and their targets as distributions: vote shares, or one-hot labels."""
    if args.soft_targets:
        if data.soft_targets is None:
            raise MoodtunesError("--soft-targets needs vote distributions; only --dataset ferplus has them.")
        return data, torch.from_numpy(data.soft_targets)
    data = data.labelled()
    return data, F.one_hot(torch.from_numpy(data.labels), NUM_CLASSES).float()


def class_weights(data: FaceData) -> torch.Tensor:
    counts = np.bincount(data.labels[data.labels >= 0], minlength=NUM_CLASSES).astype(np.float64)
    weights = counts.sum() / (NUM_CLASSES * np.maximum(counts, 1))
    return torch.tensor(weights, dtype=torch.float32)


def learning_rate(epoch: float, args: argparse.Namespace) -> float:
    """Cosine schedule with linear warm-up, as a function of (fractional) epoch."""
    if epoch < args.warmup_epochs:
        return args.lr * (epoch + 1e-3) / args.warmup_epochs
    progress = (epoch - args.warmup_epochs) / max(args.epochs - args.warmup_epochs, 1)
    return 0.5 * args.lr * (1 + math.cos(math.pi * min(progress, 1.0)))


def autocast_dtype(device: torch.device, mode: str) -> torch.dtype | None:
    if mode == "off":
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_bf16():
        return torch.bfloat16
    return None


@torch.inference_mode()
def predict_logits(model: torch.nn.Module, images: np.ndarray, mean: float, std: float, device: torch.device,
                   batch_size: int = 512) -> np.ndarray:
    """Logits (N, 7) as float32 of the model being trained, for uint8 faces (N, H, W), run in its own dtype."""
    model.eval()
    dtype = next(model.parameters()).dtype
    out = []
    for start in range(0, len(images), batch_size):
        batch = normalize(torch.from_numpy(images[start : start + batch_size]), mean, std).to(device, dtype)
        out.append(model(batch.contiguous(memory_format=torch.channels_last)).float().cpu())
    return torch.cat(out).numpy()


def validate(model: torch.nn.Module, data: FaceData, prior: tuple[float, ...], args: argparse.Namespace,
             device: torch.device, rank: int, world: int) -> tuple[DecisionChoice, float]:
    """The decision rule chosen on ``data`` (with its metrics) and the plain cross-entropy there.

    Each rank takes every world-th face; confusion matrices and losses add up across ranks.
    """
    images, labels = data.images[rank::world], data.labels[rank::world]
    logits = predict_logits(model, images, FER_MEAN, FER_STD, device)
    confusions = torch.from_numpy(confusions_by_tau(logits, labels, prior))
    nll = torch.tensor([F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels), reduction="sum").item()],
                       dtype=torch.float64)
    if world > 1:
        confusions, nll = confusions.to(device), nll.to(device)
        dist.all_reduce(confusions)
        dist.all_reduce(nll)
    choice = choose_tau(confusions.cpu().numpy(), args.accuracy_floor / 100, args.select)
    return choice, nll.item() / max(choice.metrics["n"], 1)


@dataclass(frozen=True)
class Process:
    """This process's place in the run: under torchrun one of ``world`` processes, one per device."""

    device: torch.device
    rank: int = 0
    world: int = 1
    distributed: bool = False

    @property
    def master(self) -> bool:
        """Rank 0 alone prints and writes files."""
        return self.rank == 0


def setup_distributed(args: argparse.Namespace) -> Process:
    """Data parallel under torchrun, as nanoGPT does it: one process per device, gradients averaged by
    DDP (gloo on CPUs, nccl on GPUs); without torchrun, the one process on --device."""
    if int(os.environ.get("RANK", -1)) == -1:
        return Process(resolve_device(args.device))
    use_cuda = args.device != "cpu" and torch.cuda.is_available()
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    device = torch.device(f"cuda:{int(os.environ['LOCAL_RANK'])}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    return Process(device, dist.get_rank(), dist.get_world_size(), distributed=True)


def model_config(args: argparse.Namespace) -> EmotionNetConfig:
    """The network that --widths, --depths, --dropout and --input-size describe."""
    return EmotionNetConfig(**{name: getattr(args, name) for name in ARCHITECTURE_ARGS})


def starting_point(args: argparse.Namespace) -> tuple[argparse.Namespace, Checkpoint | None]:
    """The run's recipe, and the checkpoint whose network it trains (None: a fresh network).

    --resume: the recipe stored in last.pt (with today's defaults for options it predates); only
    where the run writes, what data it reads and on what machine may change. --init: the command
    line's recipe, with the architecture of the network it trains further.
    """
    if args.resume:
        resumed = load_checkpoint(args.resume)
        if resumed.training_state is None:
            raise MoodtunesError(f"{args.resume} has no training state; resume from a last.pt, not a best.pt.")
        saved = {**vars(build_parser().parse_args([])), **resumed.training_state["args"]}
        saved.update({key: getattr(args, key) for key in MACHINE_ARGS})
        saved["out"] = args.out or str(Path(args.resume).parent)
        saved["data"] = args.data or saved["data"]
        return argparse.Namespace(**saved), resumed
    if args.init:
        start = load_checkpoint(args.init)
        if isinstance(start.model, MirrorEnsemble):
            raise MoodtunesError(f"{args.init} is a combined model (training.combine); --init takes one trained "
                                 "network, such as one of the members its metadata names.")
        # The recipe records the architecture it really trains: in the metadata, and for --resume.
        architecture = {name: start.model.config.to_dict()[name] for name in ARCHITECTURE_ARGS}
        return argparse.Namespace(**{**vars(args), **architecture}), start
    return args, None


def load_training_data(args: argparse.Namespace) -> tuple[FaceData, torch.Tensor, FaceData]:
    """Training faces with their targets (distributions), and the labelled validation faces, at the input size."""
    train_data = load_dataset(args.dataset, args.data, "train")
    val_data = load_dataset(args.dataset, args.data, "val").labelled()
    train_data.images = resize_images(train_data.images, args.input_size)
    val_data.images = resize_images(val_data.images, args.input_size)
    train_data, targets = training_targets(train_data, args)
    return train_data, targets, val_data


def build_model(args: argparse.Namespace, start: Checkpoint | None) -> CustomDeepEmotionNet:
    """The network to train: ``start``'s, with its weights (--init, --resume), or a fresh one of the recipe's shape."""
    if start is not None:
        return start.model
    torch.manual_seed(args.seed)  # the same --seed, the same initial weights
    return CustomDeepEmotionNet(model_config(args))


@dataclass
class Learner:
    """The network in training and all that updates it. Its state, with the model's weights, is what
    last.pt keeps for --resume."""

    model: CustomDeepEmotionNet
    wrapped: torch.nn.Module  # the model as forward and backward see it: inside DDP under torchrun
    optimizer: torch.optim.Optimizer
    plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None  # --scheduler plateau; else learning_rate()
    scaler: torch.amp.GradScaler
    ema: AveragedModel | None
    amp_dtype: torch.dtype | None  # autocast's dtype; None: float32 throughout

    @property
    def shipped(self) -> torch.nn.Module:
        """What is validated and written to best.pt: the EMA of the weights with --ema, else the model."""
        return self.ema.module if self.ema is not None else self.model

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The model's logits for a batch, as float32 whatever precision autocast ran it in."""
        with torch.autocast(x.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
            return self.wrapped(x).float()

    def state_dict(self) -> dict[str, Any]:
        """Optimiser, scheduler, GradScaler and EMA state: everything but the model's weights."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "plateau": self.plateau.state_dict() if self.plateau is not None else None,
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        if self.plateau is not None:
            self.plateau.load_state_dict(state["plateau"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])


def build_learner(model: CustomDeepEmotionNet, args: argparse.Namespace, process: Process) -> Learner:
    """The model on its device (channels-last), with its optimiser, schedule, GradScaler, EMA and DDP wrapper."""
    device = process.device
    model = model.to(device).to(memory_format=torch.channels_last)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(args.ema), use_buffers=True) if args.ema > 0 else None
    wrapped = (DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
               if process.distributed else model)
    if args.optimizer == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum, nesterov=True,
                                    weight_decay=args.weight_decay)
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    plateau = (torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.1,
                                                          patience=args.plateau_patience)
               if args.scheduler == "plateau" else None)
    amp_dtype = autocast_dtype(device, args.amp)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    return Learner(model, wrapped, optimizer, plateau, scaler, ema, amp_dtype)


@dataclass(frozen=True)
class StudentLoss:
    """The loss on a batch's logits: cross-entropy against the (mixed) targets, blended by --distill with
    the KL divergence to the teachers' probabilities when there are teachers.

    Both terms see the logit-adjusted logits: targets and teachers follow the training prior,
    which the adjustment supplies, so the logits themselves are left to learn balance.
    """

    offsets: torch.Tensor  # the logit adjustment, --logit-adjust TAU * log(training prior)
    class_weights: torch.Tensor | None  # --class-weights
    label_smoothing: float
    distill: float  # the teachers' share of the loss
    temperature: float

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, taught: torch.Tensor | None) -> torch.Tensor:
        adjusted = logits + self.offsets
        loss = F.cross_entropy(adjusted, targets, weight=self.class_weights, label_smoothing=self.label_smoothing)
        if taught is None:
            return loss
        t = self.temperature
        distill = -(taught * F.log_softmax(adjusted / t, 1)).sum(1).mean() * t * t
        return (1 - self.distill) * loss + self.distill * distill


def build_loss(args: argparse.Namespace, train_data: FaceData, prior: tuple[float, ...],
               device: torch.device) -> StudentLoss:
    """The loss the recipe asks for, on ``device``."""
    return StudentLoss(
        offsets=(args.logit_adjust * torch.log(torch.tensor(prior, dtype=torch.float32))).to(device),
        class_weights=class_weights(train_data).to(device) if args.class_weights else None,
        label_smoothing=args.label_smoothing,
        distill=args.distill,
        temperature=args.temperature,
    )


def build_loader(dataset: AugmentedFaces, args: argparse.Namespace, process: Process) -> DataLoader:
    """Each rank's share of the shuffled faces, in batches of --batch-size / world.

    The sampler shuffles by (seed, epoch); workers are re-created each epoch (not persistent) so
    their augmentation seeds come from train_one_epoch's per-epoch seed: that is what makes
    --resume exact.
    """
    sampler = DistributedSampler(dataset, num_replicas=process.world, rank=process.rank, shuffle=True,
                                 seed=args.seed, drop_last=True)
    return DataLoader(dataset, batch_size=args.batch_size // process.world, sampler=sampler, drop_last=True,
                      num_workers=args.workers)


def train_step(learner: Learner, loss_fn: StudentLoss, x: torch.Tensor, y: torch.Tensor,
               taught: torch.Tensor | None, args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step on a batch (with --sam, at the sharpest weights nearby); the loss and logits before it."""
    learner.optimizer.zero_grad(set_to_none=True)
    # With SAM the first gradient only picks the direction to climb: each rank uses its own, unsynced.
    syncless = isinstance(learner.wrapped, DistributedDataParallel) and args.sam > 0
    with learner.wrapped.no_sync() if syncless else nullcontext():
        logits = learner.logits(x)
        loss = loss_fn(logits, y, taught)
        learner.scaler.scale(loss).backward()
    if args.sam > 0:
        moved = climb_to_sharpest(learner.model, args.sam)
        learner.optimizer.zero_grad(set_to_none=True)
        with batchnorm_stats_frozen(learner.model):
            sharp_loss = loss_fn(learner.logits(x), y, taught)
        learner.scaler.scale(sharp_loss).backward()
        climb_back(moved)
    if args.grad_clip > 0:
        learner.scaler.unscale_(learner.optimizer)
        torch.nn.utils.clip_grad_norm_(learner.model.parameters(), args.grad_clip)
    learner.scaler.step(learner.optimizer)
    learner.scaler.update()
    if learner.ema is not None:
        learner.ema.update_parameters(learner.model)
    return loss, logits


def train_one_epoch(learner: Learner, loader: DataLoader, loss_fn: StudentLoss, teachers: Teachers | None,
                    epoch: int, args: argparse.Namespace, process: Process) -> tuple[float, float]:
    """One pass over the training faces; the mean loss and accuracy, over all ranks."""
    # Seeding per epoch (and per rank) makes a resumed run draw exactly what an uninterrupted one would.
    torch.manual_seed(args.seed * 1000 + epoch + 1_000_000 * process.rank)
    loader.sampler.set_epoch(epoch)
    learner.wrapped.train()
    totals = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, seen
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{args.epochs}", leave=False, dynamic_ncols=True,
               disable=not process.master)
    for step, (views, student_views, batch_targets) in enumerate(bar):
        if learner.plateau is None:
            for group in learner.optimizer.param_groups:
                group["lr"] = learning_rate(epoch + step / len(loader), args)
        (views, student_views), y = mix_batch([views.float(), student_views.float()], batch_targets, args)
        x = normalize(student_views, FER_MEAN, FER_STD).to(process.device, non_blocking=True)
        x = x.contiguous(memory_format=torch.channels_last)
        y = y.to(process.device, non_blocking=True)
        taught = teachers.probabilities(views, args.temperature) if teachers is not None else None
        loss, logits = train_step(learner, loss_fn, x, y, taught, args)
        totals += torch.tensor([loss.item() * len(y), (logits.argmax(1) == y.argmax(1)).sum().item(), len(y)],
                               dtype=torch.float64)
        if process.master:
            bar.set_postfix(loss=f"{totals[0] / totals[2]:.3f}", acc=f"{100 * totals[1] / totals[2]:.1f}%")
    if process.distributed:
        totals = totals.to(process.device)
        dist.all_reduce(totals)
        totals = totals.cpu()
    return (totals[0] / totals[2]).item(), (totals[1] / totals[2]).item()


@dataclass
class Progress:
    """How far the run has come. last.pt keeps it (training_state's "epoch", "best_score" and
    "stale_epochs"), so that --resume carries on where the run stopped."""

    epoch: int = -1  # the last finished epoch, from 0
    best_score: tuple[bool, float] = (False, 0.0)  # DecisionChoice.score of best.pt
    stale_epochs: int = 0  # epochs since best_score last rose, for --early-stop

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Progress:
        return cls(state["epoch"], tuple(state["best_score"]), state["stale_epochs"])

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "best_score": list(self.best_score), "stale_epochs": self.stale_epochs}

    def finish_epoch(self, epoch: int, score: tuple[bool, float]) -> bool:
        """Record an epoch's validation score; whether it beats every epoch before."""
        improved = score > self.best_score
        self.epoch = epoch
        self.best_score, self.stale_epochs = (score, 0) if improved else (self.best_score, self.stale_epochs + 1)
        return improved


@dataclass(frozen=True)
class EpochReport:
    """One epoch's numbers, as log.csv and the console show them."""

    epoch: int  # from 0
    lr: float
    train_loss: float
    train_acc: float
    val_loss: float
    choice: DecisionChoice  # the decision rule chosen on validation, with its metrics
    improved: bool
    seconds: float

    def row(self) -> dict[str, str]:
        """The epoch's line of log.csv, by LOG_FIELDS."""
        val = self.choice.metrics
        return dict(epoch=str(self.epoch + 1), lr=f"{self.lr:.6f}", train_loss=f"{self.train_loss:.4f}",
                    train_acc=f"{self.train_acc:.4f}", val_loss=f"{self.val_loss:.4f}",
                    val_acc=f"{val['accuracy']:.4f}", val_macro_f1=f"{val['macro_f1']:.4f}",
                    val_balanced_acc=f"{val['balanced_accuracy']:.4f}", tau=f"{self.choice.tau:g}",
                    seconds=f"{self.seconds:.1f}")

    def line(self, epochs: int) -> str:
        """The epoch's line on the console."""
        val, choice = self.choice.metrics, self.choice
        return (f"epoch {self.epoch + 1:3d}/{epochs} lr {self.lr:.5f} train loss {self.train_loss:.4f} acc "
                f"{100 * self.train_acc:.2f}% | val loss {self.val_loss:.4f} | tau {choice.tau:g}: balanced "
                f"{100 * val['balanced_accuracy']:.2f}% acc {100 * val['accuracy']:.2f}% f1 {val['macro_f1']:.3f}"
                f"{'' if choice.meets_floor else ' (below floor)'}{' *' if self.improved else ''} | "
                f"{self.seconds:.1f}s")


def run_metadata(args: argparse.Namespace, process: Process, train_size: int,
                 resumed: Checkpoint | None) -> dict[str, Any]:
    """What every checkpoint of the run records about how it was made."""
    if resumed is not None:  # a resumed run keeps the command that started it: that is the recipe
        command = resumed.metadata["command"]
    else:
        launcher = (f"torchrun --nproc_per_node {process.world} -m training.train " if process.distributed
                    else "python -m training.train ")
        command = launcher + shlex.join(portable_path(a) for a in sys.argv[1:])
    return {
        "dataset": args.dataset,
        "train_size": train_size,
        "command": command,
        "git_commit": git_commit(),
        "torch": str(torch.__version__),
        "device": f"{process.world} x {process.device.type}" if process.distributed else str(process.device),
        "args": portable_args(args),
    }


def save_epoch(out: Path, learner: Learner, report: EpochReport, progress: Progress, prior: tuple[float, ...],
               metadata: dict[str, Any], args: argparse.Namespace) -> None:
    """best.pt (the shipped network) if the epoch improved, and last.pt (the model and its training
    state, for --resume) always, both with the decision rule chosen this epoch."""
    val = report.choice.metrics
    metadata = {**metadata, "epoch": report.epoch + 1,
                "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "val_metrics": {k: val[k] for k in ("n", "accuracy", "macro_f1", "balanced_accuracy",
                                                    "per_class_recall")}}
    decision = DecisionRule(prior, report.choice.tau)
    if report.improved:
        save_checkpoint(out / "best.pt", learner.shipped, mean=FER_MEAN, std=FER_STD, metadata=metadata,
                        decision=decision)
    state = {**progress.state_dict(), **learner.state_dict(), "args": vars(args)}
    save_checkpoint(out / "last.pt", learner.model, mean=FER_MEAN, std=FER_STD, metadata=metadata,
                    decision=decision, training_state=state)


def train(args: argparse.Namespace) -> Path:
    """Run the recipe in ``args`` (or continue a --resume'd run) to the end; the path of best.pt."""
    args, start = starting_point(args)
    resumed = start if args.resume else None
    process = setup_distributed(args)
    if args.batch_size % process.world:
        raise MoodtunesError(f"--batch-size {args.batch_size} does not split evenly over {process.world} processes.")
    if args.threads:
        torch.set_num_threads(args.threads)

    train_data, targets, val_data = load_training_data(args)
    prior = class_prior(targets.numpy())
    learner = build_learner(build_model(args, start), args, process)
    loss_fn = build_loss(args, train_data, prior, process.device)
    teachers = Teachers(args.teacher, process.device, args.input_size, learner.amp_dtype) if args.teacher else None
    out = Path(args.out)  # made once data, model and teachers have loaded: a bad path leaves no empty run folder
    if process.master:
        out.mkdir(parents=True, exist_ok=True)
    progress = Progress()
    if resumed is not None:
        learner.load_state_dict(resumed.training_state)
        progress = Progress.from_state(resumed.training_state)
        if process.master:
            print(f"resumed from {args.resume} at epoch {progress.epoch + 1}, "
                  f"best validation score {100 * progress.best_score[1]:.2f}")
    loader = build_loader(AugmentedFaces(train_data.images, targets, build_augmentation(args), args.corrupt),
                          args, process)
    log_path = out / "log.csv"
    if process.master and resumed is None:
        with open(log_path, "w", newline="") as f:
            csv.writer(f).writerow(LOG_FIELDS)
    metadata = run_metadata(args, process, len(train_data), resumed)
    if process.master:
        print(f"training on {len(train_data)} faces, validating on {len(val_data)}, {process.world} x "
              f"{process.device}, autocast {learner.amp_dtype}, "
              f"{sum(p.numel() for p in learner.model.parameters()) / 1e6:.2f}M parameters"
              + (f", {len(args.teacher)} teacher(s)" if teachers else ""))

    start_epoch = progress.epoch + 1
    end_epoch = min(args.epochs, start_epoch + args.stop_after) if args.stop_after else args.epochs
    plotting = True
    for epoch in range(start_epoch, end_epoch):
        started = time.time()
        train_loss, train_acc = train_one_epoch(learner, loader, loss_fn, teachers, epoch, args, process)
        choice, val_loss = validate(learner.shipped, val_data, prior, args, process.device, process.rank,
                                    process.world)
        if learner.plateau is not None:
            learner.plateau.step(choice.score[1])
        improved = progress.finish_epoch(epoch, choice.score)
        if process.master:
            report = EpochReport(epoch, learner.optimizer.param_groups[0]["lr"], train_loss, train_acc, val_loss,
                                 choice, improved, time.time() - started)
            with open(log_path, "a", newline="") as f:
                csv.writer(f).writerow(report.row().values())
            print(report.line(args.epochs), flush=True)
            save_epoch(out, learner, report, progress, prior, metadata, args)
            if plotting:
                try:
                    plot_training_curves(log_path, out / "curves.png")
                except PlotUnavailable as exc:  # matplotlib is missing: say so once, train on
                    warn(str(exc))
                    plotting = False
        if progress.stale_epochs >= args.early_stop:
            if process.master:
                print(f"early stop: no better validation score for {args.early_stop} epochs")
            break
    if process.master:
        if end_epoch < args.epochs and progress.stale_epochs < args.early_stop:
            print(f"stopped after epoch {end_epoch}; continue with: "
                  f"python -m training.train --resume {out / 'last.pt'}")
        what = "balanced accuracy" if progress.best_score[0] and args.select == "balanced" else "accuracy"
        print(f"best validation {what} {100 * progress.best_score[1]:.2f}%; weights in {out / 'best.pt'}")
    if process.distributed:
        dist.destroy_process_group()
    return out / "best.pt"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        train(args)
    except MoodtunesError as exc:
        error(str(exc))
        return 2
    except KeyboardInterrupt:
        last = Path(args.out or Path(args.resume).parent) / "last.pt"
        print(f"\ninterrupted; continue with: python -m training.train --resume {last}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
