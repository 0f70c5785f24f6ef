"""Deterministic stand-in for ``list(set(names))`` as the official CodeBLEU code uses it.

The reference data-flow code merges lists of variable names with ``list(set(...))``,
so the order of the names -- and through the var_N renaming, the data-flow score --
depends on Python's per-process string-hash seed.  To be deterministic *and* stay one
of the values the reference can produce, :func:`set_order` reproduces exactly the
iteration order CPython (3.11+, SipHash-1-3) gives a freshly built set of strings when
run with ``PYTHONHASHSEED=0``: the string hash with a zero key, then the set table's
insertion (linear probes + perturbation) and resize rules.
"""

from __future__ import annotations

_M64 = (1 << 64) - 1
_LINEAR_PROBES = 9
_PERTURB_SHIFT = 5
_MINSIZE = 8

_hash_cache: dict[str, int] = {}


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & _M64


def _siphash13(data: bytes, k0: int = 0, k1: int = 0) -> int:
    n = len(data)
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573

    def rnd(v0: int, v1: int, v2: int, v3: int) -> tuple[int, int, int, int]:
        # HALF_ROUND(v0, v1, v2, v3, 13, 16)
        v0 = (v0 + v1) & _M64
        v2 = (v2 + v3) & _M64
        v1 = _rotl(v1, 13) ^ v0
        v3 = _rotl(v3, 16) ^ v2
        v0 = _rotl(v0, 32)
        # HALF_ROUND(v2, v1, v0, v3, 17, 21)
        v2 = (v2 + v1) & _M64
        v0 = (v0 + v3) & _M64
        v1 = _rotl(v1, 17) ^ v2
        v3 = _rotl(v3, 21) ^ v0
        v2 = _rotl(v2, 32)
        return v0, v1, v2, v3

    full = n - (n % 8)
    for off in range(0, full, 8):
        mi = int.from_bytes(data[off:off + 8], "little")
        v3 ^= mi
        v0, v1, v2, v3 = rnd(v0, v1, v2, v3)
        v0 ^= mi
    b = ((n & 0xFF) << 56) | int.from_bytes(data[full:], "little")
    v3 ^= b
    v0, v1, v2, v3 = rnd(v0, v1, v2, v3)
    v0 ^= b
    v2 ^= 0xFF
    for _ in range(3):
        v0, v1, v2, v3 = rnd(v0, v1, v2, v3)
    return (v0 ^ v1) ^ (v2 ^ v3)


def str_hash_seed0(s: str) -> int:
    """``hash(s)`` under ``PYTHONHASHSEED=0`` on CPython >= 3.11, as an unsigned 64-bit int."""
    h = _hash_cache.get(s)
    if h is not None:
        return h
    if not s:
        h = 0
    else:
        top = max(map(ord, s))
        if top < 0x100:
            data = s.encode("latin-1")
        elif top < 0x10000:
            data = s.encode("utf-16-le", "surrogatepass")
        else:
            data = s.encode("utf-32-le", "surrogatepass")
        h = _siphash13(data)
        if h == _M64:  # -1 is reserved for errors: CPython maps it to -2
            h = _M64 - 1
    _hash_cache[s] = h
    return h


def _insert_clean(table: list, mask: int, key: str, h: int) -> None:
    perturb = h
    i = h & mask
    while True:
        if table[i] is None:
            table[i] = (h, key)
            return
        if i + _LINEAR_PROBES <= mask:
            for j in range(1, _LINEAR_PROBES + 1):
                if table[i + j] is None:
                    table[i + j] = (h, key)
                    return
        perturb >>= _PERTURB_SHIFT
        i = (i * 5 + 1 + perturb) & mask


def set_order(names: list[str]) -> list[str]:
    """The order of ``list(set(names))`` in CPython with ``PYTHONHASHSEED=0``."""
    if len(names) < 2:
        return list(names)
    mask = _MINSIZE - 1
    table: list = [None] * _MINSIZE
    fill = 0
    for key in names:
        h = str_hash_seed0(key)
        perturb = h
        i = h & mask
        found = False
        while True:
            probes = _LINEAR_PROBES if i + _LINEAR_PROBES <= mask else 0
            j = i
            slot = -1
            for _ in range(probes + 1):
                e = table[j]
                if e is None:
                    slot = j
                    break
                if e[0] == h and e[1] == key:
                    found = True
                    break
                j += 1
            if found or slot >= 0:
                break
            perturb >>= _PERTURB_SHIFT
            i = (i * 5 + 1 + perturb) & mask
        if found:
            continue
        table[slot] = (h, key)
        fill += 1
        if fill * 5 >= mask * 3:
            minused = fill * 2 if fill > 50000 else fill * 4
            newsize = _MINSIZE
            while newsize <= minused:
                newsize <<= 1
            newtable: list = [None] * newsize
            for e in table:
                if e is not None:
                    _insert_clean(newtable, newsize - 1, e[1], e[0])
            table = newtable
            mask = newsize - 1
    return [e[1] for e in table if e is not None]
