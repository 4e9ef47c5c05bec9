"""Frozen configuration dataclasses: the single home of every default.

CLI options derive their defaults from these classes; nothing else copies them.
"""

from __future__ import annotations

from dataclasses import dataclass

FPS = 25  # frames/s every clip is normalised to
SAMPLE_RATE = 16000  # Hz, mono, every audio track is normalised to


@dataclass(frozen=True)
class TrackConfig:
    """Face tracking with MediaPipe Face Mesh.

    Attributes:
        min_detection_confidence: detector score needed to start tracking a face.
        min_tracking_confidence: landmark score needed to keep tracking it.
        max_interpolated_gap: longest run of frames without a face (frames) that is
            filled by interpolation; longer runs are reported as gaps.
        second_face_area_ratio: a second face whose box area is at least this
            fraction of the main face's makes the speaker ambiguous.
        min_second_face_frames: that second face must be present in at least this
            many frames before the clip is rejected (one-frame false positives pass).
        smoothing_window: frames in the zero-phase Savitzky-Golay smoother applied to
            landmark trajectories (odd; 1 turns smoothing off). Zero-phase means no lag.
        smoothing_order: its polynomial order; 4 with 7 frames keeps 94% of a 5 Hz lip
            movement at 25 fps while cutting landmark noise by a quarter.
    """

    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    max_interpolated_gap: int = 6
    second_face_area_ratio: float = 0.5
    min_second_face_frames: int = 5
    smoothing_window: int = 7
    smoothing_order: int = 4


@dataclass(frozen=True)
class ReconstructConfig:
    """Building the person's face model from a tracked clip.

    Attributes:
        n_expression: components kept in the linear expression basis.
        rigid_fraction: fraction of vertices (least deforming) used to fit head pose.
        texture_size: side of the square UV texture (pixels).
        texture_frames: frontal frames whose colours are merged into the texture.
    """

    n_expression: int = 32
    rigid_fraction: float = 0.3
    texture_size: int = 256
    texture_frames: int = 9


@dataclass(frozen=True)
class FinetuneConfig:
    """Personalising talkface to one person's clip.

    Attributes:
        min_seconds: shortest clip accepted (s).
        min_tracked_fraction: share of frames that must have a face.
        features: audio features: 'mfcc', 'whisper' or 'mfcc+whisper' (measured best, see
            benchmarks/results/motion.md).
        use_generic: start from the generic multi-speaker audio->lip model shipped with talkface
            (needs features 'mfcc+whisper'; without it the lips are learnt from the clip alone).
        generic_path: another generic lip model file (default: the one shipped in talkface/weights).
        preset: refiner training preset, one of REFINER_PRESETS: 'draft' (minutes on a CPU),
            'standard' or 'best' (for a GPU, or a long CPU run).
        refiner: train the GAN refiner at all (without it, speak gives the coarse render).
        max_seconds: a longer video is tracked whole, then finetuned on its best-tracked stretch
            of this length (so memory and time stay bounded whatever the video's length).
    """

    min_seconds: float = 10.0
    min_tracked_fraction: float = 0.9
    features: str = "mfcc+whisper"
    use_generic: bool = True
    generic_path: str | None = None
    preset: str = "standard"
    refiner: bool = True
    max_seconds: float = 60.0


@dataclass(frozen=True)
class RefinerConfig:
    """The memory-augmented GAN refiner and its training (one preset of REFINER_PRESETS).

    Attributes:
        crop_size: side (px) of the face crop the refiner works on; the face is never upscaled.
        channels: generator widths at 1, 1/2, 1/4 and 1/8 of the crop.
        steps: training steps (one batch each).
        batch: crops per step.
        learning_rate: Adam step size for generator and discriminators.
        memory_neighbours: real mouths read from the memory per frame (top-k attention).
        exclude_window: frames either side of a training frame that its memory read may not use,
            so the generator learns to transfer appearance, not to copy the answer.
        held_out_fraction: the clip's last part kept out of training, for validation.
        l1_weight, mouth_weight, ssim_weight, adversarial_weight, feature_match_weight: loss terms.
        checkpoint_seconds: training state is saved at least this often (s), so a killed run resumes.
        ema_decay: the refiner kept is a running average of the generator's weights (this
            decay per step; 0 keeps the last weights): the GAN's step-to-step noise averages out.
        check_every, patience, min_steps, min_gain_db: every `check_every` steps the averaged
            generator's face PSNR on the held-out frames is measured; training stops early once
            it has not risen by `min_gain_db` for `patience` checks (never before `min_steps`;
            patience 0: always run all `steps`).
        precision: 'auto' (bfloat16 convolutions where the hardware has them, about twice as
            fast on CPUs with AMX or AVX-512 BF16), 'fp32' or 'bf16'.
        warm_start: start from the refiner pretrained across the corpus's people
            (talkface/weights/generic_refiner.safetensors) where its widths fit; False: from nothing.
    """

    crop_size: int = 192
    channels: tuple[int, int, int, int] = (16, 32, 64, 128)
    steps: int = 800
    batch: int = 8
    learning_rate: float = 2e-4
    memory_neighbours: int = 3
    exclude_window: int = 12
    held_out_fraction: float = 0.15
    l1_weight: float = 10.0
    mouth_weight: float = 4.0
    ssim_weight: float = 2.0
    adversarial_weight: float = 1.0
    feature_match_weight: float = 5.0
    checkpoint_seconds: float = 60.0
    ema_decay: float = 0.99
    check_every: int = 100
    patience: int = 3
    min_steps: int = 600
    min_gain_db: float = 0.15
    precision: str = "auto"
    warm_start: bool = True


REFINER_PRESETS = {
    # draft and standard adapt the generic refiner (a few minutes on 2 CPU cores); best trains its wider networks from nothing
    "draft": RefinerConfig(crop_size=160, steps=60, batch=6, check_every=30, patience=0),
    # standard: 400 steps of 4 crops. The pretrained refiner draws mouths opening less than the
    # render asks (Ronald Reagan's clip rendered onto itself: 0.75 of the real mouth's opening as
    # Face Mesh reads it), and what adapts that is the number of steps more than the crops a step:
    # refined `speak` of 30 s unseen speech, the video's mouth opening against the motion's
    # (slope; benchmarks/eyelids.py, one run), 100 steps of 8 crops -> 400 of 4: Reagan 0.69 ->
    # 0.81, Robert Downey Jr. 0.83 -> 0.86, the German newsreader 0.96 -> 1.00, Fei-Fei Li 0.98 ->
    # 1.03 (Reagan with 400 of 8, on the same profile: 0.67 -> 0.83), at twice the training time
    # of 100 x 8 where 400 x 8 took four; held-out face PSNR the same or up (Reagan 38.41 -> 38.31,
    # RDJ 28.06 -> 28.11, the newsreader 35.46 -> 35.76 dB; Obama's realism `onto` 34.77 -> 34.85)
    "standard": RefinerConfig(steps=400, batch=4, check_every=100, patience=0),
    "best": RefinerConfig(crop_size=224, channels=(24, 48, 96, 128), steps=4000),
}


POSE_MODES = ("generated", "clip", "still")
MAX_SEED = 2**32 - 1  # numpy's seed range
MAX_BLINK_RATE = 120.0  # blinks per minute; people blink 10-40


DEFAULT_CRF = 17  # x264 quality of every video talkface writes unless --crf says otherwise: visually lossless
MAX_CRF = 51  # x264's range: 0 lossless (in YUV 4:2:0) ... 51
CRF_HELP = "Output quality (x264 CRF): 17 visually lossless, 0 lossless, higher smaller."


@dataclass(frozen=True)
class SpeakConfig:
    """Generating a talking video from audio (`check` holds the accepted ranges).

    Attributes:
        pose: 'generated' (from audio, in the person's style), 'clip' (replay the clip's poses) or
            'still' (no head motion).
        seed: seeds head motion and blinks (same seed and audio, same video).
        blink_rate: blinks per minute; None keeps the rate measured in the clip.
        preview: draw the shaded 3D face on a plain background instead of the full frame.
        refine: pass the frames through the profile's GAN refiner (when it has one).
        crf: x264 quality of the output: 17 visually lossless (default), 0 lossless in YUV 4:2:0.
    """

    pose: str = "generated"
    seed: int = 0
    blink_rate: float | None = None
    preview: bool = False
    refine: bool = True
    crf: int = DEFAULT_CRF

    def check(self) -> "SpeakConfig":
        """Raise InputError naming a setting outside its range; return self."""
        from talkface.errors import InputError

        if self.pose not in POSE_MODES:
            raise InputError(f"unknown pose mode {self.pose!r}; use one of {', '.join(POSE_MODES)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise InputError(f"seed {self.seed!r} is not a whole number from 0 to {MAX_SEED}")
        rate = self.blink_rate
        if rate is not None and not (isinstance(rate, (int, float)) and 0 <= rate <= MAX_BLINK_RATE):  # NaN fails too
            raise InputError(f"blink rate {rate!r} is not a number of blinks per minute from 0 to {MAX_BLINK_RATE}")
        check_crf(self.crf)
        return self


DUB_FITS = ("pingpong", "loop", "hold")


def check_crf(crf: object) -> int:
    """Raise InputError unless `crf` is a whole number in x264's range; return it."""
    from talkface.errors import InputError

    if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= MAX_CRF:
        raise InputError(f"--crf {crf!r} is out of range; use a whole number from 0 (lossless) to {MAX_CRF}")
    return crf


@dataclass(frozen=True)
class DubConfig:
    """Dubbing existing footage to new audio (`check` holds the accepted ranges).

    Attributes:
        fit: when the audio outlasts the video: 'pingpong' (play on backwards: no jump),
            'loop' (start again; the jump is treated as a cut) or 'hold' (the last frame).
        mouth_scale: amplitude of the new lip and jaw motion (0.5 calmer, 1.5 wider).
        refine: pass the re-rendered lower face through the profile's GAN refiner.
        crf: x264 quality of the output: 17 visually lossless (default), 0 lossless in YUV 4:2:0.
        preset: refiner preset of the profile built from the video when no person is given.
        sample_seconds: how much of a long video (the best-tracked stretch) trains that profile.
        segment_frames: the output is encoded in segments of this many frames, so an
            interrupted dub resumes from the last finished one.
    """

    fit: str = "pingpong"
    mouth_scale: float = 1.0
    refine: bool = True
    crf: int = DEFAULT_CRF
    preset: str = "standard"
    sample_seconds: float = 20.0
    segment_frames: int = 500

    def check(self) -> "DubConfig":
        """Raise InputError naming a setting outside its range; return self."""
        from talkface.errors import InputError

        if self.fit not in DUB_FITS:
            raise InputError(f"unknown --fit {self.fit!r}; use one of {', '.join(DUB_FITS)}")
        if not (isinstance(self.mouth_scale, (int, float)) and 0 <= self.mouth_scale <= 3):
            raise InputError(f"--mouth-scale {self.mouth_scale!r} is out of range; use 0 (closed) to 3")
        check_crf(self.crf)
        if self.preset not in REFINER_PRESETS:
            raise InputError(f"unknown refiner preset {self.preset!r}; use one of {', '.join(REFINER_PRESETS)}")
        if not (isinstance(self.sample_seconds, (int, float)) and 10 <= self.sample_seconds <= 60):
            raise InputError(f"sample length {self.sample_seconds!r} s is out of range; use 10 to 60 s")
        if isinstance(self.segment_frames, bool) or not isinstance(self.segment_frames, int) or self.segment_frames < 25:
            raise InputError(f"segment length {self.segment_frames!r} is too small; use at least 25 frames")
        return self
