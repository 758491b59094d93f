"""Peak dense throughput and HBM of the data-centre GPUs the book measures on.

Vendors print tensor-core peaks with 2:4 structured sparsity, twice the dense rate. A
training step's matmuls are dense, so MFU divides by the dense peak at the precision
the matmuls run in (bf16 for the book's runs). Print the table with:

    python snippets/ch02/aicluster/cli.py peaks
"""

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class GPU:
    name: str
    tflops: dict  # precision -> dense peak in TFLOP/s (int8: TOPS)
    hbm_gb: float  # decimal GB, as datasheets print it
    hbm_gbps: float


# --8<-- [start:peaks]
# fp32 is the CUDA-core rate (no tensor cores); tf32, bf16, fp16, fp8, fp4 and int8
# are tensor-core rates.
GPUS = {
    # NVIDIA A100 Tensor Core GPU datasheet, "A100 80GB SXM" column, which prints the
    # dense figure beside the sparse one: TF32 156, BF16 and FP16 312, INT8 624.
    "a100": GPU("A100 SXM 80GB",
                {"fp32": 19.5, "tf32": 156, "bf16": 312, "fp16": 312, "int8": 624},
                hbm_gb=80, hbm_gbps=2039),
    # NVIDIA H100 Tensor Core GPU datasheet, "H100 SXM" column. It prints sparse figures
    # (TF32 989, BF16 and FP16 1,979, FP8 and INT8 3,958) and says dense is half; the
    # H100 architecture whitepaper gives the dense ones as 494.7, 989.4 and 1,978.9.
    "h100": GPU("H100 SXM 80GB",
                {"fp32": 67, "tf32": 495, "bf16": 989, "fp16": 989, "fp8": 1979, "int8": 1979},
                hbm_gb=80, hbm_gbps=3350),
    # NVIDIA H200 Tensor Core GPU datasheet, "H200 SXM" column: the same sparse figures
    # as the H100 SXM (the same GH100 chip), with 141 GB of HBM3e at 4.8 TB/s.
    "h200": GPU("H200 SXM 141GB",
                {"fp32": 67, "tf32": 495, "bf16": 989, "fp16": 989, "fp8": 1979, "int8": 1979},
                hbm_gb=141, hbm_gbps=4800),
    # NVIDIA GB200 NVL72 / HGX B200 specifications, "HGX B200" per-GPU column: sparse
    # FP4 18, FP8 and INT8 9, FP16 and BF16 4.5, TF32 2.2 PFLOP/s, halved here; 180 GB
    # of HBM3e at 7.7 TB/s (the DGX B200 datasheet rounds to 8 TB/s); FP32 75 TFLOP/s.
    "b200": GPU("B200 HGX 180GB",
                {"fp32": 75, "tf32": 1100, "bf16": 2250, "fp16": 2250, "fp8": 4500,
                 "int8": 4500, "fp4": 9000},
                hbm_gb=180, hbm_gbps=7700),
}
# --8<-- [end:peaks]

# Names after normalising: torch.cuda.get_device_name() gives "NVIDIA H100 80GB HBM3",
# "NVIDIA A100-SXM4-80GB" or "NVIDIA H200". Other variants (PCIe, NVL, A100 40GB) have
# other clocks or memory and stay unknown rather than borrow these numbers.
ALIASES = {"a100": "a100", "a10080gb": "a100", "h100": "h100", "h10080gb": "h100",
           "h200": "h200", "h200141gb": "h200", "b200": "b200", "b200180gb": "b200"}
_NOISE = {"nvidia", "sxm", "sxm4", "sxm5", "sxm6", "hgx", "tensor", "core", "gpu"}


def lookup(name: str) -> GPU:
    """The GPU a name means, however it is spelled.

    >>> lookup("h100").name, lookup("H100-SXM").name, lookup("NVIDIA H100 80GB HBM3").name
    ('H100 SXM 80GB', 'H100 SXM 80GB', 'H100 SXM 80GB')
    >>> lookup("NVIDIA A100-SXM4-80GB").tflops["bf16"]
    312
    >>> lookup("H100 PCIe")
    Traceback (most recent call last):
    ...
    ValueError: unknown GPU 'H100 PCIe'; known: a100, h100, h200, b200
    """
    words = re.sub(r"[^a-z0-9]+", " ", name.lower()).split()
    key = "".join(w for w in words if w not in _NOISE and not re.fullmatch(r"hbm\d*e?", w))
    if key not in ALIASES:
        raise ValueError(f"unknown GPU {name!r}; known: {', '.join(GPUS)}")
    return GPUS[ALIASES[key]]


def peak_tflops(gpu: str, precision: str = "bf16") -> float:
    """Dense peak TFLOP/s of a GPU at a precision.

    >>> peak_tflops("h100", "bf16"), peak_tflops("a100", "BF16"), peak_tflops("b200", "fp8")
    (989, 312, 4500)
    >>> peak_tflops("a100", "fp8")
    Traceback (most recent call last):
    ...
    ValueError: A100 SXM 80GB has no fp8 peak; choose from fp32, tf32, bf16, fp16, int8
    """
    g = lookup(gpu)
    p = precision.lower()
    if p not in g.tflops:
        raise ValueError(f"{g.name} has no {precision} peak; choose from {', '.join(g.tflops)}")
    return g.tflops[p]
