"""Pack dataset splits as uint8 ``.npz`` shards: what travels to a GPU machine, and loads in seconds.

    python -m training.pack --dataset ferplus --data ../shared/datasets/ferplus.zip \\
        --out data/ferplus --split train val --shard-mib 20

Train with ``--data data/ferplus`` (the folder). Each split is ``{split}-000.npz``,
``{split}-001.npz``, ... of at most --shard-mib before compression, plus a manifest that names
the dataset and counts the faces, so a missing shard is reported instead of training on part
of the data. A machine whose upload is capped (the device tool carries 64 MiB per call with
the repository) can take the shards a few per call.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

from emotion.cli import error
from emotion.errors import MoodtunesError
from training.cli import add_dataset_arguments, script_parser
from training.datasets import PACK_MANIFEST, SPLITS, FaceData, load_dataset


def pack_split(data: FaceData, out: Path, shard_mib: float) -> int:
    """Write ``data`` as ``{split}-NNN.npz`` shards in ``out`` (each replaced atomically); returns the shard count."""
    for old in out.glob(f"{data.split}-*.npz"):
        old.unlink()
    per_shard = max(1, int(shard_mib * 2**20) // data.images[0].nbytes)
    shards = range(0, len(data), per_shard)
    for number, start in enumerate(shards):
        arrays = {"images": data.images[start : start + per_shard],
                  "labels": data.labels[start : start + per_shard].astype(np.int8)}
        if data.soft_targets is not None:
            arrays["soft_targets"] = data.soft_targets[start : start + per_shard]
        final = out / f"{data.split}-{number:03d}.npz"
        partial = final.with_name(final.name + ".partial")
        with open(partial, "wb") as f:  # a file object: np.savez would add ".npz" to the name
            np.savez_compressed(f, **arrays)
        os.replace(partial, final)
    return len(shards)


def main(argv: list[str] | None = None) -> int:
    p = script_parser("training.pack", __doc__)
    add_dataset_arguments(p)
    p.add_argument("--out", required=True, help="folder for the shards and manifest (data/ is kept out of git)")
    p.add_argument("--split", nargs="+", choices=SPLITS, default=list(SPLITS))
    p.add_argument("--shard-mib", type=float, default=20.0, help="faces per shard, in MiB of uint8 pixels")
    args = p.parse_args(argv)
    out = Path(args.out)
    manifest_path = out / PACK_MANIFEST
    try:
        out.mkdir(parents=True, exist_ok=True)
        manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
        if manifest.get("dataset", args.dataset) != args.dataset:
            raise MoodtunesError(f"{out} already holds {manifest['dataset']}: pack {args.dataset} into another folder.")
        manifest = {"dataset": args.dataset, "splits": manifest.get("splits", {})}
        for split in args.split:
            data = load_dataset(args.dataset, args.data, split)
            manifest["splits"].pop(split, None)  # while its shards are rewritten, the split is not there
            manifest_path.write_text(json.dumps(manifest, indent=1))
            shards = pack_split(data, out, args.shard_mib)
            manifest["splits"][split] = {"faces": len(data), "shards": shards}
            manifest_path.write_text(json.dumps(manifest, indent=1))
            size = sum(f.stat().st_size for f in out.glob(f"{split}-*.npz")) / 2**20
            print(f"{split}: {len(data)} faces in {shards} shard(s), {size:.1f} MiB", file=sys.stderr)
    except (MoodtunesError, OSError, ValueError) as exc:
        error(str(exc))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
