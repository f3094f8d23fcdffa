"""The checks of one provider or dialect mapping: each compiled section against its variables."""

from __future__ import annotations

from engine.mapping.checks.diagnostics import Report
from engine.mapping.checks.sections import Keys, Reads, Vocabulary, check_reads, check_section
from engine.mapping.checks.vocabulary import (
    DEPLOYMENT,
    ERROR,
    answer_keys,
    chunk_keys,
    request_keys,
    schema_keys,
    state_keys,
)
from engine.mapping.compiler import CompiledSection
from engine.mapping.dialects import DialectMapping
from engine.mapping.spec import ProviderMapping
from engine.mapping.yaml_lines import LineDict

__all__ = ["check_dialect", "check_provider"]

_NO_REQUEST = Keys(frozenset(), "error", "there: discovery has no client request")


def _vocabulary(**keys: Keys | None) -> Vocabulary:
    return {name: value for name, value in keys.items() if value is not None}


def check_provider(mapping: ProviderMapping, tree: LineDict, report: Report) -> None:
    reads: Reads = {}

    def check(section: CompiledSection | None, vocabulary: Vocabulary, group: str = "") -> None:
        if section is not None:
            check_section(section, vocabulary, report, reads, group, (mapping.name, mapping.file))

    operations = tree.get("operations") or {}
    for name, operation in mapping.operations.items():
        sending = _vocabulary(request=request_keys(name, operation.params), deployment=DEPLOYMENT)
        for section in (operation.url, operation.headers, operation.request):
            check(section, sending)
        check(operation.response, sending, f"response:{name}")
        check(operation.response_error, sending, f"response:{name}")
        stream = operation.stream
        if stream is not None and not stream.passthrough:
            stream_tree = operations[name].get("stream")
            reading = {**sending, **_vocabulary(state=state_keys(stream_tree, "start", "update"))}
            check(stream.start, sending)
            check(stream.event, reading, f"event:{name}")
            check(stream.error, reading, f"event:{name}")
    check(mapping.errors, _vocabulary(deployment=DEPLOYMENT), "errors")
    if mapping.discovery is not None:
        discovering = _vocabulary(request=_NO_REQUEST, deployment=DEPLOYMENT)
        check(mapping.discovery.url, discovering)
        check(mapping.discovery.models, discovering, "discovery")
    check_reads(reads, report)


def check_dialect(dialect: DialectMapping, tree: LineDict, report: Report) -> None:
    reads: Reads = {}

    def check(section: CompiledSection | None, vocabulary: Vocabulary, group: str = "") -> None:
        if section is not None:
            check_section(section, vocabulary, report, reads, group)

    body = schema_keys(tree.get("schema"), f"the {dialect.name} dialect's request schema")
    asked = _vocabulary(request=body)
    check(dialect.request, asked, "headers")
    check(dialect.response, {**asked, **_vocabulary(response=answer_keys(dialect.operation))}, "answer")
    check(dialect.error, _vocabulary(error=ERROR))
    check(dialect.error_headers, _vocabulary(error=ERROR))
    if dialect.stream is not None:
        state = state_keys(tree.get("stream"), "start", "update")
        streaming = {**asked, **_vocabulary(state=state)}
        check(dialect.stream.start, asked)
        check(dialect.stream.step, {**streaming, **_vocabulary(chunk=chunk_keys(dialect.operation))}, "chunk")
        check(dialect.stream.end, streaming)
        check(dialect.stream.error, {**streaming, **_vocabulary(error=ERROR)})
    local = tree.get("local_routes") or {}
    for route in dialect.local_routes:
        schema = local[route.name].get("schema") if isinstance(local.get(route.name), dict) else None
        routed = _vocabulary(request=schema_keys(schema, f"the {route.name} route's request schema"))
        check(route.response, routed, f"route:{route.name}")
    if dialect.store is not None:
        store = dialect.store
        for section in (store.save, store.previous, store.id, store.missing):
            check(section, asked, "store")
        final = _vocabulary(state=state_keys(tree.get("stream"), "start", "update"))
        check(store.stream_id, {**asked, **final})
    check_reads(reads, report)
