"""Find the topic files in content/topics/ and read their YAML front matter."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from brochure.base.errors import ContentError, Problem
from brochure.base.files import Refused, read_inside
from brochure.project import schema
from brochure.project.schema import Field

TOPICS_DIR = "content/topics"
SLUG = re.compile(r"[a-z0-9][a-z0-9\-]{0,79}")
#: A translation sits beside its source: aftercare.es.md translates aftercare.md.
TRANSLATION = re.compile(r"(?P<slug>[a-z0-9][a-z0-9\-]{0,79})\.(?P<lang>[a-z]{2,3}(?:-[a-z0-9]{2,8})?)")
# A one-page handout is about 60 lines; even a long brochure topic is a few hundred.
MAX_TOPIC_LINES = 2_000
MAX_TOPIC_BYTES = 200_000
#: Front matter is a few short lines; the cap is checked before the YAML is parsed.
MAX_FRONT_MATTER_BYTES = 8 * 1024
MAX_FRONT_MATTER_DEPTH = 10

#: The language of a topic that does not say (with a warning).
DEFAULT_LANG = "en"

FRONT_MATTER_SCHEMA: dict[str, Field] = {
    "title": Field(str, required=True, check=schema.not_blank, example="title: Aftercare"),
    "summary": Field(str, default="", example="summary: What to do after your treatment."),
    "order": Field(int, default=1000, example="order: 3"),
    "lang": Field(str, default=DEFAULT_LANG, check=schema.is_lang, example="lang: en"),
    "reviewed_by": Field(str, default="", example="reviewed_by: Medical director"),
    "reviewed_on": Field(dt.date, example="reviewed_on: 2026-03-01"),
    "review_due": Field(dt.date, example="review_due: 2027-03-01"),
    "follow_up_days": Field(int, check=schema.positive, example="follow_up_days: 14"),
    "follow_ups": Field(
        list,
        items=dict,
        check=lambda v: _follow_ups_problem(v),
        example="follow_ups: [{after_days: 1, template: day1}]",
    ),
    "source_version": Field(
        str,
        check=lambda v: None if re.fullmatch(r"[0-9a-f]{12}", v) else "is not what 'brochure check' prints",
        example="source_version: 3f9a1c2b7d4e",
    ),
    "online_url": Field(
        str, check=schema.is_web_address, example="online_url: https://example.com/aftercare"
    ),
    "treatments": Field(list, items=str, example="treatments: [Botox, Dysport]"),
    "keywords": Field(list, items=str, example="keywords: [bruising, swelling]"),
}


#: The longest a follow-up email may wait after the treatment.
MAX_FOLLOW_UP_DAYS = 365
_TEMPLATE_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@dataclass(frozen=True)
class FollowUp:
    """An email the patient gets ``after_days`` after the treatment, from the follow-up template
    ``template`` (templates/email/follow-ups/TEMPLATE/), when they agreed to follow-ups."""

    after_days: int
    template: str


def _follow_ups_problem(entries: list[dict]) -> str | None:
    """What is wrong with a topic's ``follow_ups`` list (None: nothing)."""
    seen = set()
    for number, entry in enumerate(entries, 1):
        unknown = sorted(set(entry) - {"after_days", "template"})
        if unknown:
            return f"item {number} has an unknown key '{unknown[0]}' (known: after_days, template)"
        days, name = entry.get("after_days"), entry.get("template")
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_FOLLOW_UP_DAYS:
            return f"item {number} needs 'after_days', a whole number of days from 1 to {MAX_FOLLOW_UP_DAYS}"
        if not isinstance(name, str) or not _TEMPLATE_NAME.fullmatch(name):
            return (
                f"item {number} needs 'template', the name of a folder in templates/email/follow-ups/"
                " (small letters, digits and hyphens)"
            )
        if name in seen:
            return f"names the template '{name}' twice"
        seen.add(name)
    return None


@dataclass(frozen=True)
class Topic:
    """One Markdown topic: its front matter and its body."""

    slug: str
    path: Path  # absolute
    shown: str  # path as shown in messages, relative to the project
    title: str
    summary: str
    order: int
    lang: str
    reviewed_by: str
    reviewed_on: dt.date | None
    review_due: dt.date | None
    body: str
    body_line: int  # line number of the body's first line in the file
    #: Days after treatment that the patient should come back, when the topic says.
    follow_up_days: int | None = None
    #: Emails to send after the treatment (see FollowUp), in the order the front matter lists them.
    follow_ups: tuple[FollowUp, ...] = ()
    #: Treatments the topic is about, and words staff may search for.
    treatments: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    #: Where the topic can be read online: printed as a QR code on its handout.
    online_url: str | None = None
    #: A translation (aftercare.es.md): the version of its source it was made from, as
    #: ``source_version`` prints it; None for a source topic, or a translation that does not say.
    translation: bool = False
    source_version: str | None = None
    #: (key, line) of each front matter key, for messages about its value.
    key_lines: tuple[tuple[str, int], ...] = ()


#: The C parser when PyYAML was built with libyaml (several times faster), else the Python one.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _yaml_error(exc: yaml.YAMLError, header: str, shown: str) -> ContentError:
    """The message for front matter that is not valid YAML, placed on its line."""
    if "nesting depth" in str(getattr(exc, "problem", "")):
        # libyaml (0.2.5 and later) stops at 1,000 levels; the Python parser would recurse instead.
        mark = getattr(exc, "problem_mark", None)
        raise _too_deep(shown, mark.line + 2 if mark is not None else 2)
    if _LOADER is not yaml.SafeLoader:
        # libyaml words its messages tersely: ask the Python parser (this file only, on error only).
        try:
            yaml.compose(header, Loader=yaml.SafeLoader)
        except yaml.YAMLError as slow:
            exc = slow
        except RecursionError:
            raise _too_deep(shown, 2) from None
    if isinstance(exc, yaml.reader.ReaderError):
        # A control character typed (or pasted) into the file; the Python parser counts characters.
        line = header[: exc.position].count("\n") + 2
        problem = f"special characters are not allowed (U+{exc.character:04X})"
    else:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        problem = getattr(exc, "problem", None) or "cannot be parsed"
    fix = "put text that contains ':' or '#' in double quotes, and indent nested lines evenly"
    if "escape" in problem or "special characters are not allowed" in problem:
        fix = "type the character itself; a control character or an escape like \\uD800 cannot be printed"
    return ContentError.at(shown, line, f"front matter is not valid YAML: {problem}", fix)


def _too_deep(shown: str, line: int) -> ContentError:
    return ContentError.at(
        shown,
        line,
        f"front matter is nested more than {MAX_FRONT_MATTER_DEPTH} levels deep",
        "use plain 'key: value' lines and simple lists",
    )


def _refuse_aliases(node: yaml.Node, shown: str) -> None:
    """Refuse a value used twice through a YAML anchor (&) and alias (*), and deep nesting.

    Aliases let a few lines stand for billions of values (an "alias bomb"),
    and front matter never needs them. A composed alias is the very node
    its anchor made, so a node met twice is an alias; the walk is linear.
    An alias's line is that of its key, or where its list starts.
    """
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, int, int]] = [(node, node.start_mark.line + 2, 0)]
    while stack:
        current, line, depth = stack.pop()
        if id(current) in seen:
            raise ContentError.at(
                shown,
                line,
                "front matter repeats a value with a YAML anchor (&) and alias (*), which is not allowed",
                "write the value out in full; put text that starts with '&' or '*' in double quotes",
            )
        seen.add(id(current))
        if depth > MAX_FRONT_MATTER_DEPTH:
            raise _too_deep(shown, line)
        if isinstance(current, yaml.MappingNode):
            children = [
                (child, key.start_mark.line + 2, depth + 1)
                for key, value in current.value
                for child in (key, value)
            ]
        elif isinstance(current, yaml.SequenceNode):
            children = [(item, current.start_mark.line + 2, depth + 1) for item in current.value]
        else:
            continue
        # In document order, so that an anchor is met before its aliases.
        stack += reversed(children)


def _front_matter(header: str, shown: str) -> tuple[Any, dict[str, int]]:
    """Parse front matter once: its data, and the line of each top-level key.

    ``header`` starts on the file's second line. Its size is capped before
    parsing; aliases are refused before anything is built from the tree.
    """
    size = len(header.encode("utf-8", "surrogatepass"))
    if size > MAX_FRONT_MATTER_BYTES:
        raise ContentError.at(
            shown,
            2,
            f"front matter is too long ({size:,} bytes; at most {MAX_FRONT_MATTER_BYTES // 1024} KB)",
            "keep only the known keys in front matter and put the text in the body, below the second '---'",
        )
    loader = _LOADER(header)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        _refuse_aliases(node, shown)
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, header, shown) from None
    except RecursionError:  # the Python parser, without libyaml's depth limit
        raise _too_deep(shown, 2) from None
    finally:
        loader.dispose()
    lines = {}
    if isinstance(node, yaml.MappingNode):
        lines = {
            str(key.value): key.start_mark.line + 2
            for key, _ in node.value
            if isinstance(key, yaml.ScalarNode)
        }
    return data, lines


_UNREADABLE_FIX = {
    "outside": "copy the file into content/topics/ instead of linking to it",
    "not": "replace it with an ordinary Markdown file",
    "larger": "split it into several topics",
}


def parse_topic(path: Path, root: Path) -> tuple[Topic, list[Problem]]:
    """Read one topic file; raise ContentError with every problem in it."""
    shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    slug, file_lang = path.stem, None
    if translated := TRANSLATION.fullmatch(slug):
        slug, file_lang = translated["slug"], translated["lang"]
    if not SLUG.fullmatch(slug):
        raise ContentError.at(
            shown,
            None,
            f"topic file name {path.name!r} is not a usable name",
            "rename it with lower-case letters, digits and '-', like side-effects.md, "
            "or side-effects.es.md for a translation",
        )
    try:
        # Read under the fetcher's rules: a link out of the project, a FIFO or a huge file is never opened.
        data = read_inside(path, [root.resolve()], limit=4 * MAX_TOPIC_BYTES)
    except Refused as exc:
        why = str(exc)
        fix = _UNREADABLE_FIX.get(why.split()[0], "check the file's permissions")
        raise ContentError.at(shown, None, f"cannot be read: {why}", fix) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ContentError.at(
            shown, line, "is not UTF-8 text", "save the file as UTF-8 in your editor"
        ) from None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    lines = text.split("\n")
    if len(lines) > MAX_TOPIC_LINES or len(text) > MAX_TOPIC_BYTES:
        raise ContentError.at(
            shown,
            min(len(lines), MAX_TOPIC_LINES + 1),
            f"is too long for a topic ({len(lines):,} lines; at most {MAX_TOPIC_LINES:,} lines "
            f"and {MAX_TOPIC_BYTES // 1000} KB)",
            "split it into several topics",
        )
    if not lines or lines[0].strip() != "---":
        raise ContentError.at(
            shown,
            1,
            "has no front matter",
            "start the file with a line '---', then 'title: ...', then another '---'",
        )
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() in ("---", "..."))
    except StopIteration:
        raise ContentError.at(
            shown, 1, "front matter is not closed", "add a line '---' after the last front matter line"
        ) from None
    header = "\n".join(lines[1:end])
    front, key_lines = _front_matter(header, shown)
    data = {} if front is None else front
    if not isinstance(data, dict):
        raise ContentError.at(
            shown, 2, "front matter must be 'key: value' lines", "write it like 'title: Aftercare'"
        )
    result = schema.validate(
        data, FRONT_MATTER_SCHEMA, shown, key_lines, kind="front matter", line_if_unknown=1
    )
    if result.errors:
        raise ContentError(result.errors)
    v = result.values
    if file_lang and data.get("lang") is None:
        v["lang"] = file_lang
    elif file_lang and v["lang"].lower() != file_lang:
        raise ContentError.at(
            shown,
            key_lines.get("lang"),
            f"says 'lang: {v['lang']}', but its file name says it is in {file_lang!r}",
            f"set 'lang: {file_lang}', or rename the file to {slug}.{v['lang'].lower()}.md",
        )
    if not file_lang and v["source_version"]:
        raise ContentError.at(
            shown,
            key_lines.get("source_version"),
            "has 'source_version', which only a translation has",
            f"remove it, or name the file after its source and language, like {slug}.es.md",
        )
    topic = Topic(
        slug=slug,
        path=path,
        shown=shown,
        title=v["title"].strip(),
        summary=v["summary"].strip(),
        order=v["order"],
        lang=v["lang"],
        reviewed_by=v["reviewed_by"],
        reviewed_on=v["reviewed_on"],
        review_due=v["review_due"],
        body="\n".join(lines[end + 1 :]),
        body_line=end + 2,
        follow_up_days=v["follow_up_days"],
        follow_ups=tuple(FollowUp(e["after_days"], e["template"]) for e in v["follow_ups"] or ()),
        online_url=v["online_url"],
        translation=file_lang is not None,
        source_version=v["source_version"],
        treatments=tuple(t.strip() for t in v["treatments"] or ()),
        keywords=tuple(k.strip() for k in v["keywords"] or ()),
        key_lines=tuple(key_lines.items()),
    )
    warnings = list(result.warnings)
    if data.get("lang") is None and not file_lang:
        warnings.append(
            Problem(
                shown,
                1,
                f"has no 'lang' in its front matter, so '{DEFAULT_LANG}' (English) was assumed",
                f"add 'lang: {DEFAULT_LANG}', or the topic's language, like 'lang: es'",
            )
        )
    if not topic.body.strip():
        warnings.append(
            Problem(
                shown,
                end + 1,
                "has no text below its front matter, so its pages are empty",
                "write the topic below the second '---' line",
            )
        )
    return topic, warnings


def source_version(topic: Topic) -> str:
    """A short hash of what a translator translates: the title, summary and text of a source topic."""
    text = "\n".join([topic.title, topic.summary, topic.body.strip()])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def load_topics(root: Path) -> tuple[list[Topic], list[Problem]]:
    """Every topic of the project, ordered by 'order' then file name.

    A topic file that has not changed since the last load (the same inode,
    size, modification and change time) is not parsed again: see TopicCache.
    """
    folder = root / TOPICS_DIR
    if not folder.is_dir():
        raise ContentError.at(
            TOPICS_DIR, None, "folder not found", "put one Markdown file per topic in content/topics/"
        )
    topics: list[Topic] = []
    errors: list[Problem] = []
    warnings: list[Problem] = []
    cache = TopicCache.open(root, folder)
    for path in sorted(folder.glob("*.md")):
        found = cache.get(path)
        if found is None:
            try:
                found = parse_topic(path, root)
            except ContentError as exc:
                errors += exc.problems
                continue
            cache.put(path, found)
        topics.append(found[0])
        warnings += found[1]
    cache.save()
    if errors:
        raise ContentError(errors)
    if not topics:
        raise ContentError.at(
            TOPICS_DIR,
            None,
            "holds no topics",
            "add a Markdown file such as aftercare.md with a 'title' in its front matter",
        )
    topics.sort(key=lambda t: (t.order, t.slug, t.translation, t.lang))
    return topics, warnings


class TopicCache:
    """Parsed topics kept between runs, by each file's identity, as git's index keeps hashes.

    At 1,000 topics, parsing every front matter again costs about half a
    second, most of an edit's build. Kept in memory for a long-running
    process (watch, the desk) and in a private file in the user's cache
    folder for the next command. A topic is the project's own text, never a
    patient's. Only a plain file directly in content/topics/, with the
    folder inside the project, is taken from the cache; anything else is
    parsed, and refused, as before. A new version of brochure starts afresh.
    """

    _memory: dict[str, dict] = {}

    def __init__(self, path: Path | None, entries: dict) -> None:
        self.path, self.entries = path, entries
        self.seen: dict[str, tuple] = {}
        self.changed = False

    @classmethod
    def open(cls, root: Path, folder: Path) -> TopicCache:
        try:
            usable = folder.resolve().is_relative_to(root.resolve())
        except OSError:
            usable = False
        if not usable:
            return cls(None, {})
        name = hashlib.blake2b(f"{_CACHE_VERSION}|{root}".encode(), digest_size=16).hexdigest()
        entries = cls._memory.get(name)
        path = _cache_folder() / f"topics-{name}.pickle"
        if entries is None:
            entries = _read_cache(path)
        cache = cls(path, entries)
        cls._memory[name] = cache.seen
        return cache

    @staticmethod
    def _identity(path: Path) -> tuple | None:
        import os
        import stat

        try:
            info = os.lstat(path)
        except OSError:
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)

    def get(self, path: Path) -> tuple[Topic, list[Problem]] | None:
        if self.path is None:
            return None
        entry = self.entries.get(path.name)
        identity = self._identity(path)
        if entry is None or identity is None or entry[0] != identity:
            return None
        self.seen[path.name] = entry
        return entry[1], list(entry[2])

    def put(self, path: Path, found: tuple[Topic, list[Problem]]) -> None:
        identity = self._identity(path)
        if self.path is not None and identity is not None:
            self.seen[path.name] = (identity, found[0], tuple(found[1]))
            self.changed = True

    def save(self) -> None:
        """Write the cache when a topic was parsed or went away; a cache that cannot be written is skipped."""
        if self.path is None or not (self.changed or self.seen.keys() != self.entries.keys()):
            return
        import os
        import pickle
        import tempfile

        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, partial = tempfile.mkstemp(dir=self.path.parent, prefix=".topics-")  # 0600
            with os.fdopen(fd, "wb") as file:
                pickle.dump(self.seen, file, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(partial, self.path)
        except OSError:
            return


def _cache_folder() -> Path:
    import os

    if custom := os.environ.get("BROCHURE_CACHE_DIR"):
        return Path(custom)
    import platformdirs

    return Path(platformdirs.user_cache_dir("brochure", appauthor=False))


def _read_cache(path: Path) -> dict:
    import pickle

    try:
        with path.open("rb") as file:
            entries = pickle.load(file)  # noqa: S301 - this user's own private cache
    except Exception:  # noqa: BLE001 - a missing, old or damaged cache is simply rebuilt
        return {}
    return entries if isinstance(entries, dict) else {}


def _source_stamp() -> str:
    """What a parsed topic depends on besides its file: this code, the schema, Python's version."""
    import sys

    from brochure import __version__

    h = hashlib.blake2b(f"{__version__} {sys.version_info[:3]}".encode(), digest_size=16)
    here = Path(__file__).parent
    for module in (here / "topics.py", here / "schema.py", here.parent / "base" / "errors.py"):
        h.update(module.read_bytes())
    return h.hexdigest()


_CACHE_VERSION = _source_stamp()
