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
and mixes them with the dataset's own targets by --distill.

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
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from torchvision.transforms import v2
from tqdm import tqdm

from emotion.checkpoint import load_checkpoint, save_checkpoint
from emotion.classes import NUM_CLASSES
from emotion.decision import DecisionRule, class_prior
from emotion.device import cpu_has_bf16, resolve_device
from emotion.errors import MoodtunesError
from emotion.model import CustomDeepEmotionNet, fuse_batchnorm
from emotion.preprocess import FER_MEAN, FER_STD, normalize
from training.balance import SELECTIONS, DecisionChoice, choose_tau, confusions_by_tau
from training.cli import script_parser
from training.corruptions import corrupt_random
from training.datasets import DATA_HELP, DATASETS, FaceData, load_dataset, resize_images
from training.metrics import PlotUnavailable, plot_training_curves

LOG_FIELDS = ("epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "val_macro_f1",
              "val_balanced_acc", "tau", "seconds")  # val_*: at the epoch's chosen tau
# Arguments that name files: stored relative (or by name) in shipped metadata, see portable_path.
PATH_ARGS = ("data", "out", "resume", "teacher", "init")


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


class AugmentedFaces(Dataset):
    """uint8 faces (1, H, W) through per-sample augmentation: (view, student's view, target).

    The view is what teachers see; the student's view is the same picture, damaged by one
    webcam corruption with probability ``corrupt``.
    """

    def __init__(self, images: np.ndarray, targets: torch.Tensor, augment: v2.Transform, corrupt: float) -> None:
        self.images = torch.from_numpy(images).unsqueeze(1)
        self.targets = targets
        self.augment = augment
        self.corrupt = corrupt

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        view = self.augment(self.images[i])
        student_view = view
        if self.corrupt > 0 and torch.rand(()) < self.corrupt:
            # Seeded from torch's generator, which DataLoader seeds per worker and train() per epoch.
            rng = np.random.default_rng(int(torch.randint(2**62, ())))
            student_view = torch.from_numpy(corrupt_random(view[0].numpy(), rng)).unsqueeze(0)
        return view, student_view, self.targets[i]


def build_augmentation(args: argparse.Namespace) -> v2.Transform:
    # One RandomAffine does rotation, shift and zoom in a single resampling (half the cost
    # of a RandomResizedCrop followed by a rotation, and no double blur).
    return v2.Compose([
        v2.RandomHorizontalFlip(),
        v2.RandomAffine(degrees=args.rotate, translate=(args.shift, args.shift),
                        scale=(1 - args.scale, 1 + args.scale)),
        v2.ColorJitter(brightness=args.jitter, contrast=args.jitter),
        v2.RandomErasing(p=args.erase, scale=(0.02, 0.15), value=0),
    ])


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


def mix_batch(views: list[torch.Tensor], targets: torch.Tensor, args: argparse.Namespace
              ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Mixup or CutMix, the same pairs and proportions for every view; targets mix likewise."""
    if args.mixup <= 0 and args.cutmix <= 0:
        return views, targets
    use_cutmix = args.cutmix > 0 and (args.mixup <= 0 or torch.rand(()) < 0.5)
    alpha = args.cutmix if use_cutmix else args.mixup
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    perm = torch.randperm(len(targets))
    if use_cutmix:
        h, w = views[0].shape[-2:]
        cut_h, cut_w = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
        cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
        y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
        x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
        mixed = []
        for v in views:
            v = v.clone()
            v[..., y0:y1, x0:x1] = v[perm][..., y0:y1, x0:x1]
            mixed.append(v)
        lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)  # the share actually kept
    else:
        mixed = [lam * v + (1 - lam) * v[perm] for v in views]
    return mixed, lam * targets + (1 - lam) * targets[perm]


@torch.no_grad()
def climb_to_sharpest(model: torch.nn.Module, rho: float) -> list[tuple[torch.nn.Parameter, torch.Tensor]]:
    """SAM's first half (Foret et al. 2021): move the weights ``rho`` along their gradient, towards the
    highest loss nearby. Returns each moved parameter with its original value, for :func:`climb_back`.

    The direction is the gradient's, so a GradScaler's scale does not change it; a gradient that
    overflowed (GradScaler then skips the step anyway) moves nothing.
    """
    params = [p for p in model.parameters() if p.grad is not None]
    if not params:
        return []
    # By hand: torch.nn.utils.get_total_norm arrived in torch 2.6, and the project supports 2.5.
    norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params])))
    if not math.isfinite(norm) or norm == 0:
        return []
    moved = []
    for p in params:
        moved.append((p, p.detach().clone()))
        p.add_(p.grad, alpha=rho / norm)
    return moved


@torch.no_grad()
def climb_back(moved: list[tuple[torch.nn.Parameter, torch.Tensor]]) -> None:
    """Restore the weights :func:`climb_to_sharpest` moved, exactly (adding and subtracting would round)."""
    for p, original in moved:
        p.copy_(original)


@contextmanager
def batchnorm_stats_frozen(model: torch.nn.Module) -> Iterator[None]:
    """BatchNorm layers normalise as in training but keep their running statistics: SAM's second
    forward pass runs on perturbed weights, whose activations are not the network's own."""
    layers = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.momentum = 0.0  # running = (1 - momentum) * running + momentum * batch: unchanged
    try:
        yield
    finally:
        for m, momentum in zip(layers, momenta, strict=True):
            m.momentum = momentum


class Teachers:
    """An ensemble of checkpoints run for their averaged, temperature-softened probabilities."""

    def __init__(self, paths: list[str], device: torch.device, input_size: int, amp_dtype: torch.dtype | None):
        self.models, self.norms = [], []
        for path in paths:
            ckpt = load_checkpoint(path)
            if ckpt.input_size != input_size:
                raise MoodtunesError(f"Teacher {path} takes {ckpt.input_size} px faces, the student {input_size} px; "
                                     "train the student with --input-size to match.")
            model = fuse_batchnorm(ckpt.model).to(device).to(memory_format=torch.channels_last)
            self.models.append(model)
            self.norms.append((ckpt.mean, ckpt.std))
        self.device, self.amp_dtype = device, amp_dtype

    @torch.no_grad()  # not inference_mode: the result enters the student's loss, which autograd tracks
    def probabilities(self, views: torch.Tensor, temperature: float) -> torch.Tensor:
        """Averaged probabilities for uint8 (or mixed float 0..255) faces (N, 1, H, W)."""
        total = 0
        for model, (mean, std) in zip(self.models, self.norms, strict=True):
            x = normalize(views, mean, std).to(self.device).contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                                enabled=self.amp_dtype is not None):
                logits = model(x).float()
            total = total + (logits / temperature).softmax(1)
        return total / len(self.models)


def portable_path(path: str) -> str:
    """``path`` as stored in shipped metadata: as given, or relative to the working folder, or its name.

    Absolute paths would publish the layout of the machine that trained the model.
    """
    if not os.path.isabs(path):
        return path
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return Path(path).name


def portable_args(args: argparse.Namespace) -> dict:
    out = dict(vars(args))
    for key in PATH_ARGS:
        value = out.get(key)
        if isinstance(value, list):
            out[key] = [portable_path(v) for v in value]
        elif value:
            out[key] = portable_path(value)
    return out


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                             cwd=Path(__file__).resolve().parent)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=Path(__file__).resolve().parent).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


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


def train(args: argparse.Namespace) -> Path:
    resume_state = None
    if args.resume:
        resumed = load_checkpoint(args.resume)
        if resumed.training_state is None:
            raise MoodtunesError(f"{args.resume} has no training state; resume from a last.pt, not a best.pt.")
        resume_state = resumed.training_state
        # The run's recipe comes from the checkpoint (with today's defaults for options it predates);
        # only where and on what machine may change.
        saved = {**vars(build_parser().parse_args([])), **resume_state["args"]}
        for key in ("device", "threads", "workers", "resume", "stop_after"):
            saved[key] = getattr(args, key)
        saved["out"] = args.out or str(Path(args.resume).parent)
        saved["data"] = args.data or saved["data"]
        args = argparse.Namespace(**saved)

    # Data parallel under torchrun, as nanoGPT does it: one process per device, gradients
    # averaged by DDP, rank 0 alone writes.
    distributed = int(os.environ.get("RANK", -1)) != -1
    rank, world = 0, 1
    if distributed:
        use_cuda = args.device != "cpu" and torch.cuda.is_available()
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        if use_cuda:
            device = torch.device(f"cuda:{int(os.environ['LOCAL_RANK'])}")
            torch.cuda.set_device(device)
        else:
            device = torch.device("cpu")
    else:
        device = resolve_device(args.device)
    master = rank == 0
    if args.batch_size % world:
        raise MoodtunesError(f"--batch-size {args.batch_size} does not split evenly over {world} processes.")
    out = Path(args.out)
    if master:
        out.mkdir(parents=True, exist_ok=True)
    if args.threads:
        torch.set_num_threads(args.threads)

    start = None
    if args.init and resume_state is None:  # the network to train further decides the architecture
        start = load_checkpoint(args.init)
        config = start.model.config()
        args.widths, args.depths, args.input_size = config["widths"], config["depths"], config["input_size"]
        args.dropout = config["dropout"]

    train_data = load_dataset(args.dataset, args.data, "train")
    val_data = load_dataset(args.dataset, args.data, "val").labelled()
    train_data.images = resize_images(train_data.images, args.input_size)
    val_data.images = resize_images(val_data.images, args.input_size)
    train_data, targets = training_targets(train_data, args)
    prior = class_prior(targets.numpy())

    torch.manual_seed(args.seed)
    raw_model = CustomDeepEmotionNet(widths=tuple(args.widths), depths=tuple(args.depths), dropout=args.dropout,
                                     input_size=args.input_size)
    if start is not None:
        raw_model.load_state_dict(start.model.state_dict())
    if resume_state is not None:
        raw_model.load_state_dict(resumed.model.state_dict())
    raw_model = raw_model.to(device).to(memory_format=torch.channels_last)
    ema = (AveragedModel(raw_model, multi_avg_fn=get_ema_multi_avg_fn(args.ema), use_buffers=True)
           if args.ema > 0 else None)
    model = DistributedDataParallel(raw_model, device_ids=[device.index] if device.type == "cuda" else None) \
        if distributed else raw_model

    if args.optimizer == "sgd":
        optimizer = torch.optim.SGD(raw_model.parameters(), lr=args.lr, momentum=args.momentum, nesterov=True,
                                    weight_decay=args.weight_decay)
    else:
        optimizer = torch.optim.AdamW(raw_model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    plateau = (torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.1,
                                                          patience=args.plateau_patience)
               if args.scheduler == "plateau" else None)
    amp_dtype = autocast_dtype(device, args.amp)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    loss_weights = class_weights(train_data).to(device) if args.class_weights else None
    loss_offsets = (args.logit_adjust * torch.log(torch.tensor(prior, dtype=torch.float32))).to(device)
    teachers = Teachers(args.teacher, device, args.input_size, amp_dtype) if args.teacher else None

    def student_loss(x: torch.Tensor, y: torch.Tensor, taught: torch.Tensor | None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's loss on a batch (targets mixed with the teachers' probabilities) and its logits.

        Both terms see the logit-adjusted logits: targets and teachers follow the training prior,
        which the adjustment supplies, so the logits themselves are left to learn balance.
        """
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            logits = model(x).float()
        adjusted = logits + loss_offsets
        loss = F.cross_entropy(adjusted, y, weight=loss_weights, label_smoothing=args.label_smoothing)
        if taught is not None:
            t = args.temperature
            distill = -(taught * F.log_softmax(adjusted / t, 1)).sum(1).mean() * t * t
            loss = (1 - args.distill) * loss + args.distill * distill
        return loss, logits

    start_epoch, best_score, stale_epochs = 0, (False, 0.0), 0
    if resume_state is not None:
        optimizer.load_state_dict(resume_state["optimizer"])
        if plateau is not None:
            plateau.load_state_dict(resume_state["plateau"])
        scaler.load_state_dict(resume_state["scaler"])
        if ema is not None:
            ema.load_state_dict(resume_state["ema"])
        start_epoch = resume_state["epoch"] + 1
        best_score, stale_epochs = tuple(resume_state["best_score"]), resume_state["stale_epochs"]
        if master:
            print(f"resumed from {args.resume} at epoch {start_epoch}, best validation score {100 * best_score[1]:.2f}")

    dataset = AugmentedFaces(train_data.images, targets, build_augmentation(args), args.corrupt)
    # The sampler shuffles by (seed, epoch) and gives each rank its share; workers are re-created
    # each epoch (not persistent) so their augmentation seeds come from the per-epoch seed below:
    # that is what makes --resume exact.
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=args.seed,
                                 drop_last=True)
    loader = DataLoader(dataset, batch_size=args.batch_size // world, sampler=sampler, drop_last=True,
                        num_workers=args.workers)
    log_path = out / "log.csv"
    if master and start_epoch == 0:
        with open(log_path, "w", newline="") as f:
            csv.writer(f).writerow(LOG_FIELDS)
    metadata_base = {
        "dataset": args.dataset,
        "train_size": len(train_data),
        # A resumed run keeps the command that started it: that is the recipe.
        "command": resumed.metadata["command"] if resume_state is not None else (
            (f"torchrun --nproc_per_node {world} -m training.train " if distributed else "python -m training.train ")
            + shlex.join(portable_path(a) for a in sys.argv[1:])),
        "git_commit": git_commit(),
        "torch": str(torch.__version__),
        "device": f"{world} x {device.type}" if distributed else str(device),
        "args": portable_args(args),
    }
    if master:
        print(f"training on {len(train_data)} faces, validating on {len(val_data)}, {world} x {device}, "
              f"autocast {amp_dtype}, {sum(p.numel() for p in raw_model.parameters()) / 1e6:.2f}M parameters"
              + (f", {len(args.teacher)} teacher(s)" if teachers else ""))

    end_epoch = min(args.epochs, start_epoch + args.stop_after) if args.stop_after else args.epochs
    plot_warned = False
    for epoch in range(start_epoch, end_epoch):
        # Seeding per epoch (and per rank) makes a resumed run draw exactly what an uninterrupted one would.
        torch.manual_seed(args.seed * 1000 + epoch + 1_000_000 * rank)
        sampler.set_epoch(epoch)
        model.train()
        started = time.time()
        totals = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, seen
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{args.epochs}", leave=False, dynamic_ncols=True,
                   disable=not master)
        for step, (views, student_views, batch_targets) in enumerate(bar):
            if plateau is None:
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(epoch + step / len(loader), args)
            (views, student_views), y = mix_batch([views.float(), student_views.float()], batch_targets, args)
            x = normalize(student_views, FER_MEAN, FER_STD).to(device, non_blocking=True)
            x = x.contiguous(memory_format=torch.channels_last)
            y = y.to(device, non_blocking=True)
            taught = teachers.probabilities(views, args.temperature) if teachers is not None else None
            optimizer.zero_grad(set_to_none=True)
            # With SAM the first gradient only picks the direction to climb: each rank uses its own, unsynced.
            with model.no_sync() if distributed and args.sam > 0 else nullcontext():
                loss, logits = student_loss(x, y, taught)
                scaler.scale(loss).backward()
            if args.sam > 0:
                moved = climb_to_sharpest(raw_model, args.sam)
                optimizer.zero_grad(set_to_none=True)
                with batchnorm_stats_frozen(raw_model):
                    sharp_loss, _ = student_loss(x, y, taught)
                scaler.scale(sharp_loss).backward()
                climb_back(moved)
            if args.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(raw_model.parameters(), args.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            if ema is not None:
                ema.update_parameters(raw_model)
            totals += torch.tensor([loss.item() * len(y), (logits.argmax(1) == y.argmax(1)).sum().item(), len(y)],
                                   dtype=torch.float64)
            if master:
                bar.set_postfix(loss=f"{totals[0] / totals[2]:.3f}", acc=f"{100 * totals[1] / totals[2]:.1f}%")
        if distributed:
            totals = totals.to(device)
            dist.all_reduce(totals)
            totals = totals.cpu()
        train_loss, train_acc = (totals[0] / totals[2]).item(), (totals[1] / totals[2]).item()

        shipped = ema.module if ema is not None else raw_model
        choice, val_loss = validate(shipped, val_data, prior, args, device, rank, world)
        val = choice.metrics
        if plateau is not None:
            plateau.step(choice.score[1])
        lr = optimizer.param_groups[0]["lr"]
        improved = choice.score > best_score
        best_score, stale_epochs = (choice.score, 0) if improved else (best_score, stale_epochs + 1)
        if master:
            row = dict(epoch=epoch + 1, lr=f"{lr:.6f}", train_loss=f"{train_loss:.4f}", train_acc=f"{train_acc:.4f}",
                       val_loss=f"{val_loss:.4f}", val_acc=f"{val['accuracy']:.4f}",
                       val_macro_f1=f"{val['macro_f1']:.4f}", val_balanced_acc=f"{val['balanced_accuracy']:.4f}",
                       tau=f"{choice.tau:g}", seconds=f"{time.time() - started:.1f}")
            with open(log_path, "a", newline="") as f:
                csv.writer(f).writerow(row.values())
            print(f"epoch {epoch + 1:3d}/{args.epochs} lr {lr:.5f} train loss {row['train_loss']} acc "
                  f"{100 * train_acc:.2f}% | val loss {row['val_loss']} | tau {choice.tau:g}: balanced "
                  f"{100 * val['balanced_accuracy']:.2f}% acc {100 * val['accuracy']:.2f}% f1 {val['macro_f1']:.3f}"
                  f"{'' if choice.meets_floor else ' (below floor)'}{' *' if improved else ''} | {row['seconds']}s",
                  flush=True)
            metadata = {**metadata_base, "epoch": epoch + 1,
                        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        "val_metrics": {k: val[k] for k in ("n", "accuracy", "macro_f1", "balanced_accuracy",
                                                            "per_class_recall")}}
            decision = DecisionRule(prior, choice.tau)
            if improved:
                save_checkpoint(out / "best.pt", shipped, mean=FER_MEAN, std=FER_STD, metadata=metadata,
                                decision=decision)
            state = {
                "epoch": epoch,
                "optimizer": optimizer.state_dict(),
                "plateau": plateau.state_dict() if plateau is not None else None,
                "scaler": scaler.state_dict(),
                "ema": ema.state_dict() if ema is not None else None,
                "best_score": list(best_score),
                "stale_epochs": stale_epochs,
                "args": vars(args),
            }
            save_checkpoint(out / "last.pt", raw_model, mean=FER_MEAN, std=FER_STD, metadata=metadata,
                            decision=decision, training_state=state)
            try:
                plot_training_curves(log_path, out / "curves.png")
            except PlotUnavailable as exc:
                if not plot_warned:
                    print(f"warning: {exc}", file=sys.stderr)
                    plot_warned = True
        if stale_epochs >= args.early_stop:
            if master:
                print(f"early stop: no better validation score for {args.early_stop} epochs")
            break
    if master:
        if end_epoch < args.epochs and stale_epochs < args.early_stop:
            print(f"stopped after epoch {end_epoch}; continue with: "
                  f"python -m training.train --resume {out / 'last.pt'}")
        what = "balanced accuracy" if best_score[0] and args.select == "balanced" else "accuracy"
        print(f"best validation {what} {100 * best_score[1]:.2f}%; weights in {out / 'best.pt'}")
    if distributed:
        dist.destroy_process_group()
    return out / "best.pt"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        train(args)
    except MoodtunesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        last = Path(args.out or Path(args.resume).parent) / "last.pt"
        print(f"\ninterrupted; continue with: python -m training.train --resume {last}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
