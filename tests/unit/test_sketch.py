"""Visitor sketches: exact while small, within 1 % when large, lossless merges."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from tapioca.kit.sketch import EXPLICIT_MAX, Sketch, hashes_from_hex


def _hashes(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**64, size=n, dtype=np.uint64)


def test_hex_digests_are_the_leading_64_bits_of_md5() -> None:
    ids = ["v1", "visitor-2", "ü"]
    digests = [hashlib.md5(v.encode()).hexdigest()[:16] for v in ids]
    assert hashes_from_hex(digests).tolist() == [int(d, 16) for d in digests]


def test_small_sets_are_exact_and_ignore_repeats() -> None:
    hashes = _hashes(EXPLICIT_MAX, 1)
    sketch = Sketch.of(np.concatenate([hashes, hashes[:100]]))
    assert sketch.exact
    assert sketch.count() == EXPLICIT_MAX


@pytest.mark.parametrize("n", [5_000, 20_000, 100_000, 160_000, 400_000, 1_500_000])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_large_sets_stay_within_one_percent(n: int, seed: int) -> None:
    sketch = Sketch.of(_hashes(n, seed))
    assert not sketch.exact
    assert abs(sketch.count() - n) / n <= 0.01


def test_union_of_parts_equals_sketch_of_the_whole() -> None:
    everything = _hashes(100_000, 7)
    parts = [everything[i::30] for i in range(30)]  # thirty "days", each exact alone
    days = [Sketch.of(part) for part in parts]
    assert all(day.exact for day in days)
    whole = Sketch.of(everything)
    merged = Sketch.union(days)
    assert merged.count() == whole.count()
    assert merged.to_bytes() == whole.to_bytes()


def test_overlapping_parts_count_each_visitor_once() -> None:
    base = _hashes(3_000, 9)
    a, b = Sketch.of(base[:2_000]), Sketch.of(base[1_000:])
    assert Sketch.union([a, b]).count() == 3_000


@pytest.mark.parametrize("n", [0, 10, EXPLICIT_MAX + 1, 70_000])
def test_storage_round_trip(n: int) -> None:
    sketch = Sketch.of(_hashes(n, 4))
    again = Sketch.from_bytes(sketch.to_bytes())
    assert again.count() == sketch.count()
    assert again.to_bytes() == sketch.to_bytes()


def test_rejects_foreign_bytes() -> None:
    with pytest.raises(ValueError, match="sketch"):
        Sketch.from_bytes(b"xyz")


def test_union_of_stored_sketches_equals_union_of_sketches() -> None:
    parts = [_hashes(n, seed) for seed, n in enumerate([10, 3_000, 9_000, 70_000, 1])]
    sketches = [Sketch.of(p) for p in parts]
    from_bytes = Sketch.union_bytes(s.to_bytes() for s in sketches)
    assert from_bytes.to_bytes() == Sketch.union(sketches).to_bytes()
    assert Sketch.union_bytes([sketches[0].to_bytes(), sketches[1].to_bytes()]).exact
    with pytest.raises(ValueError, match="sketch"):
        Sketch.union_bytes([b"?"])


def test_the_sketch_cache_keeps_the_most_recently_used_within_its_budget() -> None:
    from tapioca.kit.sketch import SketchCache

    def of(n: int) -> Sketch:  # n distinct hashes: 8 n bytes
        return Sketch.of(np.arange(1, n + 1, dtype=np.uint64))

    cache = SketchCache(budget=100 * 8)
    for ident in range(4):
        cache.put(ident, of(30))
    assert cache.get(0) is None  # 960 bytes: the oldest went
    assert cache.get(1) is not None  # now the most recent
    cache.put(9, of(30))
    assert cache.get(2) is None and cache.get(1) is not None and cache.get(9) is not None
    cache.put(10, of(101))  # larger than the budget: not kept
    assert cache.get(10) is None and cache.get(3) is not None
    assert of(5000).nbytes == 1 << 16  # registers


def test_a_sketch_id_names_its_content() -> None:
    from tapioca.derive.days import sketch_id

    one = Sketch.of(np.array([1, 2, 3], dtype=np.uint64)).to_bytes()
    two = Sketch.of(np.array([1, 2, 4], dtype=np.uint64)).to_bytes()
    key = ("day", "shop", "UTC", "path", "/", "2025-11-14")
    assert sketch_id(*key, one) == sketch_id(*key, one)
    assert sketch_id(*key, one) != sketch_id(*key, two)
    assert sketch_id(*key, one) != sketch_id("week", *key[1:], one)
    assert 0 <= sketch_id(*key, one) < 2**63


def test_the_sketch_cache_keeps_union_counts_by_their_ids_whatever_their_order() -> None:
    from tapioca.kit.sketch import SketchCache

    cache = SketchCache(budget=1024, unions=2)
    assert cache.union_count([1, 2]) is None
    cache.keep_union_count([2, 1], 70_000)
    assert cache.union_count([1, 2]) == 70_000
    assert cache.union_count([1, 2, 3]) is None  # another union
    cache.keep_union_count([3], 5)
    assert cache.union_count([1, 2]) == 70_000  # used last: kept
    cache.keep_union_count([4, 5], 9)  # over two: the least recently used goes
    assert cache.union_count([3]) is None
    assert cache.union_count([1, 2]) == 70_000
    assert cache.union_count([5, 4]) == 9
