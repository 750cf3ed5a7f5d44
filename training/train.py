"""Train CustomDeepEmotionNet on FER2013 or FER+.

    python -m training.train --dataset ferplus --data ../shared/datasets/ferplus.zip --out runs/ferplus

Every epoch writes <out>/last.pt (with optimiser state, for --resume) and, when validation
accuracy improves, <out>/best.pt (weights only, what the app ships), both atomically; plus
<out>/log.csv and <out>/curves.png. Interrupt at any time and continue with
`python -m training.train --resume <out>/last.pt`: the run continues bit-for-bit from the
last finished epoch, with the recipe stored in the checkpoint.
"""

from __future__ import annotations

import argparse
import csv
import math
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2
from tqdm import tqdm

from emotion.checkpoint import load_checkpoint, save_checkpoint
from emotion.classes import NUM_CLASSES
from emotion.device import cpu_has_bf16, resolve_device
from emotion.errors import MoodtunesError
from emotion.model import CustomDeepEmotionNet
from emotion.preprocess import FER_MEAN, FER_STD, normalize
from training.datasets import DATASETS, FaceData, load_dataset, resize_images
from training.evaluate import predict_probabilities
from training.metrics import plot_training_curves, summarize

LOG_FIELDS = ("epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "val_macro_f1", "seconds")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=DATASETS, help="required unless resuming")
    p.add_argument("--data", help="fer2013: .csv/.csv.xz or image folders/.zip; ferplus: folder or .zip "
                                  "(required unless resuming; then it defaults to the original path)")
    p.add_argument("--out", help="run folder for checkpoints, log.csv and curves.png "
                                 "(required unless resuming; then it defaults to the checkpoint's folder)")
    # model
    p.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128, 256, 256])
    p.add_argument("--depths", type=int, nargs="+", default=[2, 2, 2, 2, 2])
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--input-size", type=int, default=48, help="faces are resized to this side (data is 48x48)")
    # optimisation
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd", help="sgd = SGD with Nesterov momentum")
    p.add_argument("--lr", type=float, default=0.05, help="peak learning rate")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--scheduler", choices=("cosine", "plateau"), default="cosine")
    p.add_argument("--warmup-epochs", type=int, default=2, help="linear warm-up (cosine schedule only)")
    p.add_argument("--plateau-patience", type=int, default=5, help="epochs without improvement before lr /= 10")
    p.add_argument("--early-stop", type=int, default=20,
                   help="stop after this many epochs without a better validation accuracy")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--soft-targets", action="store_true", help="ferplus: learn the annotators' vote distribution")
    p.add_argument("--class-weights", action="store_true", help="weight the loss by inverse class frequency")
    p.add_argument("--grad-clip", type=float, default=5.0, help="max gradient norm (0 = off)")
    # augmentation
    p.add_argument("--rotate", type=float, default=15.0, help="max rotation in degrees")
    p.add_argument("--shift", type=float, default=0.1, help="max translation as a fraction of the side")
    p.add_argument("--scale", type=float, default=0.15, help="max zoom in or out as a fraction")
    p.add_argument("--jitter", type=float, default=0.4, help="brightness and contrast jitter")
    p.add_argument("--erase", type=float, default=0.5, help="probability of random erasing")
    # system
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = torch's default)")
    p.add_argument("--workers", type=int, default=1, help="DataLoader processes for augmentation")
    p.add_argument("--amp", choices=("auto", "off"), default="auto",
                   help="auto: bfloat16 autocast on CPUs that support it, fp16/bf16 AMP on CUDA")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", help="continue from a last.pt written by an earlier run")
    p.add_argument("--stop-after", type=int, default=0,
                   help="end this invocation after N epochs (resume later); 0 = run to --epochs")
    args = p.parse_args(argv)
    if not args.resume and not (args.dataset and args.data and args.out):
        p.error("--dataset, --data and --out are required (unless you --resume a run)")
    return args


class AugmentedFaces(Dataset):
    """uint8 faces (1, H, W) through per-sample torchvision v2 augmentation, with targets."""

    def __init__(self, images: np.ndarray, targets: torch.Tensor, augment: v2.Transform) -> None:
        self.images = torch.from_numpy(images).unsqueeze(1)
        self.targets = targets
        self.augment = augment

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.augment(self.images[i]), self.targets[i]


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
    """Faces to train on and their targets: class indices, or vote distributions."""
    if args.soft_targets:
        if data.soft_targets is None:
            raise MoodtunesError("--soft-targets needs vote distributions; only --dataset ferplus has them.")
        return data, torch.from_numpy(data.soft_targets)
    data = data.labelled()
    return data, torch.from_numpy(data.labels)


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


def train(args: argparse.Namespace) -> Path:
    resume_state = None
    if args.resume:
        resumed = load_checkpoint(args.resume)
        if resumed.training_state is None:
            raise MoodtunesError(f"{args.resume} has no training state; resume from a last.pt, not a best.pt.")
        resume_state = resumed.training_state
        saved = resume_state["args"]
        # The run's recipe comes from the checkpoint; only where and on what machine may change.
        for key in ("device", "threads", "workers", "resume", "stop_after"):
            saved[key] = getattr(args, key)
        saved["out"] = args.out or str(Path(args.resume).parent)
        saved["data"] = args.data or saved["data"]
        args = argparse.Namespace(**saved)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)

    train_data = load_dataset(args.dataset, args.data, "train")
    val_data = load_dataset(args.dataset, args.data, "val").labelled()
    train_data.images = resize_images(train_data.images, args.input_size)
    val_data.images = resize_images(val_data.images, args.input_size)
    train_data, targets = training_targets(train_data, args)

    torch.manual_seed(args.seed)
    model = CustomDeepEmotionNet(widths=tuple(args.widths), depths=tuple(args.depths), dropout=args.dropout,
                                 input_size=args.input_size)
    if resume_state is not None:
        model.load_state_dict(resumed.model.state_dict())
    model = model.to(device).to(memory_format=torch.channels_last)

    if args.optimizer == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum, nesterov=True,
                                    weight_decay=args.weight_decay)
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    plateau = (torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.1,
                                                          patience=args.plateau_patience)
               if args.scheduler == "plateau" else None)
    amp_dtype = autocast_dtype(device, args.amp)
    scaler = torch.amp.GradScaler(enabled=amp_dtype == torch.float16)
    loss_weights = class_weights(train_data).to(device) if args.class_weights else None

    start_epoch, best_acc, stale_epochs = 0, 0.0, 0
    if resume_state is not None:
        optimizer.load_state_dict(resume_state["optimizer"])
        if plateau is not None:
            plateau.load_state_dict(resume_state["plateau"])
        scaler.load_state_dict(resume_state["scaler"])
        start_epoch = resume_state["epoch"] + 1
        best_acc, stale_epochs = resume_state["best_acc"], resume_state["stale_epochs"]
        print(f"resumed from {args.resume} at epoch {start_epoch}, best val accuracy {100 * best_acc:.2f}%")

    dataset = AugmentedFaces(train_data.images, targets, build_augmentation(args))
    shuffle_rng = torch.Generator()
    # Workers are re-created each epoch (not persistent) so their augmentation seeds come from
    # the per-epoch generator below: that is what makes --resume exact.
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, drop_last=True, generator=shuffle_rng,
                        num_workers=args.workers)
    log_path = out / "log.csv"
    if start_epoch == 0:
        with open(log_path, "w", newline="") as f:
            csv.writer(f).writerow(LOG_FIELDS)
    metadata_base = {
        "dataset": args.dataset,
        "train_size": len(train_data),
        "command": "python -m training.train " + shlex.join(sys.argv[1:]),
        "git_commit": git_commit(),
        "torch": str(torch.__version__),
        "device": str(device),
        "args": vars(args),
    }
    print(f"training on {len(train_data)} faces, validating on {len(val_data)}, device {device}, "
          f"autocast {amp_dtype}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters")

    end_epoch = min(args.epochs, start_epoch + args.stop_after) if args.stop_after else args.epochs
    for epoch in range(start_epoch, end_epoch):
        # Seeding per epoch makes a resumed run draw exactly what an uninterrupted one would.
        torch.manual_seed(args.seed * 1000 + epoch)
        shuffle_rng.manual_seed(args.seed * 1000 + epoch)
        model.train()
        started = time.time()
        total_loss, correct, seen = 0.0, 0, 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{args.epochs}", leave=False, dynamic_ncols=True)
        for step, (images, batch_targets) in enumerate(bar):
            if plateau is None:
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(epoch + step / len(loader), args)
            x = normalize(images, FER_MEAN, FER_STD).to(device, non_blocking=True)
            x = x.contiguous(memory_format=torch.channels_last)
            y = batch_targets.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y, weight=loss_weights, label_smoothing=args.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if args.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            labels = y.argmax(1) if y.ndim == 2 else y
            total_loss += loss.item() * len(y)
            correct += (logits.argmax(1) == labels).sum().item()
            seen += len(y)
            bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{100 * correct / seen:.1f}%")

        probs = predict_probabilities(model, val_data.images, FER_MEAN, FER_STD, device)
        val_loss = F.nll_loss(torch.from_numpy(probs).clamp_min(1e-8).log(), torch.from_numpy(val_data.labels)).item()
        val = summarize(val_data.labels, probs.argmax(1))
        if plateau is not None:
            plateau.step(val["accuracy"])
        lr = optimizer.param_groups[0]["lr"]
        improved = val["accuracy"] > best_acc
        best_acc, stale_epochs = (val["accuracy"], 0) if improved else (best_acc, stale_epochs + 1)
        row = dict(epoch=epoch + 1, lr=f"{lr:.6f}", train_loss=f"{total_loss / seen:.4f}",
                   train_acc=f"{correct / seen:.4f}", val_loss=f"{val_loss:.4f}", val_acc=f"{val['accuracy']:.4f}",
                   val_macro_f1=f"{val['macro_f1']:.4f}", seconds=f"{time.time() - started:.1f}")
        with open(log_path, "a", newline="") as f:
            csv.writer(f).writerow(row.values())
        print(f"epoch {epoch + 1:3d}/{args.epochs} lr {lr:.5f} train loss {row['train_loss']} acc "
              f"{100 * correct / seen:.2f}% | val loss {row['val_loss']} acc {100 * val['accuracy']:.2f}% "
              f"f1 {val['macro_f1']:.3f}{' *' if improved else ''} | {row['seconds']}s", flush=True)

        metadata = {**metadata_base, "epoch": epoch + 1,
                    "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "val_metrics": {k: val[k] for k in ("n", "accuracy", "macro_f1", "per_class_recall")}}
        if improved:
            save_checkpoint(out / "best.pt", model, mean=FER_MEAN, std=FER_STD, metadata=metadata)
        state = {
            "epoch": epoch,
            "optimizer": optimizer.state_dict(),
            "plateau": plateau.state_dict() if plateau is not None else None,
            "scaler": scaler.state_dict(),
            "best_acc": best_acc,
            "stale_epochs": stale_epochs,
            "args": vars(args),
        }
        save_checkpoint(out / "last.pt", model, mean=FER_MEAN, std=FER_STD, metadata=metadata, training_state=state)
        plot_training_curves(log_path, out / "curves.png")
        if stale_epochs >= args.early_stop:
            print(f"early stop: no better validation accuracy for {args.early_stop} epochs")
            break
    if end_epoch < args.epochs and stale_epochs < args.early_stop:
        print(f"stopped after epoch {end_epoch}; continue with: python -m training.train --resume {out / 'last.pt'}")
    print(f"best validation accuracy {100 * best_acc:.2f}%; weights in {out / 'best.pt'}")
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
