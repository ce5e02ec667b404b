"""Model files rebuilt here from the public weights they were made from, when no public download of the
file itself exists. Each recipe reads its sources (already sha256-checked by the store) with numpy, writes
the same tensor contract as the card's reference file with onnx, and is deterministic: the same sources
and recipe version give the same bytes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

# Bump when a recipe's code changes what it writes, so cached files of the old code are not reused.
REBUILD_VERSION = 1


def recipes() -> dict[str, Callable[[dict[str, Path], Path], None]]:
    """Recipe name -> build(sources by name, output path). Imported on use: numpy and onnx load only then."""
    from models.rebuild import efficientnet_lite, squeezenet_places365

    return {"squeezenet_places365_lasagne": squeezenet_places365.build,
            "efficientnet_lite0_torch": efficientnet_lite.build}
