"""The content sensor: notices changed, added or removed files under ``kb_assets/`` and materialises
only the assets they affect.

Its cursor is the content-hash map of every content file plus a change counter
(``{"seq": 3, "files": {"docs/product/x.md": "<hash>", ...}}``). Each tick hashes the files again,
compares, and — when something changed — asks for one run of the affected assets. The run key is the
counter and the new content's fingerprint, so a retried evaluation of the same tick never starts a
second run, while going back to an earlier content state (A → B → A) still re-indexes. Without a
cursor (first tick) it asks for an initial index of the content. Like every sensor here it is stopped
by default.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import dagster as dg


def diff_files(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, list[str]]:
    """``{"added": [...], "changed": [...], "removed": [...]}`` between two content-hash maps."""
    return {
        "added": sorted(after.keys() - before.keys()),
        "changed": sorted(k for k in after.keys() & before.keys() if after[k] != before[k]),
        "removed": sorted(before.keys() - after.keys()),
    }


def affected_assets(paths: Sequence[str], affected: Mapping[str, Sequence[str]]) -> list[str]:
    """Asset names affected by changes to ``paths`` (top folder → assets), in first-seen order."""
    out: list[str] = []
    for p in paths:
        for name in affected.get(p.split("/", 1)[0], ()):
            if name not in out:
                out.append(name)
    return out


def parse_cursor(cursor: str | None) -> dict[str, str] | None:
    """The file-hash map stored in a cursor, or None for a missing or unreadable cursor."""
    if not cursor:
        return None
    try:
        data = json.loads(cursor)
    except ValueError:
        return None  # an unreadable cursor is treated like none: re-index once, then track again
    files = data.get("files") if isinstance(data, dict) else None
    return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else None


def cursor_seq(cursor: str | None) -> int:
    try:
        return int(json.loads(cursor or "{}").get("seq", 0))
    except (ValueError, TypeError, AttributeError):
        return 0


def build_content_sensor(
    root: str | Path,
    *,
    affected: Mapping[str, Sequence[str]],
    initial: Sequence[str],
    name: str = "kb_content_sensor",
    minimum_interval_seconds: int = 60,
) -> dg.SensorDefinition:
    """A sensor over the content folder ``root`` (``docs/``, ``taxonomies/``, ``eval/``).

    ``affected`` maps a top-level folder to the asset names a change there affects; ``initial`` is what
    the first tick (no cursor) materialises.
    """
    root = Path(root)
    selection = sorted({a for names in affected.values() for a in names} | set(initial))

    @dg.sensor(
        name=name,
        asset_selection=dg.AssetSelection.assets(*selection),
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            "Watches kb_assets/ (documents, taxonomies, labelled queries) by content hash and materialises "
            "only the assets a change affects."
        ),
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        # imported per tick, not at load: the documents module (front-matter model, YAML loader) is
        # not needed to define the sensor (defs_load, issue 12)
        from revops_pipelines.kb.documents import content_files, content_hash

        files = {k: v[:16] for k, v in content_files(root).items()}
        fingerprint = content_hash(files)[:16]
        before = parse_cursor(context.cursor)
        seq = cursor_seq(context.cursor) + (0 if before == files else 1)
        cursor = json.dumps({"seq": seq, "files": files}, sort_keys=True, separators=(",", ":"))
        run_key = f"kb-content-{seq}-{fingerprint}"
        if before is None:
            return dg.SensorResult(
                run_requests=[
                    dg.RunRequest(
                        run_key=run_key,
                        asset_selection=[dg.AssetKey(a) for a in initial],
                        tags={"kb/trigger": "initial", "kb/files": str(len(files))},
                    )
                ],
                cursor=cursor,
            )
        diff = diff_files(before, files)
        changed = [*diff["added"], *diff["changed"], *diff["removed"]]
        if not changed:
            return dg.SensorResult(skip_reason="no content changes", cursor=cursor)
        assets = affected_assets(changed, affected)
        if not assets:
            return dg.SensorResult(
                skip_reason=f"{len(changed)} changed file(s) affect no asset", cursor=cursor
            )
        summary = ", ".join(f"{len(v)} {k}" for k, v in diff.items() if v)
        context.log.info(f"kb content changed ({summary}): {changed[:10]}")
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=run_key,
                    asset_selection=[dg.AssetKey(a) for a in assets],
                    tags={
                        "kb/trigger": "content_change",
                        "kb/added": str(len(diff["added"])),
                        "kb/changed": str(len(diff["changed"])),
                        "kb/removed": str(len(diff["removed"])),
                    },
                )
            ],
            cursor=cursor,
        )

    return _sensor
