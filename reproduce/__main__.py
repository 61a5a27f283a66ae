"""Index of every table and figure of the paper and the module that reproduces it.

    python -m reproduce            # list
    python -m reproduce.table6     # run one (each module has --help)
    python -m reproduce verify     # check every committed report (reproduce.verify)
"""
from __future__ import annotations

import importlib.util
import sys

from .engine import base

# (id, what the paper reports, module under reproduce/)
ENTRIES = [
    ("T1", "LeNet vs LeNet + ACDA top-1 error, CIFAR-10/100 (§4.1)", "table1"),
    ("T2", "ImageNet params and top-1/top-5, Ad-ResNet vs baselines (§4.1)", "table2"),
    ("T3", "Crowd counting MAE/MSE, ShanghaiTech-A and UCF-QNRF (§4.2)", "table3"),
    ("T4", "RealSR super-resolution PSNR/SSIM (§4.3)", "table4"),
    ("T5", "SIDD denoising PSNR/SSIM (§4.3)", "table5"),
    ("T6", "FLOPs and parameters of one layer, Conv vs ACDA (§4.4)", "table6"),
    ("T7", "Training memory and time, Conv vs DFN vs ACDA (§4.4)", "table7"),
    ("TA", "Ad-ResNet architectures (Appendix A.4)", "table2"),
    ("TB", "Ablation on the number of atoms m and scales S (Appendix A.6)", "tableB"),
    ("Fig 6", "Toy multi-scale pattern detection and translation test (§3.3)", "figure6"),
    ("Fig 7", "Scale-preference heatmaps of the basis coefficients (§4.2)", "figure7"),
    ("§3.2", "Memory of storing per-pixel filter gradients (26.8GB claim)", "sec32"),
    ("A.5", "Intra-image cosine distance of the basis coefficients (Appendix A.5)", "a5"),
]


def available(module: str) -> bool:
    return importlib.util.find_spec(f"reproduce.{module}") is not None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["verify"]:
        from .verify import main as verify

        return verify(argv[1:])
    base.parser(__doc__, "", report=False).parse_args(argv)
    width = max(len(e[0]) for e in ENTRIES)
    for ident, what, module in ENTRIES:
        where = f"python -m reproduce.{module}" if available(module) else "not yet"
        print(f"{ident:<{width}}  {where:<32}  {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
