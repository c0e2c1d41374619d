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


_SPANISH_WORD = re.compile(r"[a-záéíóúüñ]+", re.IGNORECASE)
_SPANISH_VOWELS = re.compile(r"[aeiouáéíóúü]+")
_STRONG = "aeoáéó"


def spanish_syllables(word: str) -> int:
    """Syllables in a Spanish word: vowel groups, split where two strong vowels or an accented í or ú meet.

    "cuidado" has 3 (cui-da-do), "leer" 2 (le-er), "día" 2 (dí-a).
    """
    count = 0
    for group in _SPANISH_VOWELS.findall(word.lower()):
        count += 1
        for first, second in zip(group, group[1:], strict=False):
            if (first in _STRONG and second in _STRONG) or first in "íú" or second in "íú":
                count += 1
    return max(1, count)


def ease_es(words: int, sentences: int, syllable_count: int) -> float:
    """The Fernández-Huerta reading ease of Spanish text: 100 is very easy, 70 and up fairly easy."""
    if not words or not sentences:
        return 100.0
    return 206.84 - 60 * syllable_count / words - 102 * sentences / words


def reading_es(html: str) -> tuple[float, list[tuple[float, str]]]:
    """The reading ease of a Spanish topic's body HTML, and its sentences, hardest first."""
    scored = []
    total_words = total_syllables = 0
    texts = sentences_of_html(html)
    for text in texts:
        words = _SPANISH_WORD.findall(text)
        count = sum(spanish_syllables(w) for w in words)
        total_words += len(words)
        total_syllables += count
        if len(words) >= 6:
            scored.append((ease_es(len(words), 1, count), text))
    ease = round(ease_es(total_words, len(texts), total_syllables), 1)
    return ease, sorted(scored)
