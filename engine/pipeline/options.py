"""How the pipeline treats every request: the serving settings it reads, built once by the gateway."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PipelineOptions"]


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    drop_params: bool = False
    answer_alias: bool = True  # answers name the model the client asked for (engine.pipeline.model_name)
    request_timeout: float = 600.0
    topology_headers_for_keys: bool = False  # virtual keys see which backends answered, too
    max_answer_bytes: int = 64 * 1024 * 1024  # a whole (non-stream) upstream answer
    max_stream_event_bytes: int = 16 * 1024 * 1024  # one event of an upstream stream
