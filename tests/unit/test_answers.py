"""AnswerCache (kit/answers.py): an answer is given again only at the count it was made."""

from __future__ import annotations

from tapioca.storage.answers import AnswerCache


def test_an_answer_lasts_until_the_next_write() -> None:
    cache = AnswerCache(4)
    cache.put("q", cache.generation, {"n": 1})
    assert cache.get("q") == {"n": 1}
    cache.written()
    assert cache.get("q") is None
    assert cache.hits == 1


def test_an_answer_read_across_a_write_is_not_kept() -> None:
    cache = AnswerCache(4)
    started_at = cache.generation
    cache.written()  # a commit while the answer was being read
    cache.put("q", started_at, {"n": 1})
    assert cache.get("q") is None


def test_the_least_recently_used_answer_goes_first() -> None:
    cache = AnswerCache(2)
    cache.put("a", 0, 1)
    cache.put("b", 0, 2)
    assert cache.get("a") == 1
    cache.put("c", 0, 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)


def test_no_slots_keeps_nothing() -> None:
    cache = AnswerCache(0)
    cache.put("a", 0, 1)
    assert cache.get("a") is None
