"""Combine trained networks into one model, optionally reading each face's mirror image too (a MirrorEnsemble).

    python -m training.combine --checkpoint runs/a/best.pt runs/b/best.pt --mirror --out runs/combined.pt
    python -m training.decide --checkpoint runs/combined.pt ... --out checkpoints/emotion_fer2013.pt

The networks must share a shape, a dataset and a normalisation. Their logits are averaged, so
the combined model needs its own decision rule: the written checkpoint has none, and
training.decide chooses one on validation as for any trained model. Each member's own
checkpoint (name, SHA-256, metadata) is recorded in the new one's metadata.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

from emotion.checkpoint import load_checkpoint, save_checkpoint
from emotion.cli import error, warn
from emotion.errors import MoodtunesError
from emotion.model import MirrorEnsemble
from training.cli import output_file, script_parser
from training.provenance import git_commit, portable_path


def combine(checkpoints: list[str], mirror: bool, out: str | Path, command: str) -> MirrorEnsemble:
    """Write ``out`` (atomically): the networks of ``checkpoints`` as one MirrorEnsemble, without a decision rule."""
    resolved = [Path(path).resolve() for path in checkpoints]
    for i, path in enumerate(checkpoints):
        if resolved[i] in resolved[:i]:  # runs/a/best.pt and ./runs/a/best.pt are one file
            raise MoodtunesError(f"{path} is named twice; a network averaged with itself is that network.")
    members = [load_checkpoint(path) for path in checkpoints]
    first = members[0]
    for path, member in zip(checkpoints, members, strict=True):  # the first against itself: only the first test
        if isinstance(member.model, MirrorEnsemble):
            raise MoodtunesError(f"{path} is already a combined model; combine the networks it was made of.")
        if member.model.config != first.model.config:
            raise MoodtunesError(f"{path} has another shape than {checkpoints[0]}; only networks of one shape combine.")
        if member.metadata.get("dataset") != first.metadata.get("dataset"):
            raise MoodtunesError(f"{path} was trained on {member.metadata.get('dataset')}, {checkpoints[0]} on "
                                 f"{first.metadata.get('dataset')}; combine networks of one dataset.")
        if (member.mean, member.std) != (first.mean, first.std):
            raise MoodtunesError(f"{path} normalises faces differently from {checkpoints[0]}; "
                                 "they cannot share an input.")
    model = MirrorEnsemble([m.model for m in members], mirror)
    metadata = {
        "dataset": first.metadata.get("dataset"),
        "command": command,
        "git_commit": git_commit(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "members": [{"checkpoint": portable_path(path), "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
                     "metadata": member.metadata} for path, member in zip(checkpoints, members, strict=True)],
        "mirror": mirror,
    }
    save_checkpoint(out, model, mean=first.mean, std=first.std, metadata=metadata)
    return model


def main(argv: list[str] | None = None) -> int:
    p = script_parser("training.combine", __doc__)
    p.add_argument("--checkpoint", required=True, nargs="+", help="the .pt networks to combine (one or more)")
    p.add_argument("--mirror", action="store_true", help="also read each face's mirror image")
    p.add_argument("--out", required=True, help="the combined .pt to write")
    args = p.parse_args(argv)
    if len(args.checkpoint) == 1 and not args.mirror:
        error("One network without --mirror is that network: give more checkpoints, or --mirror.")
        return 2
    command = "python -m training.combine " + shlex.join(
        portable_path(a) for a in (sys.argv[1:] if argv is None else argv))
    try:
        model = combine(args.checkpoint, args.mirror, output_file(args.out, ".pt"), command)
    except MoodtunesError as exc:
        error(str(exc))
        return 2
    # Said, not only documented: until then the model decides by the plain argmax and cannot be calibrated.
    warn(f"{args.out} has no decision rule yet; choose one on validation: python -m training.decide "
         f"--checkpoint {args.out} --dataset ... --out {args.out}")
    print(json.dumps({"checkpoint": args.out, "members": len(model.members), "mirror": model.mirror}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
