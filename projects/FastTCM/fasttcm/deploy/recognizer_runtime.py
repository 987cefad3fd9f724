"""CLIP4STR on onnxruntime: exported towers and decoders, decoding outside the graphs.

CLIP4STR's decoding does not export as one graph: the visual decoder decodes greedily with an
early stop, its prediction is turned into a string, mapped to the test charset and BPE-tokenized
(string operations) before the text encoder and the cross-modal decoder run, and both decoders
refine in a loop. So the neural parts are four graphs (image tower, text tower, visual decoder,
cross-modal decoder; :mod:`fasttcm.deploy.graphs`) and the decoding runs in Python with the same
functions the PyTorch model calls: ``autoregressive_decode`` and ``refine_decode`` of
:mod:`fasttcm.modeling.recognition.decoding` (torch CPU ops over the arrays the sessions return),
the charset tokenizer, the charset adapter and the CLIP BPE tokenizer. :meth:`OnnxRecognizer.
forward` runs them in the order of ``CLIP4STR.forward``.
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..modeling.clip.tokenizer import bpe_tokenizer
from ..modeling.recognition.ctc_aux import ctc_weighted_confidences
from ..modeling.recognition.decoding import autoregressive_decode, refine_decode
from ..modeling.recognition.tokenizer import CharsetTokenizer
from ..structures.charset import CharsetAdapter
from .manifest import graph_path
from .sessions import OnnxGraph

__all__ = ["OnnxRecognizer", "SessionDecoder", "RECOGNIZER_GRAPHS"]

RECOGNIZER_GRAPHS = (
    "recognizer_image",
    "recognizer_text",
    "recognizer_visual_decoder",
    "recognizer_cross_decoder",
)
"""Graph names of a recognizer export (see :mod:`fasttcm.deploy.graphs`); an export whose
confidences use the CTC head (manifest ``ctc_confidence_weight`` > 0) also has
``recognizer_ctc``."""


def _array(tensor: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(tensor.detach().cpu().numpy())


class SessionDecoder:
    """An exported character decoder, callable like
    :class:`~fasttcm.modeling.recognition.decoder.CharacterDecoder` by the decoding functions.

    Missing masks become all-zero additive masks and an all-False padding mask (the same
    attention); ``query_slice`` becomes the ``query_positions`` input.
    """

    def __init__(self, graph: OnnxGraph):
        self.graph = graph

    def __call__(
        self,
        tokens: torch.Tensor,
        memory: torch.Tensor,
        *,
        content_mask: Optional[torch.Tensor] = None,
        query_mask: Optional[torch.Tensor] = None,
        padding_mask: Optional[torch.Tensor] = None,
        query_slice: Optional[slice] = None,
    ) -> Tuple[torch.Tensor, None]:
        """
        Args:
            tokens: (N, L) context; memory: (N, S, D).
            content_mask: (L, L) additive; query_mask: (Lq, L) additive.
            padding_mask: (N, L) bool, True = ignored context token.
            query_slice: the queried slots (default ``0:L``).

        Returns:
            (logits (N, Lq, C) float32 CPU tensor, None): the decoder's features are not exported.
        """
        batch, length = tokens.shape
        query_slice = query_slice if query_slice is not None else slice(0, length)
        if query_slice.step not in (None, 1) or query_slice.stop is None:
            raise ValueError(f"SessionDecoder: query_slice must be start:stop, got {query_slice}")
        positions = np.arange(query_slice.start or 0, query_slice.stop, dtype=np.int64)
        if content_mask is None:
            content_mask = torch.zeros(length, length)
        if query_mask is None:
            query_mask = torch.zeros(len(positions), length)
        if padding_mask is None:
            padding_mask = torch.zeros(batch, length, dtype=torch.bool)
        logits = self.graph(
            tokens=_array(tokens.long()),
            memory=_array(memory.float()),
            content_mask=_array(content_mask.float()),
            query_mask=_array(query_mask.float()),
            padding_mask=_array(padding_mask.bool()),
            query_positions=positions,
        )["logits"]
        return torch.from_numpy(logits), None


class OnnxRecognizer:
    """CLIP4STR recognition with onnxruntime: (N, 3, h, w) RGB crops -> logits, strings, scores.

    Unlike :class:`~fasttcm.modeling.recognition.clip4str.CLIP4STR`, whose inputs are normalized,
    the crops are 0-255 RGB pixels: the image graph normalizes them.

    Args:
        directory: the export folder.
        manifest: its manifest (``recognizer`` section and the four recognizer graphs).
        threads, providers: of every session (see :class:`OnnxGraph`).
    """

    def __init__(
        self,
        directory: str,
        manifest: Dict[str, Any],
        *,
        threads: Optional[int] = None,
        providers: Optional[Sequence[str]] = None,
    ):
        settings = manifest["recognizer"]
        graphs = {
            name: OnnxGraph(
                graph_path(directory, manifest, name), threads=threads, providers=providers
            )
            for name in RECOGNIZER_GRAPHS
        }
        self.image_graph = graphs["recognizer_image"]
        self.text_graph = graphs["recognizer_text"]
        self.visual_decoder = SessionDecoder(graphs["recognizer_visual_decoder"])
        self.cross_decoder = SessionDecoder(graphs["recognizer_cross_decoder"])
        self.tokenizer = CharsetTokenizer(settings["charset"])
        self.text_adapter = CharsetAdapter(settings["test_charset"])
        self.max_label_length = int(settings["max_label_length"])
        self.text_context_length = int(settings["text_context_length"])
        self.refine_iters = int(settings["refine_iters"])
        # exports written before the CTC confidence have no such key: decoder confidences
        self.ctc_confidence_weight = float(settings.get("ctc_confidence_weight", 0.0))
        self.ctc_graph = (
            OnnxGraph(
                graph_path(directory, manifest, "recognizer_ctc"),
                threads=threads,
                providers=providers,
            )
            if self.ctc_confidence_weight > 0
            else None
        )
        self.input_size: Tuple[int, int] = tuple(int(s) for s in settings["input_size"])

    @property
    def charset(self) -> str:
        return self.tokenizer.charset

    @property
    def num_steps(self) -> int:
        """Decoding slots: max label length + 1 (EOS)."""
        return self.max_label_length + 1

    def encode_image(self, crops: torch.Tensor) -> torch.Tensor:
        """(N, 3, h, w) 0-255 RGB crops -> (N, S, D) image tokens."""
        if tuple(crops.shape[-2:]) != self.input_size:
            raise ValueError(
                f"OnnxRecognizer: crops must be {self.input_size} (h, w), "
                f"got {tuple(crops.shape[-2:])}"
            )
        memory = self.image_graph(crops=_array(torch.as_tensor(crops).float()))
        return torch.from_numpy(next(iter(memory.values())))

    def text_memory(self, image_features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """``[F_img, F_txt]``: the visual prediction's strings, adapted to the test charset,
        BPE-tokenized and encoded (as ``CLIP4STR.text_memory``)."""
        texts, _, _ = self.tokenizer.decode(logits)
        texts = [self.text_adapter(t) for t in texts]
        token_ids = bpe_tokenizer()(texts, context_length=self.text_context_length)
        text = self.text_graph(token_ids=_array(token_ids.long()))
        return torch.cat([image_features, torch.from_numpy(next(iter(text.values())))], dim=1)

    @torch.no_grad()
    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """Dual predict-and-refine decoding, in the order of ``CLIP4STR.forward``.

        Args:
            crops: (N, 3, h, w) RGB crops in 0-255, (h, w) = :attr:`input_size`; N >= 1.

        Returns:
            (N, L, C) float32 logits of the cross-modal decoder (L = max_label_length + 1 with
            refinement).
        """
        return self._decode(crops)[0]

    def _decode(self, crops: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward`, also returning the image tokens (N, S, D) it decoded from."""
        ids = dict(bos_id=self.tokenizer.bos_id, eos_id=self.tokenizer.eos_id)
        memory = self.encode_image(crops)
        logits_v = autoregressive_decode(
            self.visual_decoder,
            memory,
            self.num_steps,
            pad_id=self.tokenizer.pad_id,
            stop_at_eos=True,
            **ids,
        )
        cross_memory = self.text_memory(memory, logits_v)
        logits_c = autoregressive_decode(
            self.cross_decoder,
            cross_memory,
            logits_v.shape[1],
            pad_id=self.tokenizer.pad_id,
            stop_at_eos=False,
            **ids,
        )
        for _ in range(self.refine_iters):
            logits_v = refine_decode(self.visual_decoder, memory, logits_v, self.num_steps, **ids)
            cross_memory = self.text_memory(memory, logits_v)
            logits_c = refine_decode(
                self.cross_decoder, cross_memory, logits_c, self.num_steps, **ids
            )
        return logits_c, memory

    __call__ = forward

    def predict(self, crops: torch.Tensor) -> Tuple[List[str], torch.Tensor, List[torch.Tensor]]:
        """Strings, confidences (N,) and per-character scores, as ``CLIP4STR.predict``."""
        if crops.shape[0] == 0:
            return [], torch.zeros(0), []
        logits, memory = self._decode(crops)
        probs = logits.softmax(-1)
        texts, char_scores, scores = self.tokenizer.decode(probs)
        if self.ctc_graph is not None:
            _, ids, lengths = self.tokenizer.greedy_ids(probs)
            log_probs = self.ctc_graph(image_tokens=_array(memory))
            scores = ctc_weighted_confidences(
                scores,
                ids,
                lengths,
                torch.from_numpy(next(iter(log_probs.values()))),
                self.ctc_confidence_weight,
            )
        return texts, scores, char_scores

    def recognize(self, crops: torch.Tensor) -> Tuple[List[str], torch.Tensor]:
        """(N strings over the training charset, (N,) confidences), as ``CLIP4STR.recognize``."""
        texts, scores, _ = self.predict(crops)
        return texts, scores
