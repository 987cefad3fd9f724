"""Config keys of FastTCM-D2. :func:`add_fasttcm_config` only *adds* keys to a detectron2 config."""

import yaml

from detectron2.config import CfgNode as CN

__all__ = ["add_fasttcm_config", "merge_config_file"]


def add_fasttcm_config(cfg):
    """Add FastTCM-D2's keys to `cfg` (a detectron2 CfgNode from ``get_cfg()``), in place.

    Each key carries a short comment naming the paper symbol or the docs/ section it stands for.
    detectron2's own defaults are never changed here; configs under ``projects/FastTCM/configs``
    set the values a model needs.
    """
    _add_backbone_config(cfg)
    _add_fpnc_config(cfg)
    _add_text_detection_config(cfg)
    _add_dataset_config(cfg)
    _add_dota_config(cfg)
    _add_input_and_solver_config(cfg)
    _add_e2e_eval_config(cfg)
    _add_recognizer_config(cfg)
    _add_spotter_config(cfg)
    _add_cpu_threads_config(cfg)


def _add_backbone_config(cfg):
    """MODEL.FASTTCM: the FastTCM-CR50 backbone (projects/FastTCM/docs/model.md)."""
    cfg.MODEL.FASTTCM = CN()
    _C = cfg.MODEL.FASTTCM
    # fmt: off
    # cc from meta query MQ + BSM ("fasttcm"), cc = PG(I-bar) ("tcm"), no text ("none")
    _C.MODE = "fasttcm"
    # local OpenAI RN50.pt / open_clip state dict, or an open_clip name ("RN50-quickgelu:openai",
    # from open_clip's cache, downloaded only if missing); "" = random init
    _C.CLIP_WEIGHTS = ""
    # Image encoder: CLIP ModifiedResNet (CR50) with TCM's dense attention pool.
    _C.IMAGE_LAYERS = [3, 4, 6, 3]  # bottleneck blocks per stage of the CR50 image encoder
    _C.IMAGE_WIDTH = 64          # stem width w; res2..res5 have 4w..32w channels (256..2048)
    _C.IMAGE_HEADS = 32          # attention-pool heads (64 channels per head at w = 64)
    # S: learned attention-pool positional grid, 1 + S*S rows (official: input_resolution / 32);
    # CLIP's 7x7 is resized to S x S once at load, S x S to H/32 x W/32 at every forward
    _C.ATTNPOOL_GRID = 7
    _C.EMBED_DIM = 1024          # D: dimension of I-bar, I and the text embedding t
    # Text encoder: frozen CLIP text transformer.
    _C.TEXT_WIDTH = 512          # token width of the text transformer (dimension of ctx and cc)
    _C.TEXT_LAYERS = 12          # text transformer depth
    _C.TEXT_HEADS = 8            # text transformer heads
    _C.TEXT_MAX_LENGTH = 77      # rows of the text positional table; n_ctx + prompt tokens must fit
    _C.VOCAB_SIZE = 49408        # CLIP BPE vocabulary size
    _C.QUICK_GELU = True         # QuickGELU activations in the text transformer, as in OpenAI CLIP
    # requires_grad=False on the text encoder (gradients still reach ctx, MQ, PG)
    _C.FREEZE_TEXT_ENCODER = True
    # keep the BPE token table frozen when the text encoder trains (no paper symbol)
    _C.FREEZE_TOKEN_EMBEDDING = True
    # Prompts.
    # add the LPG's cue cc to every prompt position; False: no cc (official DOTA code)
    _C.LANGUAGE_PROMPT = True
    _C.CONTEXT_LENGTH = 4        # n_ctx: learnable context vectors between SOS and the class prompt
    _C.CLASS_PROMPTS = ["the pixels of many arbitrary-shape text instances."]  # the K class prompts
    _C.PROMPTS_FROM_METADATA = False  # K prompts from thing_classes of DATASETS.TRAIN[0] (DOTA)
    # prompt per class name ('-' -> ' ') when PROMPTS_FROM_METADATA; "{name}", not "{}": yacs would
    # read a bare "{}" back from a dumped config.yaml as an empty dict
    _C.CLASS_PROMPT_TEMPLATE = "{name}"
    # Visual prompt generator and text-side context decoder (both ContextDecoders).
    _C.DECODER_WIDTH = 256       # decoder width
    _C.DECODER_HEADS = 4         # decoder attention heads
    _C.DECODER_LAYERS = 3        # decoder layers
    _C.DECODER_DROPOUT = 0.1     # decoder dropout
    # vis_gamma: scalar gate of the VPG residual, I-hat = I + vis_gamma * I-tilde
    _C.VISUAL_GAMMA_INIT = 1e-3
    _C.TEXT_GAMMA_INIT = 1e-3    # gamma: per-channel gate of the text-side residual
    # Instance-language matching.
    _C.TAU = 0.07                # tau: score logits = S / tau
    _C.AUX_LOSS_WEIGHT = 1.0     # lambda: L_total = L_det + lambda * L_aux
    _C.AUX_NEGATIVE_RATIO = 3.0  # negatives per positive in the balanced BCE of L_aux (OHEM 3:1)
    # Optimizer groups.
    # lr multiplier of the CLIP image encoder (attention pool included)
    _C.IMAGE_ENCODER_LR_FACTOR = 0.1
    # lr multiplier of the text encoder, used only if not FREEZE_TEXT_ENCODER
    _C.TEXT_ENCODER_LR_FACTOR = 0.1
    # fmt: on


def _add_fpnc_config(cfg):
    """MODEL.FPNC: the FPNC-exact neck of TCM-DBNet (``build_fasttcm_cr50_fpnc_backbone``)."""
    cfg.MODEL.FPNC = CN()
    _C = cfg.MODEL.FPNC
    # fmt: off
    # bottom-up levels fused, finest first (official FPNC in_channels [256, 512, 1024, 2048 + K])
    _C.IN_FEATURES = ["res2", "res3", "res4", "res5"]
    _C.LATERAL_CHANNELS = 256     # FPNC lateral_channels: 1x1 lateral convs, no bias, no norm
    # FPNC out_channels: 3x3 smooth convs per level (no bias); fused F has #levels x this channels
    _C.OUT_CHANNELS = 64
    # fmt: on


def _add_text_detection_config(cfg):
    """MODEL.DB_HEAD and TEST.TEXT: DBNet-style head, targets, losses, post-processing."""
    cfg.MODEL.DB_HEAD = CN()
    _C = cfg.MODEL.DB_HEAD
    # fmt: off
    _C.NAME = "FastTCMDBHead"     # SEM_SEG_HEADS_REGISTRY name of the DB head
    # FPN levels fused DBNet-FPNC style (finest: stride 4); ["fused"] on the FPNC neck
    _C.IN_FEATURES = ["p2", "p3", "p4", "p5"]
    _C.CONV_DIMS = 256            # channels of the fused feature F (DBHead in_channels)
    # True: a 3x3 conv per input level then concat (on detectron2 FPN levels); False: the single
    # input is already the fused F (FPNC neck, official DBHead on FPNC output)
    _C.FUSE_CONVS = True
    _C.NORM = "BN"                # norm of the probability / threshold branches ("" for none)
    _C.K = 50.0                   # k: DB amplification, binary map B = 1 / (1 + exp(-k (P - T)))
    # Targets (make_db_targets, called by the dataset mapper).
    _C.SHRINK_RATIO = 0.4         # r: kernel offset D = A (1 - r^2) / L
    _C.THRESH_MIN = 0.3           # threshold-map target away from text borders
    _C.THRESH_MAX = 0.7           # threshold-map target on text borders
    # polygons whose min-area rectangle is thinner (pixels) are ignored
    _C.MIN_TEXT_SIZE = 8.0
    # Loss L = alpha * L_s + L_b + beta * L_t.
    _C.LOSS_ALPHA = 5.0           # alpha: weight of the probability-map loss L_s (balanced BCE)
    _C.LOSS_BETA = 10.0           # beta: weight of the threshold-map loss L_t (masked L1)
    _C.NEGATIVE_RATIO = 3.0       # hard negatives per positive in L_s (OHEM 3:1)
    # L_s on P: "bce" (official DBLoss.balance_bce_loss: BCE of sigmoid(P), log clamped at -100)
    # or "bce_logits" (the project's BCE with logits, exact where the sigmoid saturates)
    _C.PROB_LOSS = "bce"
    # fmt: on

    cfg.TEST.TEXT = CN()
    _C = cfg.TEST.TEXT
    # fmt: off
    _C.MASK_THRESH = 0.3          # binarization threshold of the probability map P
    _C.MIN_TEXT_SCORE = 0.3       # minimum mean P inside a region (box score threshold)
    _C.UNCLIP_RATIO = 1.5         # r': unclip offset D' = A' r' / L' of the detected kernel
    # minimum short side (network-input pixels) of a detection; "official": min_text_width, quads
    # kept when wider than this, polygons not filtered
    _C.MIN_SIZE = 3.0
    _C.POLYGON_TYPE = "poly"      # "poly" (arbitrary shape) or "quad" (min-area rectangle)
    # regions considered per image ("project": the largest; "official": the first
    # MAX_CANDIDATES + 1 contours in OpenCV's order, as DBParamPostprocessor's max_candidates)
    _C.MAX_CANDIDATES = 1000
    # "official" (TCM's DBParamPostprocessor / DBVisPostprocessor) or "project" (the contour grown
    # half a pixel, shapely mitre unclip, at most 32 polygon vertices)
    _C.POSTPROCESS_IMPL = "official"
    # "official" only: arcLength_ratio, Douglas-Peucker epsilon as a fraction of the contour
    # perimeter; <= 0: the contour as it is (use_approxPolyDP False)
    _C.ARC_LENGTH_RATIO = 0.01
    # also give (N, H, W) bool pred_masks (for stock COCOEvaluator); "coco" evaluators use polygons
    _C.PRED_MASKS = False
    # fmt: on


def _add_dataset_config(cfg):
    """DATASETS.*: few-shot subsets and other dataset options."""
    _C = cfg.DATASETS
    # fmt: off
    # share of training images kept (1.0 = all; the paper's few-shot protocol: 0.1)
    _C.TRAIN_FRACTION = 1.0
    # seed of the deterministic subset (fasttcm.data.datasets.fractions.select_fraction)
    _C.TRAIN_FRACTION_SEED = 0
    # fmt: on


def _add_dota_config(cfg):
    """MODEL.DOTA (rotated R-CNN extras) and TEST.DOTA (Task-1 patch merge and scoring,
    docs/protocols.md)."""
    cfg.MODEL.DOTA = CN()
    # fmt: off
    # stride of the grid the per-class box masks (L_aux targets) are rasterized on
    cfg.MODEL.DOTA.ILM_TARGET_STRIDE = 4
    # fmt: on
    cfg.TEST.DOTA = CN()
    _C = cfg.TEST.DOTA
    # fmt: off
    # patch merge: rotated-NMS IoU that drops the lower-scored box (devkit ResultMerge, 0.1)
    _C.MERGE_NMS_THRESH = 0.1
    # Task-1 match: IoU > this is a hit (devkit voc_eval ovthresh, strict)
    _C.IOU_THRESH = 0.5
    _C.USE_07_METRIC = True    # VOC07 11-point AP (devkit main); False = area under the PR curve
    # also report mAP on the split patches ("dota_patch", not comparable to the server)
    _C.PATCH_LEVEL = True
    # also report COCO-style rotated AP, AP50, AP75 (pycocotools COCOeval rules; dota_coco)
    _C.COCO_AP = True
    # COCOeval params.maxDets for that AP: detections kept per image and class (COCO: 100)
    _C.COCO_MAX_DETS = 100
    # fmt: on


def _add_input_and_solver_config(cfg):
    """INPUT.TEXT_AUG and SOLVER extras used by the FastTCM trainer (docs/model.md,
    "Training recipe")."""
    cfg.INPUT.TEXT_AUG = CN()
    cfg.INPUT.TEXT_AUG.ENABLED = True  # training augmentation of the text mapper on/off
    cfg.INPUT.TEXT_AUG.ROTATION = 10.0  # max |rotation| in degrees (ImgAug rotate +-10)
    cfg.INPUT.TEXT_AUG.SCALE_RANGE = (0.5, 3.0)  # random rescale factor range (ImgAug scale)
    cfg.INPUT.TEXT_AUG.CROP_SIZE = 640  # side of the instance-aware crop (EastRandomCrop 640)
    cfg.INPUT.TEXT_AUG.CROP_MIN_RATIO = 0.1  # smallest crop side as a fraction of the image side
    cfg.INPUT.TEXT_AUG.BRIGHTNESS = 32.0 / 255.0  # ColorJitter brightness delta
    cfg.INPUT.TEXT_AUG.SATURATION = 0.5  # ColorJitter saturation delta
    cfg.INPUT.DB_TARGETS = (
        False  # text mapper adds DB shrink/threshold maps (G_s, G_t) for training
    )
    # DB target maker: "official" (MMOCR 0.4 DBNetTargets: Clipper offsets, cv2.fillPoly) or
    # "shapely" (the project's exact pixel-centre raster), fasttcm.data.mappers
    cfg.INPUT.DB_TARGETS_IMPL = "official"
    cfg.INPUT.DATASET_MAPPER_NAME = (
        "text"  # mapper registered in fasttcm.data.build: text | dota | str
    )
    # Largest width * height the text and DOTA mappers (and tools/demo.py) decode, a guard against
    # decompression bombs (fasttcm.data.pixel_limit); 0 = the reader's default: 89.5 MP or
    # $FASTTCM_MAX_IMAGE_PIXELS for text, AERIAL_MAX_IMAGE_PIXELS (2**30) for DOTA.
    cfg.INPUT.MAX_IMAGE_PIXELS = 0
    cfg.INPUT.RESIZE_BACKEND = "pil"  # test resize: "pil" (detectron2) | "cv2" (mmcv imresize)
    cfg.SOLVER.OPTIMIZER = (
        "SGD"  # one of SGD, ADAM, ADAMW (the official TCM configs use Adam/AdamW)
    )
    cfg.SOLVER.POLY_LR_POWER = 0.9  # power of the poly schedule (LR_SCHEDULER_NAME "WarmupPolyLR")


def _add_e2e_eval_config(cfg):
    """TEST.E2E: end-to-end text spotting evaluation (TextSpottingEvaluator, docs/protocols.md)."""
    cfg.TEST.E2E = CN()
    _C = cfg.TEST.E2E
    # fmt: off
    # lexicon runs besides "none" (generic|weak|strong|full); [] = metadata lexicon_types,
    # missing files skipped
    _C.LEXICON_TYPES = []
    # RRC WORD_SPOTTING (GT words failing the dictionary test are don't care);
    # None = metadata word_spotting
    _C.WORD_SPOTTING = None
    # lexicon far-off words: "adelaidet" (keep dist <= 1) or "testr" (docs/protocols.md)
    _C.FAR_OFF_RULE = "adelaidet"
    # keep spotting results with score >= this (AdelaiDet INFERENCE_TH_TEST; IC15 uses 0.45)
    _C.SCORE_THRESH = 0.0
    # fmt: on


def _add_recognizer_config(cfg):
    """MODEL.RECOGNIZER, INPUT.STR_AUG, INPUT.STR_WORD_CROP, SOLVER.RECOGNIZER and TEST.STR:
    CLIP4STR (docs/recognizer.md)."""
    cfg.MODEL.RECOGNIZER = CN()
    _C = cfg.MODEL.RECOGNIZER
    # fmt: off
    # local OpenAI ViT-B-16.pt / open_clip ViT state dict, or an open_clip name ("ViT-B-16:openai",
    # from open_clip's cache, downloaded only if missing); "" = random init
    _C.CLIP_WEIGHTS = ""
    # CLIP ViT image encoder (docs/recognizer.md, "Image encoder"): every token through ln_post
    # and visual.proj.
    # (H, W) crops are squashed to (no aspect-ratio padding); PARSeq-style 32x128 for tiny models
    _C.IMAGE_SIZE = (224, 224)
    _C.PATCH_SIZE = (16, 16)      # (h, w) ViT patch: B/16
    _C.VISION_WIDTH = 768         # ViT width
    _C.VISION_LAYERS = 12         # ViT depth
    _C.VISION_HEADS = 12          # ViT heads
    # D: CLIP joint-embedding width = decoder width (text_projection.shape[-1])
    _C.EMBED_DIM = 512
    # ViT patch stem: "linear" (CLIP's conv1) or "conv" (3x3 conv stem for from-scratch
    # training, no CLIP weights)
    _C.PATCH_EMBED = "linear"
    # CLIP text encoder of the cross-modal branch (docs/recognizer.md, "Cross-modal branch").
    _C.TEXT_WIDTH = 512           # text transformer width
    _C.TEXT_LAYERS = 12           # text transformer depth
    _C.TEXT_HEADS = 8             # text transformer heads
    # rows of the text positional table (sliced to TEXT_CONTEXT_LENGTH at run time)
    _C.TEXT_MAX_LENGTH = 77
    # BPE tokens (SOT ... EOT, zero padded) of the visual prediction fed to the text encoder
    _C.TEXT_CONTEXT_LENGTH = 16
    # text_freeze_nlayer: frozen lower text blocks (+ token/positional embeddings); -1 = none
    _C.TEXT_FREEZE_LAYERS = 6
    _C.VOCAB_SIZE = 49408         # CLIP BPE vocabulary size
    # QuickGELU in both CLIP towers, as the official code (even for GELU-trained weights)
    _C.QUICK_GELU = True
    # Visual and cross-modal decoders (PARSeq two-stream;
    # docs/recognizer.md, "Two-stream decoders").
    _C.DECODER_LAYERS = 1         # dec_depth
    _C.DECODER_HEADS = 8          # decoder attention heads
    _C.DECODER_MLP_RATIO = 4.0    # FFN width = ratio * D
    _C.DECODER_DROPOUT = 0.1      # decoder dropout
    # Charsets and labels (docs/recognizer.md, "Charsets, tokens and labels").
    # training charset: fasttcm/structures/charsets/<name>.txt or a path (ids 1..N)
    _C.CHARSET = "94_full"
    # adapter of the visual prediction before the text encoder (official: test charset)
    _C.TEST_CHARSET = "36_lowercase"
    _C.MAX_LABEL_LENGTH = 25      # max_label_length: 25 characters + EOS = 26 decoding slots
    # Training objective (permutation language modelling) and inference (predict-and-refine).
    # perm_num: permutations per batch (canonical, reverse, 2 random + mirrors)
    _C.PERM_NUM = 6
    _C.PERM_FORWARD = True        # perm_forward: include the canonical left-to-right order
    _C.PERM_MIRRORED = True       # perm_mirrored: add the reverse of every order
    # image_detach: the cross-modal loss sends no gradient into the image encoder
    _C.IMAGE_DETACH = True
    _C.CROSS_LOSS_WEIGHT = 1.0    # cross_loss_w: weight of loss_cross_modal
    # not in CLIP4STR: auxiliary CTC on the image-token columns (from-scratch towers); 0 = off
    _C.CTC_LOSS_WEIGHT = 0.0
    # not in CLIP4STR: w, reading confidence = p_decoder x P_CTC(reading)^w (needs the CTC head)
    _C.CTC_CONFIDENCE_WEIGHT = 0.0
    _C.REFINE_ITERS = 1           # refine_iters: cloze refinement passes of predict-and-refine
    # Normalization (0-255 RGB). Official train/val: CLIP statistics; official test.py: 0.5/0.5, so
    # its published accuracies come from (x - 0.5) / 0.5 inputs (docs/design_choices.md).
    _C.PIXEL_MEAN = [122.771, 116.746, 104.094]  # CLIP mean x 255 (RGB)
    _C.PIXEL_STD = [68.501, 66.632, 70.323]      # CLIP std x 255 (RGB)
    # fmt: on

    cfg.SOLVER.RECOGNIZER = CN()
    # fmt: off
    # coef_lr: decoders train at 19 x the CLIP lr (official recipe)
    cfg.SOLVER.RECOGNIZER.DECODER_LR_FACTOR = 19.0
    cfg.SOLVER.RECOGNIZER.BETAS = (0.9, 0.98)         # AdamW betas of the official recipe
    cfg.SOLVER.RECOGNIZER.EPS = 1e-6                  # AdamW eps of the official recipe
    # fmt: on

    cfg.INPUT.STR_AUG = CN()
    _C = cfg.INPUT.STR_AUG
    # fmt: off
    _C.ENABLED = True             # training augmentation of the STR mapper (RandAugment-style)
    _C.NUM_OPS = 3                # ops drawn per crop, without replacement (timm RandAugment n=3)
    # m in [0, 10]; each op scales its range by m / 10 (timm RandAugment m=5)
    _C.MAGNITUDE = 5
    _C.MAX_ROTATION = 30.0        # rotate range in degrees at magnitude 10
    _C.MAX_SHEAR = (0.9, 0.2)     # (shear-x, shear-y) at magnitude 10
    # (x, y) translation as a fraction of the crop size at magnitude 10
    _C.MAX_TRANSLATE = (0.1, 0.3)
    # fmt: on

    # Words cut from scene images (recognition datasets of text_word_crops.py), training only.
    cfg.INPUT.STR_WORD_CROP = CN()
    # fmt: off
    # not in CLIP4STR: (low, high) side offsets in word heights (positive = outwards), as a
    # spotter's MODEL.SPOTTER.CROP_JITTER; (0, 0) = cut along the annotated polygon
    cfg.INPUT.STR_WORD_CROP.JITTER = (0.0, 0.0)
    # layouts of structures/rectification/rectify.py drawn uniformly per crop: "annotated"
    # and/or "rectangle"
    cfg.INPUT.STR_WORD_CROP.LAYOUTS = ["annotated"]
    # fmt: on

    cfg.TEST.STR = CN()
    # fmt: off
    # official test.py --cased: A-Z added to the 36-char evaluation charset
    cfg.TEST.STR.CASE_SENSITIVE = False
    cfg.TEST.STR.PUNCTUATION = False     # official test.py --punctuation: ASCII punctuation added
    # crops per inference batch of the STR test loader (official test.py: 512)
    cfg.TEST.STR.BATCH_SIZE = 128
    # fmt: on


def _add_spotter_config(cfg):
    """MODEL.SPOTTER, TEST.SPOTTER, TEST.EVALUATOR_TYPE: FastTCMTextSpotter (docs/recognizer.md).

    The spotter's detector reads MODEL.FASTTCM / MODEL.DB_HEAD / TEST.TEXT and its recognizer
    MODEL.RECOGNIZER; these keys only describe how the two are joined.
    """
    cfg.MODEL.SPOTTER = CN()
    _C = cfg.MODEL.SPOTTER
    # fmt: off
    # cap on rectified ground-truth crops per training batch (random subset beyond it)
    _C.MAX_TRAIN_CROPS = 64
    # weight of the recognizer's PLM losses: L = L_det + lambda L_aux + w L_rec
    _C.RECOGNITION_LOSS_WEIGHT = 1.0
    # GT "a b" -> "ab" as CLIP4STR labels; False = skip texts with spaces
    _C.REMOVE_WHITESPACE = True
    # polygons below this area (pixels^2 of the network input) get no crop (counted)
    _C.MIN_POLYGON_AREA = 4.0
    # not in the papers: GT crop sides moved by U(low, high) x text height, like detections
    _C.CROP_JITTER = (0.0, 0.0)
    # not in the papers: also train the recognizer on crops of the detector's own outlines that
    # match a GT word (IoU > 0.5), labelled with it
    _C.DETECTED_CROPS = False
    # not in the papers: train the recognizer only, the detector fixed (no grads, eval-mode BN)
    _C.FREEZE_DETECTOR = False
    # fmt: on

    cfg.TEST.SPOTTER = CN()
    # fmt: off
    cfg.TEST.SPOTTER.CROP_BATCH_SIZE = 64  # rectified crops per recognizer forward at inference
    # drop detections whose recognition confidence is below this
    cfg.TEST.SPOTTER.MIN_TEXT_SCORE = 0.0
    # rectify detections: "predicted" (two long sides) or "rectangle" (min-area)
    cfg.TEST.SPOTTER.CROP_LAYOUT = "predicted"
    # not in the papers: framings read per detection instead of one crop, rows (top, right, bottom,
    # left[, flip]) of side offsets in text heights of the min-area rectangle; most confident wins
    cfg.TEST.SPOTTER.CROP_VARIANTS = []
    # not in the papers: shapes each CROP_VARIANTS framing is cut in, all voting: "rectangle"
    # (min-area quad) and/or "band" (constant height along a parabola fitted to the outline;
    # cut only for outlines that bend)
    cfg.TEST.SPOTTER.CROP_SHAPES = ["rectangle"]
    # fmt: on

    # evaluator_type used for every test set instead of the dataset metadata's; "" = the metadata's
    # (spotters set "text_e2e" to score the "text_det" splits end to end)
    cfg.TEST.EVALUATOR_TYPE = ""


def merge_config_file(cfg, path: str) -> None:
    """``cfg.merge_from_file(path)``, refusing YAML tags that construct Python objects.

    detectron2 falls back to an unsafe YAML loader when the safe one meets a ``!!python/...`` tag,
    which lets a config file run code. Config files are data: such a tag is an error naming the
    file, also in every ``_BASE_`` file of the chain.

    Raises:
        ValueError: `path` (or a file it inherits from) holds a Python object tag.
    """
    try:
        cfg.merge_from_file(path, allow_unsafe=False)
    except yaml.constructor.ConstructorError as e:
        raise ValueError(
            f"{path}: refused a YAML tag that constructs a Python object (configs are data; only "
            f"plain YAML values are read): {str(e)[:300]}"
        ) from e


def _add_cpu_threads_config(cfg):
    """CPU_THREADS: thread counts on CPUs (fasttcm.utils.threads; no paper symbol).

    The environment variables FASTTCM_NUM_THREADS, FASTTCM_OPENCV_THREADS and FASTTCM_NUM_WORKERS
    override these keys.
    """
    cfg.CPU_THREADS = CN()
    _C = cfg.CPU_THREADS
    # fmt: off
    # torch intra-op threads per process; 0 = the CPUs this process may use / processes per machine
    _C.TORCH = 0
    # cv2.setNumThreads; 0 = OpenCV's own default (all cores); 1 = OpenCV runs per image
    _C.OPENCV = 1
    # cap DATALOADER.NUM_WORKERS at the CPUs per process minus one (at least 1)
    _C.LIMIT_WORKERS = True
    # fmt: on
