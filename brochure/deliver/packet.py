"""A packet for one patient: the handouts chosen, personalised and rendered into one PDF, in memory.

The rendering itself is brochure.document.personalised's; this decides
where it runs (the warm render server when it is on, else this process) and
what a packet carries beside its PDF.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from brochure.base.errors import BrochureError, Problem
from brochure.base.paper import DEFAULT as DEFAULT_PAPER
from brochure.deliver.patient import Patient, follow_up_date, injector_label
from brochure.document.messages import long_date
from brochure.document.personalised import render_packet

if TYPE_CHECKING:
    from brochure.project.model import Document, Project

#: A packet holds at most this many handouts.
MAX_DOCUMENTS = 12


@dataclass(frozen=True)
class Packet:
    """A rendered packet: PDF bytes (which may hold patient details: keep them in memory)."""

    pdf: bytes
    pages: int
    documents: list[tuple[str, str]]  # (document name, content version)
    review_due: list[dt.date | None] = field(default_factory=list)  # of each document, in order
    paper: str = DEFAULT_PAPER
    personalised: bool = False


def content_version(project: Project, doc: Document) -> str:  # noqa: ANN001 - project.Project, project.Document
    """A short hash of what a document says: its topics' files and pictures.

    A recorded delivery keeps it, so `brochure history` can tell whether
    the patient's copy still says what the current one says.
    """
    from brochure.project.inputs import topic_images

    h = hashlib.sha256(doc.name.encode())
    for topic in doc.topics:
        for path in [topic.path, *topic_images(topic.path, topic.body, project.root)]:
            h.update(path.name.encode())
            try:
                h.update(path.read_bytes())
            except OSError:
                h.update(b"missing")
    return h.hexdigest()[:16]


def template_context(project: Project, names: Sequence[str], patient: Patient) -> dict[str, object]:  # noqa: ANN001
    """What the "Your treatment" box shows, as text: the template escapes it."""
    follow_up = follow_up_date(project, names, patient.treated_on)
    return {
        "name": patient.name,
        "first_name": patient.first_name,
        "treated_on": long_date(patient.treated_on, "en"),
        "injector": injector_label(project, patient.injector) if patient.injector else "",
        "treatment": patient.treatment,
        "note": patient.note,
        "follow_up": long_date(follow_up, "en") if follow_up else "",
        # The dates themselves, for the box to write in the handout's own language.
        "treated_on_day": patient.treated_on,
        "follow_up_day": follow_up,
    }


def handouts(project: Project, names: Sequence[str]) -> list:  # noqa: ANN001
    """The named documents, which must be handouts."""
    from brochure.project.model import select

    names = list(names)
    if not names:
        raise BrochureError.at(None, None, "no handout named", "name one or more, see 'brochure list'")
    if len(names) > MAX_DOCUMENTS:
        raise BrochureError.at(
            None, None, f"{len(names)} handouts is more than one packet holds ({MAX_DOCUMENTS})", "send fewer"
        )
    docs = select(project, names)
    others = [d.name for d in docs if d.spec.kind != "handout"]
    if others:
        raise BrochureError.at(
            None,
            None,
            f"{', '.join(repr(n) for n in others)} is not a handout",
            "print it from out/ instead; only handouts have a 'Your treatment' box",
        )
    return docs


def personalise(
    project,  # noqa: ANN001 - project.Project
    names: Sequence[str],
    patient: Patient | None,
    *,
    paper: str | None = None,
    renderer: Any = None,  # noqa: ANN401
) -> Packet:
    """Render the handouts ``names`` (in that order) for ``patient`` into one PDF, in memory.

    With ``patient`` None the box has blank lines to fill in by hand.
    ``renderer`` is None (the warm render server when it is on, else this
    process), "local" (this process), or an object with ``call(function, *args)``.
    """
    docs = handouts(project, names)
    paper = paper or project.brand.paper
    context = template_context(project, names, patient) if patient is not None else None
    try:
        pdf, pages = _run(renderer, render_packet, project, [d.name for d in docs], context, paper)
    except BrochureError as exc:
        raise _scrubbed(exc, context) from None
    return _packet(project, docs, pdf, pages, paper, patient is not None)


def personalise_many(
    project,  # noqa: ANN001
    requests: Sequence[tuple[Sequence[str], Patient | None]],
    *,
    paper: str | None = None,
    renderer: Any = None,  # noqa: ANN401
) -> Iterator[Packet | BrochureError]:
    """Personalise many packets, in parallel through the render server when it is on; yield each in order.

    A request that fails yields its BrochureError (with no patient detail in it) instead of a Packet.
    """
    paper = paper or project.brand.paper
    prepared: list[Any] = []
    for names, patient in requests:
        try:
            docs = handouts(project, names)
        except BrochureError as exc:
            prepared.append(exc)
            continue
        context = template_context(project, names, patient) if patient is not None else None
        prepared.append((docs, context, patient is not None))
    jobs = [
        (project, [d.name for d in p[0]], p[1], paper) for p in prepared if not isinstance(p, BrochureError)
    ]
    results = iter(_run_many(renderer, render_packet, jobs))
    for item in prepared:
        if isinstance(item, BrochureError):
            yield item
            continue
        docs, context, personalised = item
        result = next(results)
        if isinstance(result, BrochureError):
            yield _scrubbed(result, context)
        else:
            pdf, pages = result
            yield _packet(project, docs, pdf, pages, paper, personalised)


def _packet(project: Project, docs: list, pdf: bytes, pages: int, paper: str, personalised: bool) -> Packet:  # noqa: ANN001
    return Packet(
        pdf=pdf,
        pages=pages,
        documents=[(d.name, content_version(project, d)) for d in docs],
        review_due=[min((t.review_due for t in d.topics if t.review_due), default=None) for d in docs],
        paper=paper,
        personalised=personalised,
    )


def _scrubbed(error: BrochureError, context: dict | None) -> BrochureError:
    """``error`` without a problem that repeats a patient detail (a message may quote unset text)."""
    values = [str(v) for v in (context or {}).values() if v and len(str(v)) > 1]
    if not any(v in str(error) for v in values):
        return error
    problems = [
        p
        if not any(v in str(p) for v in values)
        else Problem(
            p.file, p.line, "the patient's details could not be set in the handout", "check the fields"
        )
        for p in error.problems
    ]
    return type(error)(problems)


def _run_many(renderer: Any, function: Any, jobs: list[tuple]) -> Iterator[Any]:  # noqa: ANN401
    """``function(*job)`` for each job, in order; a BrochureError is yielded, not raised."""
    if renderer is None:
        from brochure.warm import client, protocol

        if protocol.enabled():
            done = 0
            for result in client.call_many(function, jobs):
                done += 1
                yield result
            jobs = jobs[done:]
        renderer = "local"
    for job in jobs:
        try:
            yield _run(renderer, function, *job)
        except BrochureError as exc:
            yield exc


def _run(renderer: Any, function: Any, *args: Any) -> Any:  # noqa: ANN401
    if renderer == "local":
        return function(*args)
    if renderer is not None:
        return renderer.call(function, *args)
    from brochure.warm import client, protocol

    if protocol.enabled():
        done, result = client.call(function, *args)
        if done:
            return result
    return function(*args)
