"""Versioned taxonomies: customer segments, product features, revenue events.

File format (one taxonomy per ``*.yaml``)::

    taxonomy:
      id: product_features          # snake_case, unique across files
      version: 1.2.0                # semver; bump it when ids or meanings change
      namespace: product_feature    # every node id starts with "<namespace>."
      description: ...
      nodes:
        - id: product_feature.integrations
          name: Integrations
          description: ...
          keywords: [salesforce, hubspot, sync]          # optional, for text tagging
        - id: product_feature.integrations.crm_sync
          name: CRM sync
          parent: product_feature.integrations          # optional; must exist in the same file
          rules:                                        # optional, for record classification
            - {field: arr, op: ">=", value: 100000}
          match: all                                    # all (default) | any of the rules

Loading checks structure (pydantic), unique ids, the namespace prefix, that parents exist and that
the parent links have no cycle; every problem names the file, the line and the node.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from revops_pipelines.errors import ValidationFailed
from revops_pipelines.kb.documents import NODE_ID, Document, LineDict, load_documents, load_yaml, located
from revops_pipelines.validation import StrictModel, parse

Op = Literal["==", "!=", ">", ">=", "<", "<=", "in", "not_in", "between", "contains"]


class Rule(StrictModel):
    """A condition on one field of a record (e.g. an account row): ``field op value``."""

    field: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    op: Op
    value: Any

    @model_validator(mode="after")
    def _value_shape(self) -> Rule:
        if self.op in ("in", "not_in") and not isinstance(self.value, list):
            raise ValueError(f"op {self.op!r} needs a list value")
        if self.op == "between" and not (
            isinstance(self.value, list)
            and len(self.value) == 2
            and all(isinstance(v, int | float) for v in self.value)
        ):
            raise ValueError("op 'between' needs [low, high] numbers (low inclusive, high exclusive)")
        if self.op in (">", ">=", "<", "<=") and not isinstance(self.value, int | float):
            raise ValueError(f"op {self.op!r} needs a number")
        return self

    def matches(self, record: Mapping[str, Any]) -> bool:
        if self.field not in record or record[self.field] is None:
            return False
        x = record[self.field]
        v = self.value
        try:
            match self.op:
                case "==":
                    return x == v
                case "!=":
                    return x != v
                case ">":
                    return x > v
                case ">=":
                    return x >= v
                case "<":
                    return x < v
                case "<=":
                    return x <= v
                case "in":
                    return x in v
                case "not_in":
                    return x not in v
                case "between":
                    return v[0] <= x < v[1]
                case "contains":
                    return v in x
        except TypeError:
            return False
        return False


class Node(StrictModel):
    id: str = Field(pattern=NODE_ID)
    name: str = Field(min_length=1, max_length=120)
    description: str = Field(min_length=1)
    parent: str | None = None
    keywords: list[str] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    match: Literal["all", "any"] = "all"

    def matches(self, record: Mapping[str, Any]) -> bool:
        """Whether the record satisfies this node's own rules (a node without rules never matches)."""
        if not self.rules:
            return False
        results = (r.matches(record) for r in self.rules)
        return all(results) if self.match == "all" else any(results)


class TaxonomySpec(StrictModel):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$", description="semantic version, e.g. 1.0.0")
    namespace: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = Field(min_length=1)
    nodes: list[Node] = Field(min_length=1)


class TaxonomyFile(StrictModel):
    taxonomy: TaxonomySpec


@dataclass
class Taxonomy:
    """A validated taxonomy with tree lookups, keyword tagging and rule-based classification."""

    id: str
    version: str
    namespace: str
    description: str
    nodes: dict[str, Node]
    source: str = ""
    _children: dict[str | None, list[str]] = field(default_factory=dict, repr=False)
    _keyword_patterns: list[tuple[str, re.Pattern[str]]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._children = {}
        for node in self.nodes.values():
            self._children.setdefault(node.parent, []).append(node.id)
        self._keyword_patterns = [
            (
                n.id,
                re.compile(
                    r"(?<![a-z0-9])(?:"
                    + "|".join(re.escape(k.lower()) for k in sorted(n.keywords, key=len, reverse=True))
                    + r")(?![a-z0-9])"
                ),
            )
            for n in self.nodes.values()
            if n.keywords
        ]

    # -- lookups ---------------------------------------------------------------------------------
    def __contains__(self, node_id: object) -> bool:
        return node_id in self.nodes

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    def get(self, node_id: str) -> Node:
        try:
            return self.nodes[node_id]
        except KeyError:
            hint = difflib.get_close_matches(node_id, list(self.nodes), n=1)
            raise KeyError(
                f"taxonomy {self.id!r} has no node {node_id!r}"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
            ) from None

    def roots(self) -> list[Node]:
        return [self.nodes[i] for i in self._children.get(None, [])]

    def children(self, node_id: str) -> list[Node]:
        self.get(node_id)
        return [self.nodes[i] for i in self._children.get(node_id, [])]

    def parent(self, node_id: str) -> Node | None:
        p = self.get(node_id).parent
        return self.nodes[p] if p else None

    def ancestors(self, node_id: str) -> list[Node]:
        """Nearest first."""
        out, node = [], self.get(node_id)
        while node.parent:
            node = self.nodes[node.parent]
            out.append(node)
        return out

    def path(self, node_id: str) -> list[Node]:
        """Root first, ending with the node itself."""
        return [*reversed(self.ancestors(node_id)), self.get(node_id)]

    def descendants(self, node_id: str) -> list[Node]:
        out: list[Node] = []
        stack = [c.id for c in reversed(self.children(node_id))]
        while stack:
            nid = stack.pop()
            out.append(self.nodes[nid])
            stack.extend(reversed(self._children.get(nid, [])))
        return out

    def depth(self, node_id: str) -> int:
        return len(self.ancestors(node_id))

    def is_a(self, node_id: str, ancestor_id: str) -> bool:
        """True if ``node_id`` is ``ancestor_id`` or below it."""
        return node_id == ancestor_id or any(a.id == ancestor_id for a in self.ancestors(node_id))

    # -- using the taxonomy ----------------------------------------------------------------------
    def match_keywords(self, text: str) -> list[tuple[str, int]]:
        """Nodes whose keywords occur in ``text`` (whole words, case-insensitive), most hits first."""
        low = text.lower()
        hits = [(nid, len(p.findall(low))) for nid, p in self._keyword_patterns]
        return sorted(((nid, n) for nid, n in hits if n), key=lambda x: -x[1])

    def classify(self, record: Mapping[str, Any]) -> list[str]:
        """Ids of nodes whose rules match ``record`` and whose ruled ancestors match too (file order)."""
        out = []
        for node in self.nodes.values():
            if node.matches(record) and all(a.matches(record) for a in self.ancestors(node.id) if a.rules):
                out.append(node.id)
        return out

    def rows(self) -> list[dict[str, Any]]:
        """Flat records (one per node) — e.g. for a warehouse dimension table."""
        return [
            {
                "taxonomy_id": self.id,
                "taxonomy_version": self.version,
                "node_id": n.id,
                "name": n.name,
                "parent_id": n.parent,
                "depth": self.depth(n.id),
                "description": n.description,
                "keywords": list(n.keywords),
            }
            for n in self.nodes.values()
        ]


class Taxonomies(Mapping[str, Taxonomy]):
    """All loaded taxonomies by id, with lookups of nodes across them."""

    def __init__(self, taxonomies: Iterable[Taxonomy]):
        self._by_id = {t.id: t for t in taxonomies}
        self._owner = {nid: t for t in self._by_id.values() for nid in t.nodes}

    def __getitem__(self, taxonomy_id: str) -> Taxonomy:
        return self._by_id[taxonomy_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def has_node(self, node_id: str) -> bool:
        return node_id in self._owner

    def node(self, node_id: str) -> Node:
        return self.owner(node_id).nodes[node_id]

    def owner(self, node_id: str) -> Taxonomy:
        try:
            return self._owner[node_id]
        except KeyError:
            hint = difflib.get_close_matches(node_id, list(self._owner), n=1)
            raise KeyError(
                f"unknown taxonomy node {node_id!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
            ) from None

    def node_ids(self) -> list[str]:
        return list(self._owner)

    def versions(self) -> dict[str, str]:
        return {t.id: t.version for t in self._by_id.values()}


# -- loading ---------------------------------------------------------------------------------------
def _node_line(raw: Any, index: int) -> int | None:
    try:
        node = raw["taxonomy"]["nodes"][index]
    except (KeyError, IndexError, TypeError):
        return None
    return node.line if isinstance(node, LineDict) else None


def _structural_problems(spec: TaxonomySpec, raw: Any, source: str) -> list[str]:
    problems: list[str] = []
    first: dict[str, int] = {}
    for i, node in enumerate(spec.nodes):
        where = f"{source}:{_node_line(raw, i) or '?'}: node {node.id!r}"
        if node.id in first:
            problems.append(f"{where}: duplicate id (first defined as node #{first[node.id] + 1})")
            continue
        first[node.id] = i
        if not node.id.startswith(spec.namespace + "."):
            problems.append(f"{where}: id must start with the namespace '{spec.namespace}.'")
    ids = set(first)
    for i, node in enumerate(spec.nodes):
        where = f"{source}:{_node_line(raw, i) or '?'}: node {node.id!r}"
        if node.parent is not None and node.parent not in ids:
            hint = difflib.get_close_matches(node.parent, sorted(ids - {node.id}), n=1)
            problems.append(
                f"{where}: parent {node.parent!r} does not exist"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
            )
        if node.parent == node.id:
            problems.append(f"{where}: is its own parent")
    if problems:
        return problems
    # cycles: follow parent links; a walk that revisits a node is a cycle
    parent = {n.id: n.parent for n in spec.nodes}
    reported: set[str] = set()
    for i, node in enumerate(spec.nodes):
        seen: list[str] = []
        cur: str | None = node.id
        while cur is not None and cur not in seen:
            seen.append(cur)
            cur = parent[cur]
        if cur is not None:
            cycle = seen[seen.index(cur) :]
            key = min(cycle)
            if key not in reported:
                reported.add(key)
                where = f"{source}:{_node_line(raw, i) or '?'}: node {node.id!r}"
                problems.append(f"{where}: parent links form a cycle: {' -> '.join([*cycle, cur])}")
    return problems


def parse_taxonomy(text: str, source: str) -> Taxonomy:
    """Validate one taxonomy file's text; ``source`` names it in errors."""
    try:
        raw = load_yaml(text)
    except ValueError as err:
        raise ValidationFailed("taxonomy", [f"{source}: {err}"]) from None
    if not isinstance(raw, dict) or "taxonomy" not in raw:
        raise ValidationFailed("taxonomy", [f"{source}:1: expected a top-level 'taxonomy:' mapping"])
    try:
        spec = parse(TaxonomyFile, raw, "taxonomy").taxonomy
    except ValidationFailed as err:
        problems = []
        for p in err.problems:
            m = re.match(r"taxonomy\.nodes\.(\d+)", p)
            line = _node_line(raw, int(m.group(1))) if m else None
            if line is None:
                inner = raw.get("taxonomy")
                problems.extend(located([p.removeprefix("taxonomy.")], source, inner, 1))
            else:
                node = raw["taxonomy"]["nodes"][int(m.group(1))]
                nid = node.get("id") if isinstance(node, dict) else None
                problems.append(f"{source}:{line}: node {nid!r}: {p.removeprefix(m.group(0) + '.')}")
        raise ValidationFailed("taxonomy", problems) from None
    problems = _structural_problems(spec, raw, source)
    if problems:
        raise ValidationFailed("taxonomy", problems)
    return Taxonomy(
        id=spec.id,
        version=spec.version,
        namespace=spec.namespace,
        description=spec.description,
        nodes={n.id: n for n in spec.nodes},
        source=source,
    )


def load_taxonomy(path: str | Path) -> Taxonomy:
    path = Path(path)
    return parse_taxonomy(path.read_text(encoding="utf-8"), path.name)


def load_taxonomies(root: str | Path) -> Taxonomies:
    """Load every ``*.yaml`` / ``*.yml`` under ``root``; all problems are raised together."""
    root = Path(root)
    if not root.is_dir():
        raise ValidationFailed("taxonomies", [f"{root}: not a directory"])
    problems: list[str] = []
    loaded: list[Taxonomy] = []
    for path in sorted([*root.glob("*.yaml"), *root.glob("*.yml")]):
        source = path.relative_to(root).as_posix()
        try:
            loaded.append(parse_taxonomy(path.read_text(encoding="utf-8"), source))
        except ValidationFailed as err:
            problems.extend(err.problems)
        except (OSError, UnicodeDecodeError) as err:
            problems.append(f"{source}: cannot read: {err}")
    ids: dict[str, str] = {}
    namespaces: dict[str, str] = {}
    for t in loaded:
        if t.id in ids:
            problems.append(f"{t.source}: taxonomy id {t.id!r} is already used by {ids[t.id]}")
        if t.namespace in namespaces:
            problems.append(
                f"{t.source}: namespace {t.namespace!r} is already used by {namespaces[t.namespace]}"
            )
        ids.setdefault(t.id, t.source)
        namespaces.setdefault(t.namespace, t.source)
    if not loaded and not problems:
        problems.append(f"{root}: no taxonomy files (*.yaml)")
    if problems:
        raise ValidationFailed(f"taxonomies under {root}", problems)
    return Taxonomies(loaded)


def link_problems(documents: Sequence[Document], taxonomies: Taxonomies) -> list[str]:
    problems = []
    known = taxonomies.node_ids()
    for doc in documents:
        for node_id in doc.taxonomy:
            if not taxonomies.has_node(node_id):
                hint = difflib.get_close_matches(node_id, known, n=1)
                problems.append(
                    f"{doc.source}:{doc.line_of('taxonomy')}: taxonomy: unknown node {node_id!r}"
                    + (f" (did you mean {hint[0]!r}?)" if hint else "")
                )
    return problems


def check_document_links(documents: Sequence[Document], taxonomies: Taxonomies) -> None:
    """Raise :class:`ValidationFailed` naming each document (file:line) that links an unknown node."""
    problems = link_problems(documents, taxonomies)
    if problems:
        raise ValidationFailed("document taxonomy links", problems)


@dataclass(frozen=True)
class KBContent:
    documents: list[Document]
    taxonomies: Taxonomies


def validate_kb(root: str | Path) -> KBContent:
    """Load ``<root>/docs`` and ``<root>/taxonomies`` and check the links between them.

    Problems from all three steps are reported together in one :class:`ValidationFailed`.
    """
    root = Path(root)
    problems: list[str] = []
    docs: list[Document] = []
    taxonomies: Taxonomies | None = None
    try:
        docs = load_documents(root / "docs")
    except ValidationFailed as err:
        problems.extend(f"docs/{p}" if not p.startswith(str(root)) else p for p in err.problems)
    try:
        taxonomies = load_taxonomies(root / "taxonomies")
    except ValidationFailed as err:
        problems.extend(f"taxonomies/{p}" if not p.startswith(str(root)) else p for p in err.problems)
    if taxonomies is not None:
        problems.extend(f"docs/{p}" for p in link_problems(docs, taxonomies))
    if problems or taxonomies is None:
        raise ValidationFailed(f"knowledge base at {root}", problems)
    return KBContent(docs, taxonomies)
