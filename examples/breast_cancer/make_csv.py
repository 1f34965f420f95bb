"""Write scikit-learn's bundled breast-cancer data set as a plain CSV (no download).

Column names become snake_case (`mean radius` -> `mean_radius`) and a `diagnosis` column holds
the target (1 = benign, 0 = malignant), as a user's own export would.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sklearn.datasets import load_breast_cancer


def main(out: Path) -> Path:
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame = frame.rename(columns={"target": "diagnosis"})
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    return out


if __name__ == "__main__":
    default = Path(__file__).resolve().parent / "data" / "breast_cancer.csv"
    path = main(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
    print(f"wrote {path}")
