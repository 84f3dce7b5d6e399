"""``Artifact.metadata``: what the compression stage knows about how an artifact was made, saved
in artifact.json. Every field is optional: artifacts built by hand (tests, calibration) know
little, and files from earlier versions lack later fields. Fields are declared in the order the
stage has always written them, so artifact.json keeps its layout."""

from __future__ import annotations

from typing import Any

from harness.stage_record import Record


class DatasetRecord(Record):
    """The data a model was trained and evaluated on (harness.compress.data.Dataset.describe)."""

    name: str | None = None
    source: str | None = None
    split: str | None = None
    train: int | None = None
    test: int | None = None
    input_shape: list[int] | None = None
    synthetic: bool = False  # a labelled random stand-in: its accuracy means nothing
    note: str | None = None  # why a fallback was used (absent when none was)


class Budget(Record):
    """Resource-aware pruning budgets (None: no budget)."""

    flash: int | None = None
    ram: int | None = None
    macs: int | None = None


class SearchStep(Record):
    """One candidate rate of an accuracy-targeted search."""

    rate: float
    accuracy: float
    relative: float
    passed: bool
    achieved_rate: float


class CompressionRecord(Record):
    """The compression as asked (the campaign's settings, with the request's layer/budget options)
    and as done (rates, search trail, pruning history)."""

    # as asked: harness.config.campaign.CompressionSettings, field for field
    id: str | None = None
    method: str | None = None
    heuristic: str | None = None
    schedule: str | None = None
    agp_steps: int | None = None
    rate: float | None = None
    target_relative_accuracy: float | None = None
    candidate_rates: list[float] | None = None
    prune_layers: list[str] | None = None
    prune_channels: list[int] | None = None
    sensitivity: float | None = None
    max_flash_bytes: int | None = None
    max_ram_bytes: int | None = None
    max_macs: int | None = None
    qat_epochs: float | None = None
    models: list[str] | None = None
    retrain_epochs: float | None = None
    allocation: str | None = None
    budget: Budget | None = None
    # as done
    selected_rate: float | None = None
    achieved_rate: float | None = None  # fraction of parameters actually removed
    history: list[dict[str, Any]] | None = None
    search: list[SearchStep] | None = None
    warning: str | None = None

    def removed(self) -> float | None:
        """The paper's "compression": the achieved rate, else the selected one."""
        return self.achieved_rate if self.achieved_rate is not None else self.selected_rate


class ArtifactMetadata(Record):
    """Everything known about how an artifact was made (accuracies are percentages)."""

    model: str | None = None
    arch: str | None = None
    model_settings: dict[str, Any] | None = None  # harness.config.campaign.ModelSettings as given
    dataset: dict[str, Any] | None = None  # harness.config.campaign.DatasetSettings as given
    dataset_used: DatasetRecord | None = None  # what was actually loaded (files before 2026-12-01 lack it)
    seed: int | None = None
    numeric: str | None = None
    compression: CompressionRecord | None = None
    accuracy_baseline: float | None = None
    accuracy_float: float | None = None
    accuracy_quant: float | None = None
    accuracy_quant_method: str | None = None
    accuracy_split: str | None = None
    params_total: int | None = None
    params_nonzero: int | None = None
    macs: int | None = None
    resources_estimate: dict[str, int] | None = None  # harness.compress.resources.Resources
    input_shape: list[int] | None = None
    num_classes: int | None = None
    input_quant: dict[str, Any] | None = None  # harness.ir.QuantParams of the graph input
    timings_s: dict[str, float] | None = None
    calibration_samples: int | None = None
    compress_seconds: float | None = None

    def known(self) -> bool:
        """Whether anything is recorded (an artifact made by hand may carry nothing)."""
        return bool(self.model_fields_set or self.model_extra)

    def to_json(self) -> dict[str, Any]:
        """What artifact.json holds: the fields that were given (never a null for an unknown one);
        numpy scalars a producer left in free-form fields are converted when the file is written."""
        return self.model_dump(exclude_unset=True)
