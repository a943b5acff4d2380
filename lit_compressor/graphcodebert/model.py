"""GraphCodeBERT classifier: data-flow nodes embedded as the mean of their code tokens, graph-guided mask."""

from __future__ import annotations

import torch
from transformers import PreTrainedModel

from lit_compressor.graphcodebert.inputs import FIRST_TOKEN_POSITION, NODE_POSITION
from lit_compressor.nn.classifier import CodeClassifier

MASKED = -1e4


class GraphCodeBERTClassifier(CodeClassifier):
    """A RoBERTa-layout encoder fed GraphCodeBERT inputs, with :class:`CodeClassifier`'s single / pair head.

    Takes the batches of :class:`~lit_compressor.graphcodebert.inputs.GraphCodeEncoder`. ``pooling:
    first`` reads the ``<s>`` vector (GraphCodeBERT, Compressor); ``mean`` the mean over the code
    sub-words (``<s>`` and ``</s>`` included, data-flow nodes left out), as a plain model's mean pooling.
    """

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
              position_ids: torch.Tensor) -> torch.Tensor:
        """Word embeddings ``[N, L, H]`` with each node's row replaced by the mean of its tokens' rows."""
        embeddings = self.encoder.get_input_embeddings()(input_ids)
        nodes = position_ids.eq(NODE_POSITION)
        tokens = position_ids.ge(FIRST_TOKEN_POSITION)
        node_to_token = (nodes[:, :, None] & tokens[:, None, :] & attention_mask).to(embeddings.dtype)
        weights = node_to_token / (node_to_token.sum(-1, keepdim=True) + 1e-10)
        return torch.where(nodes[:, :, None], torch.bmm(weights, embeddings), embeddings)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
               output_hidden_states: bool = False):
        """``[B, n, L]`` inputs and ``[B, n, L, L]`` mask -> the encoder's output for the ``B * n`` functions,
        and the ``[B * n, L]`` mask of their code positions (what ``pool`` and token means read)."""
        batch, n, length = input_ids.shape
        input_ids = input_ids.reshape(batch * n, length)
        position_ids = position_ids.reshape(batch * n, length)
        mask = attention_mask.reshape(batch * n, length, length).bool()
        embeddings = self.embed(input_ids, mask, position_ids)
        # A ready 4-D additive mask is used as is by every attention implementation. -1e4 (not finfo.min)
        # stays finite when autocast moves it to fp16/bf16, so fully masked padding rows cannot turn into NaN.
        additive = (~mask)[:, None].to(embeddings.dtype) * MASKED
        output = self.encoder(inputs_embeds=embeddings, attention_mask=additive, position_ids=position_ids,
                              output_hidden_states=output_hidden_states)
        return output, position_ids.ge(FIRST_TOKEN_POSITION).long()

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 position_ids: torch.Tensor) -> torch.Tensor:
        """``[B, n, L]`` inputs and ``[B, n, L, L]`` mask -> ``[B, n * H]`` pooled vectors."""
        output, mask = self.encode(input_ids, attention_mask, position_ids)
        return self.pool(output.last_hidden_state, mask).reshape(input_ids.shape[0], -1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                position_ids: torch.Tensor) -> torch.Tensor:
        if input_ids.dim() == 2:  # one function per row
            input_ids, attention_mask, position_ids = (
                input_ids.unsqueeze(1), attention_mask.unsqueeze(1), position_ids.unsqueeze(1))
        return self.head(self.features(input_ids, attention_mask, position_ids))


def build_graphcodebert_classifier(encoder: PreTrainedModel, num_inputs: int = 1, num_labels: int = 2,
                                   pooling: str = "first", pair_head: str = "concat",
                                   dropout: float | None = None) -> GraphCodeBERTClassifier:
    """A GraphCodeBERT classifier around a RoBERTa-layout encoder (e.g. ``microsoft/graphcodebert-base``)."""
    return GraphCodeBERTClassifier(encoder, num_inputs=num_inputs, num_labels=num_labels, dropout=dropout,
                                   pooling=pooling, pair_head=pair_head)


def as_graph_classifier(model: CodeClassifier) -> GraphCodeBERTClassifier:
    """The same encoder and head (shared, not copied) fed data-flow inputs."""
    graph = GraphCodeBERTClassifier(model.encoder, num_inputs=model.num_inputs, num_labels=model.num_labels,
                                    dropout=model.classifier.dropout.p, pooling=model.pooling,
                                    pair_head=model.pair_head)
    graph.classifier = model.classifier
    return graph
