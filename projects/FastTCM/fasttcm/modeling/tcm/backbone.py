"""FastTCMBackbone: the CR50 image encoder plus TCM/FastTCM's text branch, as a detectron2 Backbone.

Forward order (docs/model.md, "Forward order"):

1. image encoder -> res2..res5, global vector I-bar (B, D), dense map I (B, D, H/32, W/32);
2. language prompt cc = LPG(I-bar) ("tcm") or LPG(MQ) ("fasttcm", cached in eval mode); no cc when
   the LPG is switched off (``MODEL.FASTTCM.LANGUAGE_PROMPT False``, as the official DOTA code);
3. text embeddings t = TextEncoder([SOS, ctx, prompt, EOS] + cc) -> (B or 1, K, D);
4. "fasttcm" only: t = BSM(t, I-bar) -> (B, K, D);
5. I-hat = VPG(I, t), using t before step 6;
6. t = t + gamma * TextContextDecoder(t, [I-bar; I]) with the un-prompted I;
7. S = cos(I-hat, t) -> (B, K, H/32, W/32);
8. res5 = cat(res5, S) -> 2048 + K channels at CR50 width.

MODE "none" computes only the res2..res5 of step 1, without the attention pool: a plain CLIP-RN50
backbone (the ablation/benchmark baseline).
"""

import itertools
import logging
from typing import Dict, Iterator, List, Optional, Tuple

import torch

from detectron2.config import configurable
from detectron2.data import MetadataCatalog
from detectron2.layers import ShapeSpec
from detectron2.modeling.backbone import Backbone

from ..clip.image_encoder import CLIPImageEncoder
from ..clip.text_encoder import CLIPTextContextEncoder
from ..clip.weights import load_clip_weights
from .bimodal_similarity_matching import BimodalSimilarityMatching
from .context_decoder import TextContextDecoder
from .instance_language_matching import score_map
from .language_prompt_generator import LanguagePromptGenerator, TextEmbeddingCache
from .prompt_overlap import overlapping_prompt_pairs
from .prompts import PromptLearner
from .visual_prompt_generator import VisualPromptGenerator

__all__ = ["FastTCMBackbone", "resolve_class_prompts"]

logger = logging.getLogger(__name__)

MODES = ("fasttcm", "tcm", "none")


def _warn_about_overlapping_prompts(
    text_encoder, prompt_learner, language_prompt_generator, frozen: bool
) -> None:
    lpg = language_prompt_generator
    # the image-independent cue of MODE fasttcm is part of every prompt; MODE tcm's is per image
    with torch.no_grad():
        cue = lpg() if lpg is not None and not lpg.is_image_conditioned else None
    pairs = overlapping_prompt_pairs(text_encoder, prompt_learner, cue)
    if not pairs:
        return
    shown = ", ".join(f"{a!r}~{b!r} ({c:.3f})" for a, b, c in pairs[:5])
    logger.warning(
        f"With the random text encoder, {len(pairs)} pair(s) of the "
        f"{prompt_learner.num_prompts} class prompts have "
        f"nearly parallel embeddings (cosine >= 0.98; e.g. {shown}), "
        "so class scores cannot tell them apart"
        + (" while the text encoder stays frozen" if frozen else " until training separates them")
        + ". Give CLIP weights (MODEL.FASTTCM.CLIP_WEIGHTS) or a trained checkpoint (MODEL.WEIGHTS)"
        + (
            ""
            if cue is None
            else ", or leave the LPG's cue out of the prompts "
            "(MODEL.FASTTCM.LANGUAGE_PROMPT False, "
            "as the DOTA configs): at random init it drowns the class-name tokens"
        )
        + "."
    )


def resolve_class_prompts(cfg) -> List[str]:
    """The K class prompts of a config.

    ``MODEL.FASTTCM.PROMPTS_FROM_METADATA`` False: ``MODEL.FASTTCM.CLASS_PROMPTS`` as given.
    True: ``CLASS_PROMPT_TEMPLATE.format(name=name.replace("-", " "))`` for every ``thing_classes``
    name of ``DATASETS.TRAIN[0]`` (e.g. DOTA: "small-vehicle" -> "small vehicle").
    """
    fc = cfg.MODEL.FASTTCM
    if not fc.PROMPTS_FROM_METADATA:
        prompts = list(fc.CLASS_PROMPTS)
        if not prompts:
            raise ValueError("MODEL.FASTTCM.CLASS_PROMPTS is empty; give at least one class prompt")
        return prompts
    if not cfg.DATASETS.TRAIN:
        raise ValueError("MODEL.FASTTCM.PROMPTS_FROM_METADATA needs a dataset in DATASETS.TRAIN")
    if "{name}" not in fc.CLASS_PROMPT_TEMPLATE:
        raise ValueError(
            f"MODEL.FASTTCM.CLASS_PROMPT_TEMPLATE {fc.CLASS_PROMPT_TEMPLATE!r} "
            "has no '{name}' slot"
        )
    dataset = cfg.DATASETS.TRAIN[0]
    classes = MetadataCatalog.get(dataset).get("thing_classes", None)
    if not classes:
        raise ValueError(
            f"MODEL.FASTTCM.PROMPTS_FROM_METADATA: dataset {dataset!r} "
            "has no thing_classes metadata"
        )
    return [fc.CLASS_PROMPT_TEMPLATE.format(name=name.replace("-", " ")) for name in classes]


class FastTCMBackbone(Backbone):
    """CLIP ModifiedResNet + TCM text-image interaction; the score map S is fused into res5.

    Output features ``res2..res5`` have strides 4, 8, 16, 32 and 4w, 8w, 16w, 32w + K channels
    (w = image width, 64 for CR50: 256, 512, 1024, 2048 + K). Inputs are (B, 3, H, W) normalized RGB
    with H and W multiples of :attr:`size_divisibility` (32): pad with
    ``ImageList.from_tensors(images, size_divisibility=backbone.size_divisibility)``; other sizes
    raise a ValueError.

    In eval mode with MODE "fasttcm" (or without the LPG), the image-independent text embedding is
    computed once and cached; the cache is dropped when the module returns to training mode and
    recomputed as soon as any parameter it depends on changes (optimizer step, checkpoint load,
    ``.to()``). The cached embedding is a constant: it carries no gradient back to the prompt
    parameters.
    """

    @configurable
    def __init__(
        self,
        *,
        image_encoder: CLIPImageEncoder,
        text_encoder: Optional[CLIPTextContextEncoder] = None,
        prompt_learner: Optional[PromptLearner] = None,
        language_prompt_generator: Optional[LanguagePromptGenerator] = None,
        bimodal_similarity_matching: Optional[BimodalSimilarityMatching] = None,
        visual_prompt_generator: Optional[VisualPromptGenerator] = None,
        text_context_decoder: Optional[TextContextDecoder] = None,
        tau: float = 0.07,
    ):
        """
        Args:
            image_encoder: the CLIP image encoder (stored as ``visual``, CLIP's name).
            text_encoder, prompt_learner, visual_prompt_generator, text_context_decoder: the text
                branch; all None for MODE "none".
            language_prompt_generator: the LPG whose cue cc is added to every prompt position; None
                for no cue (the official DOTA code builds it but never calls it).
            bimodal_similarity_matching: present iff MODE is "fasttcm" (so it decides "fasttcm"
                vs "tcm" when there is no LPG).
            tau: temperature of the score logits S / tau (0.07).
        """
        super().__init__()
        text_branch = (text_encoder, prompt_learner, visual_prompt_generator, text_context_decoder)
        if any(m is None for m in text_branch) and any(m is not None for m in text_branch):
            raise ValueError(
                "FastTCMBackbone: give all text-branch modules (MODE tcm/fasttcm) "
                "or none (MODE none)"
            )
        if text_encoder is None:
            if language_prompt_generator is not None or bimodal_similarity_matching is not None:
                raise ValueError(
                    "FastTCMBackbone: an LPG or BSM without the text branch (MODE none) "
                    "is never used"
                )
            self.mode = "none"
        else:
            self.mode = "fasttcm" if bimodal_similarity_matching is not None else "tcm"
        if language_prompt_generator is not None and language_prompt_generator.mode != self.mode:
            raise ValueError(
                f"FastTCMBackbone: LPG in MODE {language_prompt_generator.mode!r} "
                f"with a text branch in MODE {self.mode!r}; "
                "bimodal_similarity_matching is required in MODE fasttcm, only there"
            )
        if self.mode != "none" and image_encoder.attnpool is None:
            raise ValueError(
                "FastTCMBackbone: the text branch needs the image encoder's attention pool"
            )
        self.visual = image_encoder
        self.text_encoder = text_encoder
        self.prompt_learner = prompt_learner
        self.language_prompt_generator = language_prompt_generator
        self.bimodal_similarity_matching = bimodal_similarity_matching
        self.visual_prompt_generator = visual_prompt_generator
        self.text_context_decoder = text_context_decoder
        self.tau = tau
        self._text_cache = TextEmbeddingCache()

        self.num_prompts = 0 if prompt_learner is None else prompt_learner.num_prompts
        self._out_features = list(image_encoder.stage_channels)
        self._out_feature_strides = dict(image_encoder.stage_strides)
        self._out_feature_channels = dict(image_encoder.stage_channels)
        self._out_feature_channels["res5"] += self.num_prompts

    @classmethod
    def from_config(cls, cfg, input_shape: ShapeSpec):
        fc = cfg.MODEL.FASTTCM
        mode = fc.MODE.lower()
        if mode not in MODES:
            raise ValueError(f"MODEL.FASTTCM.MODE must be one of {MODES}, got {fc.MODE!r}")
        if input_shape.channels != 3:
            raise ValueError(
                f"FastTCMBackbone takes RGB images, got input_shape.channels={input_shape.channels}"
            )
        image_encoder = CLIPImageEncoder(
            layers=fc.IMAGE_LAYERS,
            width=fc.IMAGE_WIDTH,
            heads=fc.IMAGE_HEADS,
            output_dim=fc.EMBED_DIM,
            attnpool_grid=fc.ATTNPOOL_GRID,
            with_attention_pool=mode != "none",  # its embeddings feed only the text branch
        )
        ret = {"image_encoder": image_encoder, "tau": fc.TAU}
        if mode != "none":
            decoder_args = dict(
                embed_dim=fc.EMBED_DIM,
                width=fc.DECODER_WIDTH,
                heads=fc.DECODER_HEADS,
                layers=fc.DECODER_LAYERS,
                dropout=fc.DECODER_DROPOUT,
            )
            ret.update(
                text_encoder=CLIPTextContextEncoder(
                    vocab_size=fc.VOCAB_SIZE,
                    max_length=fc.TEXT_MAX_LENGTH,
                    width=fc.TEXT_WIDTH,
                    layers=fc.TEXT_LAYERS,
                    heads=fc.TEXT_HEADS,
                    embed_dim=fc.EMBED_DIM,
                    quick_gelu=fc.QUICK_GELU,
                    freeze=fc.FREEZE_TEXT_ENCODER,
                    freeze_token_embedding=fc.FREEZE_TOKEN_EMBEDDING,
                ),
                prompt_learner=PromptLearner(
                    class_prompts=resolve_class_prompts(cfg),
                    context_length=fc.CONTEXT_LENGTH,
                    token_width=fc.TEXT_WIDTH,
                    max_length=fc.TEXT_MAX_LENGTH,
                ),
                language_prompt_generator=(
                    LanguagePromptGenerator(
                        mode=mode, visual_dim=fc.EMBED_DIM, token_width=fc.TEXT_WIDTH
                    )
                    if fc.LANGUAGE_PROMPT
                    else None
                ),
                bimodal_similarity_matching=(
                    BimodalSimilarityMatching(embed_dim=fc.EMBED_DIM) if mode == "fasttcm" else None
                ),
                visual_prompt_generator=VisualPromptGenerator(
                    **decoder_args, gamma_init=fc.VISUAL_GAMMA_INIT
                ),
                text_context_decoder=TextContextDecoder(
                    **decoder_args, gamma_init=fc.TEXT_GAMMA_INIT
                ),
            )
        if fc.CLIP_WEIGHTS:
            load_clip_weights(
                fc.CLIP_WEIGHTS, image_encoder=image_encoder, text_encoder=ret.get("text_encoder")
            )
        else:
            logger.warning(
                "MODEL.FASTTCM.CLIP_WEIGHTS is empty: "
                "the CLIP image and text encoders keep their random init "
                "(fine for tests or when MODEL.WEIGHTS holds a full FastTCM checkpoint)"
            )
            if mode != "none":
                _warn_about_overlapping_prompts(
                    ret["text_encoder"],
                    ret["prompt_learner"],
                    ret["language_prompt_generator"],
                    fc.FREEZE_TEXT_ENCODER,
                )
        return ret

    @property
    def size_divisibility(self) -> int:
        return 32

    def output_shape(self) -> Dict[str, ShapeSpec]:
        return {
            name: ShapeSpec(
                channels=self._out_feature_channels[name], stride=self._out_feature_strides[name]
            )
            for name in self._out_features
        }

    def train(self, mode: bool = True):
        self._text_cache.clear()
        return super().train(mode)

    def _text_dependencies(self) -> Iterator[torch.Tensor]:
        """Every tensor the image-independent ("fasttcm" or no LPG) text embedding is computed
        from."""
        lpg = self.language_prompt_generator
        return itertools.chain(
            self.prompt_learner.parameters(),
            self.prompt_learner.buffers(),
            () if lpg is None else lpg.parameters(),
            self.text_encoder.parameters(),
        )

    def _shared_text_embeddings(self) -> torch.Tensor:
        """(1, K, D) text embedding that does not depend on the image: cc = LPG(MQ) or no cue."""
        lpg = self.language_prompt_generator
        return self._encode_text(None if lpg is None else lpg())

    def _encode_text(self, conditional_cue: Optional[torch.Tensor]) -> torch.Tensor:
        token_ids, contexts = self.prompt_learner()
        return self.text_encoder(token_ids, contexts, conditional_cue)

    def text_embeddings(self, global_embedding: torch.Tensor) -> torch.Tensor:
        """Steps 2-4: the text embeddings t for a batch.

        Args:
            global_embedding: (B, D) global image vectors I-bar.

        Returns:
            (B, K, D): per image in MODE "tcm" with the LPG; otherwise the shared (cached in eval
            mode) embedding, after BSM with each image's I-bar in MODE "fasttcm", broadcast to the
            batch in MODE "tcm".
        """
        if self.mode == "tcm" and self.language_prompt_generator is not None:
            return self._encode_text(self.language_prompt_generator(global_embedding))
        if self.training:
            text = self._shared_text_embeddings()
        else:
            text = self._text_cache.get(self._text_dependencies(), self._shared_text_embeddings)
        if self.mode == "tcm":
            return text.expand(global_embedding.shape[0], -1, -1)
        return self.bimodal_similarity_matching(text, global_embedding)

    def forward_with_aux(
        self, x: torch.Tensor
    ) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
        """
        Args:
            x: (B, 3, H, W) normalized RGB images, H and W multiples of 32.

        Returns:
            features: {"res2".."res5"}; res5 carries the K score-map channels after its own.
            aux: {} in MODE "none", else {"score_map": S (B, K, H/32, W/32) raw cosine in [-1, 1],
                "logits": S / tau, "text_embeddings": t (B, K, D) after the text-side refinement}.
        """
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(
                f"FastTCMBackbone expects (B, 3, H, W) RGB images, got shape {tuple(x.shape)}"
            )
        if x.shape[-2] % self.size_divisibility or x.shape[-1] % self.size_divisibility:
            raise ValueError(
                f"FastTCMBackbone: input size {tuple(x.shape[-2:])} "
                f"is not a multiple of {self.size_divisibility}; "
                "pad with ImageList.from_tensors(images, "
                "size_divisibility=backbone.size_divisibility)"
            )
        features, global_embedding, dense_embedding = self.visual(x)
        if self.mode == "none":
            return features, {}
        text = self.text_embeddings(global_embedding)
        prompted = self.visual_prompt_generator(dense_embedding, text)
        text = self.text_context_decoder(text, global_embedding, dense_embedding)
        scores = score_map(prompted, text)
        features["res5"] = torch.cat([features["res5"], scores], dim=1)
        return features, {"score_map": scores, "logits": scores / self.tau, "text_embeddings": text}

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The features of :meth:`forward_with_aux` only."""
        return self.forward_with_aux(x)[0]
