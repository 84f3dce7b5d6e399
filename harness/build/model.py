"""The model half of the firmware: C sources implementing model.h, either produced by
harness.codegen from an artifact or supplied directly (hand-written fixtures, tests)."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import StageError


@dataclass(frozen=True)
class ModelSources:
    """C sources and headers implementing the model API of model.h."""

    sources: list[Path]
    include_dirs: list[Path]
    defines: dict[str, Any] = field(default_factory=dict)
    model_hash: str = ""
    numeric: str = ""
    arena_bytes: int = 0
    weights_bytes: int = 0
    macs: int = 0
    layers: list[dict] = field(default_factory=list)
    # Sources whose constants are the weights (footprint attribution); None: all model constants.
    weights_sources: list[Path] | None = None

    def digest(self) -> str:
        """Hash of everything the compiler sees from the model: sources, headers, defines."""
        h = hashlib.sha256()
        for src in sorted(self.sources, key=lambda s: s.name):
            h.update(src.name.encode())
            h.update(src.read_bytes())
        for inc in self.include_dirs:
            for hdr in sorted(inc.rglob("*.h")):
                h.update(str(hdr.relative_to(inc)).encode())
                h.update(hdr.read_bytes())
        h.update(repr(sorted((k, str(v)) for k, v in self.defines.items())).encode())
        return h.hexdigest()


def from_generated(gm: Any) -> ModelSources:
    """Adapt a harness.codegen GeneratedModel (or anything with the same fields)."""
    return ModelSources(
        sources=[Path(s) for s in gm.sources],
        include_dirs=[Path(i) for i in gm.include_dirs],
        defines=dict(getattr(gm, "defines", {}) or {}),
        model_hash=str(getattr(gm, "model_hash", "")),
        numeric=str(getattr(gm, "numeric", "")),
        arena_bytes=int(getattr(gm, "arena_bytes", 0) or 0),
        weights_bytes=int(getattr(gm, "weights_bytes", 0) or 0),
        macs=int(getattr(gm, "macs", 0) or 0),
        layers=list(getattr(gm, "layers", []) or []),
        # harness.codegen puts every constant tensor in model_weights.c; descriptors stay apart.
        weights_sources=[Path(s) for s in gm.sources if "weights" in Path(s).name] or None,
    )


def resolve_model(
    model: Any, gen_dir: Path, *, dsp: bool, sparse: str, backend: str
) -> tuple[ModelSources, Path | None]:
    """Turn an artifact folder, an Artifact, a GeneratedModel or ModelSources into sources;
    also returns the folder of generated C (None for hand-written sources)."""
    if isinstance(model, ModelSources):
        return model, None
    if hasattr(model, "sources") and hasattr(model, "include_dirs"):
        ms = from_generated(model)
        return ms, (ms.include_dirs[0] if ms.include_dirs else None)
    from harness.ir import Artifact

    if isinstance(model, (str, Path)):
        folder = Path(model)
        if not (folder / "artifact.json").exists():
            raise StageError(f"build: {folder} is not an artifact folder (no artifact.json)")
        try:
            artifact = Artifact.load(folder)
        except (OSError, ValueError, KeyError) as exc:
            raise StageError(f"build: cannot load the artifact in {folder}: {exc}") from None
    elif isinstance(model, Artifact):
        artifact = model
    else:
        raise TypeError(f"build_firmware: unsupported model {type(model).__name__}")
    from harness.codegen import generate

    if gen_dir.exists():
        shutil.rmtree(gen_dir)  # no stale files from an earlier model
    gen_dir.mkdir(parents=True)
    try:
        generated = generate(artifact, gen_dir, dsp=dsp, sparse=sparse, backend=backend)
    except (NotImplementedError, ValueError) as exc:
        raise StageError(f"build: code generation failed for model {artifact.graph.name!r}: {exc}") from None
    return from_generated(generated), gen_dir
