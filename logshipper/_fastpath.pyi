"""logshipper/_fastpath.c: docker_json's per-line steps (dockerjson_lines.decode_columns, ecs.render_lines)."""

from typing import Any

def columns(lines: list[bytes], docs: list[Any], offset: int,
            max_message_bytes: int) -> tuple[list[str], list[str], list[str], list[int], int] | None: ...
def render(parts: dict[str, tuple[bytes, ...]], streams: list[str], times: list[str], messages: list[str],
           offsets: list[int], sequence: int) -> list[bytes]: ...
