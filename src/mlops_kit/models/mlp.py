"""A PyTorch MLP, the alternative framework: same interface as XGBoost.

Missing values are imputed with the training means and inputs standardised inside the model,
so callers pass the same feature matrix to either framework.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mlops_kit.models.base import ModelMeta, write_meta

WEIGHTS, SHAPE = "model.pt", "mlp.json"
DEFAULTS = {"hidden_sizes": [64, 32], "learning_rate": 1e-3, "epochs": 15, "batch_size": 256,
            "weight_decay": 0.0, "dropout": 0.0}


def _net(n_in: int, n_out: int, hidden: list[int], dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(n_in, width), nn.ReLU(), nn.Dropout(dropout)]
        n_in = width
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


class MLPModel:
    """Network weights plus the input scaling learnt on the training data."""

    def __init__(self, net: nn.Sequential, scale: dict[str, Any], meta: ModelMeta) -> None:
        self.net, self.scale, self.meta = net.eval(), scale, meta

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, meta: ModelMeta,
            params: dict[str, Any]) -> MLPModel:
        p = {**DEFAULTS, **params}
        torch.manual_seed(meta.seed)
        torch.set_num_threads(meta.threads)
        mean = np.nan_to_num(np.nanmean(X, axis=0))
        std = np.nan_to_num(np.nanstd(X, axis=0))
        std[std == 0] = 1.0
        scale = {"mean": mean.tolist(), "std": std.tolist(), "y_mean": 0.0, "y_std": 1.0}
        if meta.task == "regression":
            scale.update(y_mean=float(y.mean()), y_std=float(y.std() or 1.0))
        n_out = meta.n_classes if meta.task == "multiclass" else 1
        shape = {"hidden_sizes": list(p["hidden_sizes"]), "dropout": float(p["dropout"]),
                 "n_in": X.shape[1], "n_out": n_out}
        net = _net(X.shape[1], n_out, shape["hidden_sizes"], shape["dropout"])
        model = cls(net, {**scale, "shape": shape}, meta)
        model._train(model._inputs(X), model._targets(y), p)
        return model

    def _inputs(self, X: np.ndarray) -> torch.Tensor:
        mean, std = np.asarray(self.scale["mean"]), np.asarray(self.scale["std"])
        Z = (np.where(np.isnan(X), mean, X) - mean) / std
        return torch.as_tensor(Z, dtype=torch.float32)

    def _targets(self, y: np.ndarray) -> torch.Tensor:
        if self.meta.task == "multiclass":
            return torch.as_tensor(y, dtype=torch.long)
        t = (y - self.scale["y_mean"]) / self.scale["y_std"]
        return torch.as_tensor(t, dtype=torch.float32).unsqueeze(1)

    def _train(self, X: torch.Tensor, y: torch.Tensor, p: dict[str, Any]) -> None:
        loss_fn = {"binary": nn.BCEWithLogitsLoss(), "multiclass": nn.CrossEntropyLoss(),
                   "regression": nn.MSELoss()}[self.meta.task]
        opt = torch.optim.Adam(self.net.parameters(), lr=float(p["learning_rate"]),
                               weight_decay=float(p["weight_decay"]))
        gen = torch.Generator().manual_seed(self.meta.seed)
        batch = int(p["batch_size"])
        self.net.train()
        for _ in range(int(p["epochs"])):
            order = torch.randperm(len(X), generator=gen)
            for i in range(0, len(X), batch):
                idx = order[i:i + batch]
                opt.zero_grad()
                loss_fn(self.net(X[idx]), y[idx]).backward()
                opt.step()
        self.net.eval()

    def predict(self, X: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = self.net(self._inputs(X))
        if self.meta.task == "binary":
            return torch.sigmoid(out).squeeze(1).numpy().astype("float64")
        if self.meta.task == "multiclass":
            return torch.softmax(out, dim=1).numpy().astype("float64")
        y = out.squeeze(1).numpy().astype("float64")
        return y * self.scale["y_std"] + self.scale["y_mean"]

    def save(self, folder: Path) -> None:
        write_meta(self.meta, folder)
        torch.save(self.net.state_dict(), folder / WEIGHTS)
        (folder / SHAPE).write_text(json.dumps(self.scale))

    @classmethod
    def load(cls, folder: Path, meta: ModelMeta) -> MLPModel:
        scale = json.loads((folder / SHAPE).read_text())
        s = scale["shape"]
        net = _net(s["n_in"], s["n_out"], s["hidden_sizes"], s["dropout"])
        net.load_state_dict(torch.load(folder / WEIGHTS, weights_only=True))
        torch.set_num_threads(meta.threads)
        return cls(net, scale, meta)

    def importance(self) -> dict[str, float]:
        return {}
