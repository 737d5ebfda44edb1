"""See a model: a summary table with MACs, and Mermaid architecture diagrams.

``summary(model, input_shape)`` tabulates shapes, parameters and multiply-accumulates;
``mermaid(model, input_shape)`` draws the model as a Mermaid flowchart. Both run one
forward pass with hooks, on the ``meta`` device where the model allows it.
"""
from __future__ import annotations

from .mermaid import mermaid, mermaid_sections, module_kind
from .summary import LayerRow, Summary, summary
from .tracing import count_macs, trace

__all__ = ["LayerRow", "Summary", "count_macs", "mermaid", "mermaid_sections", "module_kind", "summary", "trace"]
