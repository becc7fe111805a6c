"""Distinct-visitor sketches: exact while small, HyperLogLog when large (metrics.md; derive.md).

A sketch holds the 64-bit hashes of the visitors it has seen. Up to ``EXPLICIT_MAX``
distinct hashes it keeps them all, so small counts are exact (a 64-bit hash collision
among a million visitors has odds of about 3 in 100 million). Past that it becomes a
HyperLogLog with 2^16 registers: standard error 1.04 / 256 = 0.41 %, so an estimate
stays within 1 % of the truth in more than 98 % of cases (tested in
tests/unit/test_sketch.py). The count uses Ertl's improved estimator ("New cardinality
estimation algorithms for HyperLogLog sketches", 2017), which has no bias to correct
across the whole range, where the classic one is off by 3 % near 2.5 * 2^16. Sketches
merge losslessly: the union of two sketches is the sketch of the union, which is what
lets daily sketches answer any range of days.

The hash of a visitor is the first 16 hex digits of ``md5(visitor_id)``, which both
stores compute in SQL (``HASH_SQL``).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

P = 16
M = 1 << P
EXPLICIT_MAX = 4096
_EXPLICIT, _REGISTERS = b"E", b"R"
Q = 64 - P
# Two stores, one hash: the first 64 bits of the md5 of the visitor id, as hex.
HASH_SQL = "substr(md5({column}), 1, 16)"

U64 = npt.NDArray[np.uint64]
U8 = npt.NDArray[np.uint8]


def hashes_from_hex(digests: Sequence[str]) -> U64:
    """The hex digests ``HASH_SQL`` returns (each, or concatenated), as unsigned 64-bit
    integers."""
    if not digests:
        return np.empty(0, dtype=np.uint64)
    raw = bytes.fromhex("".join(digests))
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64)


class Sketch:
    __slots__ = ("_hashes", "_registers")

    def __init__(self, hashes: U64 | None, registers: U8 | None) -> None:
        self._hashes, self._registers = hashes, registers  # exactly one is set

    # -- building -----------------------------------------------------------------
    @classmethod
    def of(cls, hashes: U64) -> Sketch:
        return cls._build([hashes], None)

    @classmethod
    def union(cls, sketches: Iterable[Sketch]) -> Sketch:
        """One pass: one concatenation of the exact sketches, one element-wise maximum
        of the register ones."""
        hashes: list[U64] = []
        merged: U8 | None = None
        for sketch in sketches:
            if sketch._registers is None:
                assert sketch._hashes is not None
                hashes.append(sketch._hashes)
            elif merged is None:
                merged = sketch._registers.copy()
            else:
                np.maximum(merged, sketch._registers, out=merged)
        return cls._build(hashes, merged)

    @classmethod
    def union_bytes(cls, blobs: Iterable[bytes]) -> Sketch:
        """The union of stored sketches, without materialising each one."""
        hashes: list[U64] = []
        merged: U8 | None = None
        for blob in blobs:
            explicit, index, ranks = _parse(blob)
            if explicit is not None:
                hashes.append(explicit)
                continue
            if merged is None:
                merged = np.zeros(M, dtype=np.uint8)
            merged[index] = np.maximum(merged[index], ranks)
        return cls._build(hashes, merged)

    @classmethod
    def _build(cls, hashes: list[U64], registers: U8 | None) -> Sketch:
        """Exact while the distinct hashes fit, else registers with every hash folded in."""
        if registers is None:
            distinct = _distinct(hashes)
            if len(distinct) <= EXPLICIT_MAX:
                return cls(distinct, None)
            registers, hashes = np.zeros(M, dtype=np.uint8), [distinct]
        if hashes:
            _fold(registers, np.concatenate(hashes).astype(np.uint64))
        return cls(None, registers)

    # -- reading ------------------------------------------------------------------
    @property
    def exact(self) -> bool:
        return self._registers is None

    @property
    def nbytes(self) -> int:
        """Memory held by the sketch's array."""
        array = self._registers if self._registers is not None else self._hashes
        return 0 if array is None else int(array.nbytes)

    def count(self) -> int:
        if self._registers is None:
            assert self._hashes is not None
            return len(self._hashes)
        return round(_estimate(self._registers))

    # -- storage ------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        if self._registers is None:
            assert self._hashes is not None
            return _EXPLICIT + bytes(self._hashes.astype("<u8").tobytes())
        filled = np.flatnonzero(self._registers).astype("<u2")
        return _REGISTERS + bytes(filled.tobytes()) + bytes(self._registers[filled].tobytes())

    @classmethod
    def from_bytes(cls, blob: bytes) -> Sketch:
        return cls.union_bytes([blob])


def _distinct(hashes: list[U64]) -> U64:
    """The distinct hashes, sorted (a sort and a neighbour compare: several times faster
    than ``np.unique``, which hashes first)."""
    if not hashes:
        return np.empty(0, dtype=np.uint64)
    ordered = np.sort(np.concatenate(hashes))
    if len(ordered) < 2:
        return ordered
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def _parse(blob: bytes) -> tuple[U64 | None, npt.NDArray[np.uint16], U8]:
    """A stored sketch: its hashes (exact), or the index and rank of its filled registers."""
    kind, body = blob[:1], blob[1:]
    if kind == _EXPLICIT:
        return np.frombuffer(body, dtype="<u8").astype(np.uint64), _NO_INDEX, _NO_RANKS
    if kind != _REGISTERS:
        raise ValueError("not a visitor sketch")
    n = len(body) // 3
    index = np.frombuffer(body[: 2 * n], dtype="<u2")
    return None, index, np.frombuffer(body[2 * n :], dtype=np.uint8)


_NO_INDEX = np.empty(0, dtype=np.uint16)
_NO_RANKS = np.empty(0, dtype=np.uint8)


def _fold(registers: U8, hashes: U64) -> None:
    """Add hashes to HyperLogLog registers: the top P bits pick the register, the rank is
    the position of the first 1 bit in the remaining 64 - P bits."""
    if not len(hashes):
        return
    index = (hashes >> np.uint64(64 - P)).astype(np.int64)
    rest = hashes & np.uint64((1 << (64 - P)) - 1)
    _, exponent = np.frexp(rest.astype(np.float64))  # exact: rest < 2^48 < 2^53
    rank = np.where(rest == 0, 64 - P + 1, (64 - P) - exponent + 1).astype(np.uint8)
    np.maximum.at(registers, index, rank)


_WEIGHTS = np.ldexp(1.0, -np.arange(1, Q + 1))


def _estimate(registers: U8) -> float:
    """Ertl's improved raw estimator over the register histogram."""
    counts = np.bincount(registers, minlength=Q + 2).astype(np.float64)
    inner = float(counts[1 : Q + 1] @ _WEIGHTS)
    zeros, full = float(counts[0]) / M, float(counts[Q + 1]) / M
    denominator = M * _sigma(zeros) + inner + M * _tau(1 - full) * 2.0**-Q
    return float(M * M / (2 * np.log(2)) / denominator)


def _sigma(x: float) -> float:
    if x == 1.0:
        return float("inf")
    y, z = 1.0, x
    while True:
        x *= x
        previous, z = z, z + x * y
        y += y
        if z == previous:
            return z


def _tau(x: float) -> float:
    if x in (0.0, 1.0):
        return 0.0
    y, z = 1.0, 1 - x
    while True:
        x = math.sqrt(x)
        previous = z
        y *= 0.5
        z -= (1 - x) ** 2 * y
        if z == previous:
            return z / 3


class SketchCache:
    """Stored sketches by id, read (registers unpacked, so a union is an element-wise
    maximum), the most recently used up to ``budget`` bytes. A stored sketch's id names
    its content for good (derive/rollups.sketch_id), so a kept one never goes stale: a
    redone day or week gets a new id."""

    def __init__(self, budget: int, unions: int = 4096) -> None:
        self.budget = budget
        self._sketches: OrderedDict[int, Sketch] = OrderedDict()
        self._size = 0
        # the count of a union of stored sketches, by their ids: as lasting as the ids
        self._unions: OrderedDict[frozenset[int], int] = OrderedDict()
        self._union_slots = unions

    def union_count(self, ids: Iterable[int]) -> int | None:
        key = frozenset(ids)
        count = self._unions.get(key)
        if count is not None:
            self._unions.move_to_end(key)
        return count

    def keep_union_count(self, ids: Iterable[int], count: int) -> None:
        self._unions[frozenset(ids)] = count
        while len(self._unions) > self._union_slots:
            self._unions.popitem(last=False)

    def get(self, ident: int) -> Sketch | None:
        sketch = self._sketches.get(ident)
        if sketch is not None:
            self._sketches.move_to_end(ident)
        return sketch

    def put(self, ident: int, sketch: Sketch) -> None:
        if ident in self._sketches or sketch.nbytes > self.budget:
            return
        self._sketches[ident] = sketch
        self._size += sketch.nbytes
        while self._size > self.budget:
            _, dropped = self._sketches.popitem(last=False)
            self._size -= dropped.nbytes
