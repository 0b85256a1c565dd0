"""Knowledge-base documents: front-matter validation, loading and heading-aware chunking.

A document is a markdown file ``<root>/<collection>/<name>.md`` that starts with YAML front-matter::

    ---
    id: churn-risk-playbook            # kebab-case, unique across the knowledge base
    title: Churn-risk playbook
    collection: best_practices         # must equal the folder name and be a known collection
    tags: [churn, retention]           # kebab-case
    owner: revops-team
    updated: 2026-10-01                # YYYY-MM-DD
    taxonomy: [revenue_event.churn]    # taxonomy node ids (checked by taxonomy.check_document_links)
    review_days: 180                   # optional: review period; the health report flags it when overdue
    ---
    Intro paragraph ...
    ## A section
    ...

:func:`load_documents` reports every problem of every file at once as one :class:`ValidationFailed`
whose problems read ``<collection>/<file>.md:<line>: <field>: <what is wrong>``.

:func:`chunk_document` splits a body along its headings (``#`` … ``######``, ignoring fenced code),
falling back to paragraph → sentence → word packing for sections longer than ``max_chars``; markdown
links keep only their text (``[guide](kb:x)`` → ``guide``). A chunk's
id is a hash of (doc id, heading path, chunk text), so editing one section changes only that
section's chunk ids and everything else keeps its id (and its stored vector).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from hashlib import blake2b
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, field_validator

from revops_pipelines.errors import ValidationFailed
from revops_pipelines.validation import StrictModel, parse

#: Known collections and what belongs in each. ``load_documents`` accepts an override.
COLLECTIONS: dict[str, str] = {
    "best_practices": "RevOps playbooks and processes (churn risk, renewals, onboarding, forecasting).",
    "product": "Beacon product knowledge: what each feature does and how customers use it.",
    "troubleshooting": "Known problems with symptoms, causes and fixes.",
}

#: How long a document may go without review before the health report calls it stale (days).
#: A document's ``review_days`` front-matter field overrides its collection's default.
REVIEW_DAYS: dict[str, int] = {"best_practices": 365, "product": 180, "troubleshooting": 180}

SLUG = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
NODE_ID = r"^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+$"
DEFAULT_MAX_CHARS = 1500


def content_hash(*parts: Any) -> str:
    """Stable 128-bit hex digest of text (or of several values, JSON-encoded), newline-normalised."""
    if len(parts) == 1 and isinstance(parts[0], str):
        payload = parts[0].replace("\r\n", "\n").replace("\r", "\n")
    else:
        payload = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return blake2b(payload.encode("utf-8"), digest_size=16).hexdigest()


# -- YAML with line numbers and duplicate-key detection --------------------------------------------
class LineDict(dict):
    """A mapping loaded from YAML that remembers where it started (1-based) and its keys' lines."""

    line: int = 0
    key_lines: dict[str, int]


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[str(key)] = key_node.start_mark.line + 1
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str, *, line_offset: int = 0) -> Any:
    """``yaml.safe_load`` that rejects duplicate keys and returns :class:`LineDict` mappings.

    Raises ``ValueError("line N: problem")`` for syntax errors; ``line_offset`` shifts reported lines.
    """
    try:
        data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1 + line_offset}" if mark else "YAML"
        raise ValueError(f"{where}: {err.problem or err.context or 'invalid YAML'}") from None
    except (yaml.YAMLError, TypeError) as err:  # TypeError: an unhashable (list/map) key
        raise ValueError(f"invalid YAML: {err}") from None
    if line_offset:
        _shift_lines(data, line_offset)
    return data


def _shift_lines(data: Any, offset: int) -> None:
    if isinstance(data, LineDict):
        data.line += offset
        data.key_lines = {k: v + offset for k, v in data.key_lines.items()}
        for v in data.values():
            _shift_lines(v, offset)
    elif isinstance(data, list):
        for v in data:
            _shift_lines(v, offset)


def located(problems: Iterable[str], where: str, data: Any, default_line: int | None = None) -> list[str]:
    """Prefix pydantic-style problems (``field.path: msg``) with ``where:line`` using YAML key lines."""
    out = []
    for p in problems:
        line = default_line
        if isinstance(data, LineDict):
            key = p.split(":", 1)[0].split(".", 1)[0]
            line = data.key_lines.get(key, data.line or default_line)
        out.append(f"{where}:{line}: {p}" if line else f"{where}: {p}")
    return out


# -- models ----------------------------------------------------------------------------------------
class FrontMatter(StrictModel):
    """The YAML header every knowledge-base document must carry."""

    id: str = Field(pattern=SLUG, max_length=120, description="kebab-case, unique across the KB")
    title: str = Field(min_length=3, max_length=200)
    collection: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="must equal the folder name")
    tags: list[str] = Field(default_factory=list, max_length=20)
    owner: str = Field(min_length=2, max_length=120, description="team or person who keeps it current")
    updated: date
    taxonomy: list[str] = Field(min_length=1, description="taxonomy node ids this document relates to")
    review_days: int | None = Field(
        default=None,
        ge=7,
        le=1095,
        description="review period in days (default per collection, see REVIEW_DAYS)",
    )

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        bad = [t for t in v if not re.match(SLUG, t)]
        if bad:
            raise ValueError(f"tags must be kebab-case, got {bad}")
        if len(set(v)) != len(v):
            raise ValueError("tags contain duplicates")
        return v

    @field_validator("taxonomy")
    @classmethod
    def _taxonomy(cls, v: list[str]) -> list[str]:
        bad = [t for t in v if not re.match(NODE_ID, t)]
        if bad:
            raise ValueError(f"taxonomy ids look like 'product_feature.integrations', got {bad}")
        if len(set(v)) != len(v):
            raise ValueError("taxonomy contains duplicates")
        return v


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    collection: str
    tags: tuple[str, ...]
    owner: str
    updated: date
    taxonomy: tuple[str, ...]
    body: str
    source: str  # path relative to the docs root, e.g. "product/automation-guide.md"
    body_line: int  # 1-based line of the file where the body starts
    content_hash: str  # hash of the whole file (front-matter + body)
    field_lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    review_days: int | None = None

    @property
    def review_period(self) -> int:
        """Days between reviews: the document's own ``review_days`` or its collection's default."""
        return self.review_days or REVIEW_DAYS.get(self.collection, 180)

    def review_due(self) -> date:
        from datetime import timedelta

        return self.updated + timedelta(days=self.review_period)

    def line_of(self, key: str) -> int:
        """1-based line of a front-matter field (for error messages)."""
        return self.field_lines.get(key, 2)

    @property
    def word_count(self) -> int:
        return len(re.findall(r"\w+", self.body))


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    doc_id: str
    title: str
    collection: str
    tags: tuple[str, ...]
    taxonomy: tuple[str, ...]
    heading_path: tuple[str, ...]
    text: str
    position: int  # order within the document, from 0
    content_hash: str = field(default="")  # hash of every stored field except the vector

    @property
    def heading(self) -> str:
        return " > ".join(self.heading_path)

    @property
    def embedding_text(self) -> str:
        """What the embedder sees: title and heading path give a short section its context."""
        return f"{self.title}\n{self.heading}\n{self.text}"

    @property
    def embed_hash(self) -> str:
        """Changes exactly when the vector must be recomputed (a moved chunk keeps its vector)."""
        return content_hash(self.embedding_text)


# -- parsing ---------------------------------------------------------------------------------------
_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")


def _split_front_matter(text: str, where: str) -> tuple[str, str, int]:
    """Return (front-matter yaml, body, body start line)."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        raise ValidationFailed(
            "knowledge-base document",
            [
                f"{where}:1: missing front-matter: the file must start with a '---' line, then YAML, then '---'"
            ],
        )
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1 :]), i + 2
    raise ValidationFailed(
        "knowledge-base document", [f"{where}:1: front-matter is not closed: add a '---' line after the YAML"]
    )


def parse_document(
    text: str, source: str, *, collections: Iterable[str] | None = None, folder: str | None = None
) -> Document:
    """Validate one document's text; ``source`` names it in errors. Raises :class:`ValidationFailed`."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    fm_text, body, body_line = _split_front_matter(text, source)
    try:
        data = load_yaml(fm_text, line_offset=1)
    except ValueError as err:
        raise ValidationFailed("knowledge-base document", [f"{source}: front-matter {err}"]) from None
    if not isinstance(data, dict):
        raise ValidationFailed(
            "knowledge-base document", [f"{source}:2: front-matter must be a YAML mapping of fields"]
        )
    try:
        fm = parse(FrontMatter, dict(data), "front-matter")
    except ValidationFailed as err:
        raise ValidationFailed("knowledge-base document", located(err.problems, source, data, 2)) from None

    problems: list[str] = []
    known = set(COLLECTIONS if collections is None else collections)
    line = data.key_lines.get("collection", 2) if isinstance(data, LineDict) else 2
    if fm.collection not in known:
        problems.append(
            f"{source}:{line}: collection: unknown collection {fm.collection!r} (known: {', '.join(sorted(known))})"
        )
    if folder is not None and fm.collection != folder:
        problems.append(
            f"{source}:{line}: collection: {fm.collection!r} does not match its folder {folder!r}"
        )
    if not body.strip():
        problems.append(f"{source}:{body_line}: the document has no body")
    elif not any(m and len(m.group(1)) >= 2 for m in map(_HEADING.match, _outside_fences(body))):
        problems.append(f"{source}:{body_line}: the body has no '## ' section headings (needed for chunking)")
    if problems:
        raise ValidationFailed("knowledge-base document", problems)
    return Document(
        id=fm.id,
        title=fm.title,
        collection=fm.collection,
        tags=tuple(fm.tags),
        owner=fm.owner,
        updated=fm.updated,
        taxonomy=tuple(fm.taxonomy),
        body=body.strip("\n"),
        source=source,
        body_line=body_line,
        content_hash=content_hash(text),
        field_lines=dict(data.key_lines) if isinstance(data, LineDict) else {},
        review_days=fm.review_days,
    )


def _outside_fences(text: str) -> list[str]:
    """The lines of ``text`` with fenced code blocks blanked out (so '# comment' is not a heading)."""
    out, fence = [], None
    for line in text.split("\n"):
        m = _FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
            out.append("")
        elif fence is not None:
            if m and m.group(1) == fence:
                fence = None
            out.append("")
        else:
            out.append(line)
    return out


def load_documents(root: str | Path, *, collections: Iterable[str] | None = None) -> list[Document]:
    """Load and validate every ``<root>/<collection>/**/*.md``, sorted by (collection, id).

    All problems in all files are collected and raised together as one :class:`ValidationFailed`
    (``what`` names the root; each problem starts with the file and line).
    """
    root = Path(root)
    if not root.is_dir():
        raise ValidationFailed("knowledge-base documents", [f"{root}: not a directory"])
    known = set(COLLECTIONS if collections is None else collections)
    problems: list[str] = []
    docs: list[Document] = []
    seen: dict[str, str] = {}
    for path in sorted(root.rglob("*.md")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        source = rel.as_posix()
        if len(rel.parts) < 2:
            problems.append(f"{source}: documents live in a collection folder ({', '.join(sorted(known))})")
            continue
        folder = rel.parts[0]
        if folder not in known:
            problems.append(
                f"{source}: unknown collection folder {folder!r} (known: {', '.join(sorted(known))})"
            )
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            problems.append(f"{source}: cannot read: {err}")
            continue
        try:
            doc = parse_document(text, source, collections=known, folder=folder)
        except ValidationFailed as err:
            problems.extend(err.problems)
            continue
        if doc.id in seen:
            problems.append(f"{source}: id: {doc.id!r} is already used by {seen[doc.id]}")
            continue
        seen[doc.id] = source
        docs.append(doc)
    if problems:
        raise ValidationFailed(f"knowledge-base documents under {root}", problems)
    return sorted(docs, key=lambda d: (d.collection, d.id))


def content_files(root: str | Path) -> dict[str, str]:
    """``{relative path: content hash}`` of every content file under ``root`` (docs, taxonomies, eval).

    This is what the content sensor keeps as its cursor, and what :attr:`ValidationReport.fingerprint`
    summarises.
    """
    root = Path(root)
    out: dict[str, str] = {}
    for sub, patterns in (
        ("docs", ("*.md",)),
        ("taxonomies", ("*.yaml", "*.yml")),
        ("eval", ("*.yaml", "*.yml")),
    ):
        base = root / sub
        if not base.is_dir():
            continue
        for pattern in patterns:
            for path in base.rglob(pattern):
                rel = path.relative_to(root)
                if any(part.startswith(".") for part in rel.parts):
                    continue
                out[rel.as_posix()] = content_hash(path.read_bytes().decode("utf-8", errors="replace"))
    return dict(sorted(out.items()))


# -- links ---------------------------------------------------------------------------------------
_LINK = re.compile(r"(?<!!)\[([^\]\n]+)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


@dataclass(frozen=True)
class Link:
    """A markdown link in a document body: ``[text](target)``.

    Internal targets are ``kb:<doc-id>``, ``kb:<doc-id>#<anchor>`` or a relative ``*.md`` path
    (``../product/automation-guide.md#plan-limits``); ``http(s)``/``mailto`` targets are external.
    """

    source: str  # the linking document's path, e.g. "best_practices/churn-risk-playbook.md"
    line: int  # 1-based line in the file
    text: str
    target: str

    @property
    def external(self) -> bool:
        return self.target.startswith(("http://", "https://", "mailto:"))


def extract_links(doc: Document) -> list[Link]:
    """Every markdown link of ``doc``'s body outside fenced code, with its line in the file."""
    out = []
    for offset, line in enumerate(_outside_fences(doc.body)):
        for m in _LINK.finditer(line):
            out.append(Link(doc.source, doc.body_line + offset, m.group(1), m.group(2)))
    return out


def strip_link_targets(text: str) -> str:
    """``[text](target)`` → ``text``, outside fenced code: chunk text keeps what a reader sees, so link
    paths and document ids do not count as words in search (links are checked by validation)."""
    if "](" not in text:
        return text
    lines = text.split("\n")
    visible = _outside_fences(text)
    return "\n".join(
        _LINK.sub(lambda m: m.group(1), line) if line == vis else line
        for line, vis in zip(lines, visible, strict=True)
    )


def slugify_heading(heading: str) -> str:
    """GitHub-style anchor of a heading: lower-case, punctuation dropped, spaces to hyphens."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return re.sub(r"\s", "-", slug)


def heading_anchors(doc: Document) -> set[str]:
    """Anchors of every heading in ``doc`` (for checking ``#anchor`` links)."""
    anchors = set()
    for line in _outside_fences(doc.body):
        m = _HEADING.match(line)
        if m:
            anchors.add(slugify_heading(m.group(2)))
    return anchors


def resolve_link(
    link: Link, docs_by_source: dict[str, Document], docs_by_id: dict[str, Document]
) -> str | None:
    """``None`` if an internal link resolves to an existing document (and anchor), else the problem."""
    import posixpath

    target, _, anchor = link.target.partition("#")
    if link.external:
        return None
    if target.startswith("kb:"):
        doc = docs_by_id.get(target[3:])
        if doc is None:
            return f"links to unknown document id {target[3:]!r}"
    elif target == "":
        doc = docs_by_source.get(link.source)
    elif target.endswith(".md"):
        path = posixpath.normpath(posixpath.join(posixpath.dirname(link.source), target))
        doc = docs_by_source.get(path)
        if doc is None:
            return f"links to missing file {target!r}"
    else:
        return f"link target {link.target!r} is neither kb:<doc-id>, a relative .md path nor http(s)"
    if anchor and doc is not None and anchor not in heading_anchors(doc):
        return f"links to missing heading #{anchor} in {doc.source}"
    return None


# -- chunking --------------------------------------------------------------------------------------
def _sections(doc: Document) -> list[tuple[tuple[str, ...], str]]:
    """(heading path, section text) in order; a first-heading '# ...' line (the page title) is not part
    of any path, so retitling a document keeps its chunk ids."""
    raw = doc.body.split("\n")
    masked = _outside_fences(doc.body)
    stack: list[tuple[int, str]] = []
    out: list[tuple[tuple[str, ...], list[str]]] = [((), [])]
    seen_heading = False
    for line, visible in zip(raw, masked, strict=True):
        m = _HEADING.match(visible)
        if m:
            level, name = len(m.group(1)), m.group(2).strip()
            if level == 1 and not seen_heading:  # the page title line; the title is stored anyway
                seen_heading = True
                continue
            seen_heading = True
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, name))
            out.append((tuple(n for _, n in stack), []))
        else:
            out[-1][1].append(line)
    return [(path, "\n".join(lines).strip()) for path, lines in out if "\n".join(lines).strip()]


def _split_long(text: str, max_chars: int) -> list[str]:
    if len(text) <= max_chars:
        return [text]
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    units: list[str] = []
    for para in paragraphs:
        if len(para) <= max_chars:
            units.append(para)
            continue
        for sentence in re.split(r"(?<=[.!?])\s+|\n(?=\s*(?:[-*+]|\d+\.)\s)", para):
            sentence = sentence.strip()
            while len(sentence) > max_chars:  # one enormous "sentence": cut at a word boundary
                cut = sentence.rfind(" ", 0, max_chars)
                cut = cut if cut > max_chars // 2 else max_chars
                units.append(sentence[:cut].strip())
                sentence = sentence[cut:].strip()
            if sentence:
                units.append(sentence)
    pieces: list[str] = []
    current = ""
    for unit in units:
        sep = "\n\n" if "\n" in unit or (current and current.endswith(("\n", ":"))) else " "
        if current and len(current) + len(sep) + len(unit) > max_chars:
            pieces.append(current)
            current = unit
        else:
            current = f"{current}{sep}{unit}" if current else unit
    if current:
        pieces.append(current)
    return pieces


def chunk_id(doc_id: str, heading_path: Sequence[str], text: str) -> str:
    return content_hash(["chunk", doc_id, list(heading_path), text])


def chunk_document(doc: Document, *, max_chars: int = DEFAULT_MAX_CHARS) -> list[Chunk]:
    """Split a document along its headings; sections over ``max_chars`` are packed into pieces."""
    if max_chars < 100:
        raise ValueError("max_chars must be at least 100")
    chunks: list[Chunk] = []
    used: set[str] = set()
    for path, text in _sections(doc):
        for piece in _split_long(strip_link_targets(text), max_chars):
            cid = chunk_id(doc.id, path, piece)
            n = 1
            while cid in used:  # identical text under the same heading: disambiguate, deterministically
                n += 1
                cid = content_hash(["chunk", doc.id, list(path), piece, n])
            used.add(cid)
            stored = {
                "doc_id": doc.id,
                "title": doc.title,
                "collection": doc.collection,
                "tags": list(doc.tags),
                "taxonomy": list(doc.taxonomy),
                "heading": " > ".join(path),
                "text": piece,
                "position": len(chunks),
            }
            chunks.append(
                Chunk(
                    chunk_id=cid,
                    doc_id=doc.id,
                    title=doc.title,
                    collection=doc.collection,
                    tags=doc.tags,
                    taxonomy=doc.taxonomy,
                    heading_path=path,
                    text=piece,
                    position=len(chunks),
                    content_hash=content_hash(stored),
                )
            )
    return chunks


def chunk_documents(docs: Iterable[Document], *, max_chars: int = DEFAULT_MAX_CHARS) -> list[Chunk]:
    return [c for d in docs for c in chunk_document(d, max_chars=max_chars)]


def default_kb_root() -> Path:
    """The shipped content folder (the ``kb_assets`` package directory), located without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("kb_assets")
    if spec is None or not spec.submodule_search_locations:
        raise ValidationFailed("knowledge-base root", ["the kb_assets package is not importable"])
    return Path(next(iter(spec.submodule_search_locations)))
