"""PyTorch MLP adapter of the Estimator protocol.

The fitted state travels with the model: the feature standardisation (mean and
standard deviation of the training rows, and of the target for regression-like
tasks) is saved next to the weights, so serving scales exactly as training did.

Files: ``torch_state.pt`` (the module's ``state_dict``) and ``torch_meta.json``
(architecture, feature and target scalers, task, feature names, torch version).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from raycore.errors import DataError
from raycore.models.adapter import AdapterMeta, output_kind, select_features, shape_output

__all__ = ["MLP", "MLPArchitecture", "TorchEstimator"]

STATE_FILE = "torch_state.pt"


@dataclass(frozen=True)
class MLPArchitecture:
    """Everything needed to rebuild the network before loading its weights."""

    input_dim: int
    hidden: tuple[int, ...]
    output_dim: int
    dropout: float = 0.0

    def build(self) -> MLP:
        return MLP(self)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "hidden": list(self.hidden)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> MLPArchitecture:
        return cls(
            input_dim=int(raw["input_dim"]),
            hidden=tuple(int(h) for h in raw["hidden"]),
            output_dim=int(raw["output_dim"]),
            dropout=float(raw.get("dropout", 0.0)),
        )


class MLP(nn.Module):
    """Fully connected ReLU network: input → hidden layers → output logits/values."""

    def __init__(self, arch: MLPArchitecture) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = arch.input_dim
        for size in arch.hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            if arch.dropout > 0:
                layers.append(nn.Dropout(arch.dropout))
            width = size
        layers.append(nn.Linear(width, arch.output_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def standardise(values: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(values - mean) / std`` as float32; constant columns (std 0) are only centred."""
    safe = np.where(std > 0, std, 1.0)
    return ((values - mean) / safe).astype("float32")


class TorchEstimator:
    """A trained MLP plus its feature scaler behind the Estimator protocol.

    Regression-like tasks predict the network's single output, ``binary`` the
    sigmoid of its logit, ``multiclass`` the softmax over its ``n_classes`` logits.

    Example:
        >>> arch = MLPArchitecture(input_dim=2, hidden=(4,), output_dim=1)
        >>> est = TorchEstimator(arch.build(), arch=arch, mean=[0.0, 0.0], std=[1.0, 1.0],
        ...                      feature_names=["a", "b"], task="binary")
        >>> est.predict(pd.DataFrame({"a": [0.5], "b": [1.0]})).shape
        (1,)
    """

    family = "torch"

    def __init__(
        self,
        module: nn.Module,
        *,
        arch: MLPArchitecture,
        mean: list[float] | np.ndarray,
        std: list[float] | np.ndarray,
        feature_names: list[str],
        task: str = "regression",
        n_classes: int | None = None,
        target_mean: float = 0.0,
        target_std: float = 1.0,
    ) -> None:
        self.module = module.cpu().eval()
        self.arch = arch
        self.mean = np.asarray(mean, dtype="float64")
        self.std = np.asarray(std, dtype="float64")
        self.feature_names = list(feature_names)
        self.task = task
        self.n_classes = n_classes
        # Regression-like outputs are learnt on the standardised target.
        self.target_mean = float(target_mean)
        self.target_std = float(target_std)
        if (
            len(self.mean) != arch.input_dim
            or len(self.std) != arch.input_dim
            or len(feature_names) != arch.input_dim
        ):
            raise DataError(
                f"scaler/feature sizes ({len(self.mean)}, {len(self.std)}, {len(feature_names)}) "
                f"do not match the network input ({arch.input_dim})",
                hint="the model files are inconsistent; re-train",
            )

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        frame = select_features(features, self.feature_names)
        x = torch.from_numpy(standardise(frame.to_numpy(dtype="float64"), self.mean, self.std))
        with torch.inference_mode():
            out = self.module(x)
            kind = output_kind(self.task)
            if kind == "probability":
                out = torch.sigmoid(out[:, 0])
            elif kind == "probabilities":
                out = torch.softmax(out, dim=1)
            else:
                out = out[:, 0] * self.target_std + self.target_mean
        return shape_output(out.double().numpy(), task=self.task, n_classes=self.n_classes)

    def save(self, folder: Path) -> None:
        torch.save(self.module.state_dict(), folder / STATE_FILE)
        AdapterMeta(
            family=self.family,
            task=self.task,
            n_classes=self.n_classes,
            feature_names=self.feature_names,
            library_version=torch.__version__,
            extra={
                "arch": self.arch.to_dict(),
                "mean": self.mean.tolist(),
                "std": self.std.tolist(),
                "target_mean": self.target_mean,
                "target_std": self.target_std,
            },
        ).write(folder)

    @classmethod
    def load(cls, folder: Path) -> TorchEstimator:
        meta = AdapterMeta.read(folder, family=cls.family, current_version=torch.__version__)
        path = folder / STATE_FILE
        if meta is None or not path.is_file():
            raise DataError(
                f"no torch model and metadata in {folder}",
                hint="the bundle is incomplete; re-train",
            )
        arch = MLPArchitecture.from_dict(meta.extra["arch"])
        module = arch.build()
        module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return cls(
            module,
            arch=arch,
            mean=meta.extra["mean"],
            std=meta.extra["std"],
            feature_names=meta.feature_names,
            task=meta.task,
            n_classes=meta.n_classes,
            target_mean=meta.extra.get("target_mean", 0.0),
            target_std=meta.extra.get("target_std", 1.0),
        )
