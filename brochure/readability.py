"""Reading grade (Flesch-Kincaid) of a topic, and which of its sentences are hardest."""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass

_BLOCK = re.compile(r"<(p|li|td|th|blockquote)\b[^>]*>(.*?)</\1>", re.S)
_TAG = re.compile(r"<[^>]+>")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
_WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")


@dataclass(frozen=True)
class Sentence:
    text: str
    words: int
    syllables: int

    @property
    def grade(self) -> float:
        return grade(self.words, 1, self.syllables)


@dataclass(frozen=True)
class Reading:
    """A text's reading grade and its sentences, hardest first."""

    grade: float
    words: int
    sentences: tuple[Sentence, ...]

    def hardest(self, count: int = 3, min_words: int = 6) -> list[Sentence]:
        candidates = [s for s in self.sentences if s.words >= min_words]
        return sorted(candidates, key=lambda s: s.grade, reverse=True)[:count]


def syllables(word: str) -> int:
    """Syllables in an English word, by counting vowel groups (good enough for a grade)."""
    w = word.lower().replace("’", "'").split("'")[0]
    count = len(re.findall(r"[aeiouy]+", w))
    if count > 1 and w.endswith("e") and not w.endswith(("le", "ee", "ye")):
        count -= 1  # silent e: "time", "make"
    if count > 1 and re.search(r"[^aeiouytd]ed$", w):
        count -= 1  # "-ed" said without a vowel: "helped", "signed"
    if count > 1 and re.search(r"[^aeiouyszxcgh]es$", w) and not w.endswith("ies"):
        count -= 1  # "-es" after most consonants: "takes", "times"
    return max(1, count)


def grade(words: int, sentences: int, syllable_count: int) -> float:
    """The Flesch-Kincaid grade level."""
    if not words or not sentences:
        return 0.0
    return 0.39 * words / sentences + 11.8 * syllable_count / words - 15.59


def sentences_of_html(html: str) -> list[str]:
    """The sentences of a topic's HTML: paragraphs, list items and cells, not headings."""
    found: list[str] = []
    for _tag, inner in _BLOCK.findall(html):
        inner = re.sub(r"<(ul|ol)\b.*", "", inner, flags=re.S)  # nested lists are their own blocks
        text = html_lib.unescape(_TAG.sub(" ", inner))
        text = " ".join(text.split())
        found += [part for part in _SENTENCE_END.split(text) if _WORD.search(part)]
    return found


def reading(html: str) -> Reading:
    """The reading grade of a topic's body HTML."""
    sentences = []
    for text in sentences_of_html(html):
        words = _WORD.findall(text)
        sentences.append(Sentence(text, len(words), sum(syllables(w) for w in words)))
    total_words = sum(s.words for s in sentences)
    total_syllables = sum(s.syllables for s in sentences)
    return Reading(
        round(grade(total_words, len(sentences), total_syllables), 1), total_words, tuple(sentences)
    )
