"""Quantise an exported model to int8 for ONNX Runtime on the CPU, and check it on validation faces.

    python -m training.quantize --model checkpoints/emotion_ferplus.onnx --dataset ferplus \\
        --data data/ferplus --out runs/emotion_ferplus.int8.onnx
    python main.py --checkpoint runs/emotion_ferplus.int8.onnx --backend onnxruntime

ONNX Runtime's static quantisation (QDQ format, 7-bit int8 weights per output channel, uint8
activations) with its ranges calibrated on 512 training faces. The file keeps the float model's
moodtunes metadata (classes, normalisation, decision rule, source checksum), so the app runs it
as it runs the float twin, and reports its precision as int8. On the shipped FER+ model and a
2-core CPU with VNNI it took 0.19 instead of 0.58 ms per face in a batch of eight (0.28 instead
of 0.79 for one face); on this release's FER+ model and a CPU without VNNI it scored 86.11
against 86.14 % on FER2013Valid (balanced 0.826 against 0.827; 99.53 % of the faces given the
same label). Needs the `onnx` package (pip install "moodtunes[train]").
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from emotion.classifier import OnnxRuntimeClassifier
from emotion.cli import error
from emotion.errors import MoodtunesError
from emotion.preprocess import normalize
from training.cli import add_dataset_arguments, output_file, script_parser
from training.datasets import load_dataset
from training.evaluate import classifier_probabilities
from training.metrics import summarize

CALIBRATION_FACES = 512


def quantize_onnx(model: str | Path, out: str | Path, calibration_faces: np.ndarray) -> Path:
    """Write ``out`` (atomically): ``model`` in int8, its activation ranges measured on ``calibration_faces``
    (uint8, N x side x side), with ``model``'s metadata; returns ``out``."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source = OnnxRuntimeClassifier(model)  # refuses a file that is not a moodtunes model, in one line
    batches = [normalize(calibration_faces[i : i + 64], source.mean, source.std)
               for i in range(0, len(calibration_faces), 64)]
    graph = onnx.load(str(model), load_external_data=False)  # its input's name, and the metadata to keep
    input_name = graph.graph.input[0].name

    class Faces(CalibrationDataReader):
        def get_next(self) -> dict | None:
            return {input_name: batches.pop()} if batches else None

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written next to the target, checked, then renamed: a failed run never replaces a good file.
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.stem}.") as tmp:
        candidate, prepared = Path(tmp) / out.name, Path(tmp) / "prepared.onnx"
        # ONNX Runtime's own first step for static quantisation: shapes inferred and the graph optimised.
        quant_pre_process(str(model), str(prepared))
        # reduce_range: 7-bit weights. ONNX Runtime's uint8 x int8 kernels on x86-64 CPUs with AVX2 but
        # without VNNI (AMD Zen2/Zen3, Intel before Ice Lake: many ordinary laptops) add pairs of products
        # in int16, which saturates with full-range weights; the result then depends on the CPU. On such
        # a CPU (AVX2 only) the FER+ model with 8-bit weights gave the float model's label to 94.4 % of
        # 1,500 validation faces, with 7-bit weights 99.3 %; ONNX Runtime's documented remedy, and the
        # same file gives the same labels on every CPU.
        quantize_static(str(prepared), str(candidate), Faces(), quant_format=QuantFormat.QDQ, per_channel=True,
                        reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        quantized = onnx.load(str(candidate))
        del quantized.metadata_props[:]
        quantized.metadata_props.extend(prop for prop in graph.metadata_props if prop.key != "precision")
        quantized.metadata_props.add(key="precision", value="int8")
        onnx.save(quantized, str(candidate))
        OnnxRuntimeClassifier(candidate)  # opens as the app opens it
        candidate.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    p = script_parser("training.quantize", __doc__)
    p.add_argument("--model", required=True, help="a moodtunes .onnx written by python -m training.export")
    add_dataset_arguments(p)
    p.add_argument("--out", help="the .onnx to write (default: next to --model, ending .int8.onnx)")
    args = p.parse_args(argv)
    try:
        out = output_file(args.out, ".onnx") if args.out else Path(args.model).with_suffix(".int8.onnx")
        train = load_dataset(args.dataset, args.data, "train").labelled()
        val = load_dataset(args.dataset, args.data, "val").labelled()
        picked = np.random.default_rng(0).choice(len(train.images), min(CALIBRATION_FACES, len(train.images)),
                                                 replace=False)
        quantize_onnx(args.model, out, train.images[picked])
        runs = {name: OnnxRuntimeClassifier(path) for name, path in (("float", args.model), ("int8", out))}
    except MoodtunesError as exc:
        error(str(exc))
        return 2
    labels = {name: classifier_probabilities(classifier, val.images).argmax(1) for name, classifier in runs.items()}
    report = {"int8": str(out), "float": args.model, "val_faces": len(val.labels),
              "same_label_share": round(float((labels["float"] == labels["int8"]).mean()), 4)}
    for name, predicted in labels.items():
        metrics = summarize(val.labels, predicted)
        report[f"{name}_val"] = {key: round(metrics[key], 4) for key in ("accuracy", "balanced_accuracy", "macro_f1")}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
