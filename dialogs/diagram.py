"""Mermaid diagrams generated from flow definitions, so the docs cannot drift from the code."""

from __future__ import annotations

from dialogs.engine import Flow


def mermaid(flow: Flow) -> str:
    lines = ["flowchart TD", f'    start(["{flow.title}"])']
    previous = "start"
    for step in flow.steps:
        label = step.id
        lines.append(f'    {step.id}["{label}"]')
        edge = f" -- {step.condition} --> " if step.condition else " --> "
        lines.append(f"    {previous}{edge}{step.id}")
        if step.condition:
            # A conditional step may be skipped: show the way around it.
            following = _next_id(flow, step.id)
            lines.append(f"    {previous} -. otherwise .-> {following}")
        previous = step.id
    lines.append('    finish(["summary: inputs, formula, figures, verdict, next steps, sources"])')
    lines.append(f"    {previous} --> finish")
    lines.append(
        "    %% At any step: 戻る (back), やめる (cancel), 最初から (restart), ヘルプ (help), 〇〇を…に修正 (correct)"
    )
    return "\n".join(lines) + "\n"


def _next_id(flow: Flow, step_id: str) -> str:
    ids = [s.id for s in flow.steps]
    index = ids.index(step_id)
    return ids[index + 1] if index + 1 < len(ids) else "finish"
