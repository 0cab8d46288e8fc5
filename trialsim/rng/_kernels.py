"""numba kernels reproducing ``Generator(PCG64(SeedSequence(...))).random()`` bit for bit.

Three pieces of numpy are reimplemented (numpy/random/bit_generator.pyx, _pcg64.pyx,
src/pcg64/pcg64.h):

* ``SeedSequence``: the 4-word uint32 entropy pool (``hashmix``/``mix``) and
  ``generate_state(4, np.uint64)``;
* ``PCG64`` seeding (``pcg64_set_seed`` -> ``pcg_setseq_128_srandom_r``) and the XSL-RR
  128/64 generator, 128-bit arithmetic emulated with (high, low) uint64 pairs, matching
  numpy's native ``__uint128_t`` build;
* ``Generator.random()``: ``(next_uint64 >> 11) * 2**-53``.

All 32-bit arithmetic is done in uint64 and masked, because numba widens uint32 results.
Every constant is a typed ``np.uint64`` so that no expression is promoted to float64.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_M32 = np.uint64(0xFFFFFFFF)
_S16 = np.uint64(16)
_S32 = np.uint64(32)
_S58 = np.uint64(58)
_S63 = np.uint64(63)
_S11 = np.uint64(11)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)
_B64 = np.uint64(64)

# SeedSequence constants (bit_generator.pyx).
POOL_SIZE = 4
_INIT_A = np.uint64(0x43B0D7E5)
_MULT_A = np.uint64(0x931E8875)
_INIT_B = np.uint64(0x8B51F9DD)
_MULT_B = np.uint64(0x58F38DED)
_MIX_MULT_L = np.uint64(0xCA01F9DD)
_MIX_MULT_R = np.uint64(0x4973F715)

# PCG64 multiplier 0x2360ED051FC65DA44385DF649FCCF645 (pcg64.h).
_MUL_HI = np.uint64(0x2360ED051FC65DA4)
_MUL_LO = np.uint64(0x4385DF649FCCF645)

_TWO_M53 = 1.0 / 9007199254740992.0


@njit(cache=True)
def _hashmix(value, hash_const):
    """``hashmix`` on uint32 values held in uint64; returns (value, new hash_const)."""
    value = value ^ hash_const
    hash_const = (hash_const * _MULT_A) & _M32
    value = (value * hash_const) & _M32
    value ^= value >> _S16
    return value, hash_const


@njit(cache=True)
def _mix(x, y):
    """``mix(x, y)`` on uint32 values held in uint64."""
    r = (_MIX_MULT_L * x - _MIX_MULT_R * y) & _M32
    return r ^ (r >> _S16)


@njit(cache=True)
def pool_start(words):
    """Pool and running hash constant after mixing the uint32 ``words`` (``mix_entropy``).

    Words past ``POOL_SIZE`` are absorbed one by one (see :func:`_absorb`), so the state after
    a prefix of at least ``POOL_SIZE`` words can be continued with further words.
    """
    pool = np.empty(POOL_SIZE, np.uint64)
    hc = _INIT_A
    for i in range(POOL_SIZE):
        w = np.uint64(words[i]) if i < words.size else _ZERO
        h, hc = _hashmix(w, hc)
        pool[i] = h
    for i_src in range(POOL_SIZE):
        for i_dst in range(POOL_SIZE):
            if i_src != i_dst:
                h, hc = _hashmix(pool[i_src], hc)
                pool[i_dst] = _mix(pool[i_dst], h)
    for i_src in range(POOL_SIZE, words.size):
        hc = _absorb(pool, hc, np.uint64(words[i_src]))
    return pool, hc


@njit(cache=True)
def _absorb(pool, hc, word):
    """Mix one further entropy word into every pool word; returns the new hash constant."""
    for i_dst in range(POOL_SIZE):
        h, hc = _hashmix(word, hc)
        pool[i_dst] = _mix(pool[i_dst], h)
    return hc


@njit(cache=True)
def _generate_state64(pool):
    """``generate_state(4, np.uint64)``: 8 uint32 words, paired little-endian."""
    out = np.empty(4, np.uint64)
    hc = _INIT_B
    for j in range(4):
        pair = _ZERO
        for half in range(2):
            v = pool[(2 * j + half) % POOL_SIZE] ^ hc
            hc = (hc * _MULT_B) & _M32
            v = (v * hc) & _M32
            v ^= v >> _S16
            pair |= v << (_S32 * np.uint64(half))
        out[j] = pair
    return out


@njit(cache=True)
def _mulhi64(a, b):
    """High 64 bits of the 128-bit product ``a * b``."""
    a0 = a & _M32
    a1 = a >> _S32
    b0 = b & _M32
    b1 = b >> _S32
    w0 = a0 * b0
    t = a1 * b0 + (w0 >> _S32)
    w1 = (t & _M32) + a0 * b1
    return a1 * b1 + (t >> _S32) + (w1 >> _S32)


@njit(cache=True)
def _step(s_hi, s_lo, i_hi, i_lo):
    """One LCG step ``state * MULT + inc (mod 2**128)``."""
    hi = _mulhi64(s_lo, _MUL_LO) + s_hi * _MUL_LO + s_lo * _MUL_HI
    lo = s_lo * _MUL_LO
    new_lo = lo + i_lo
    carry = _ONE if new_lo < lo else _ZERO
    return hi + i_hi + carry, new_lo


@njit(cache=True)
def _output(s_hi, s_lo):
    """XSL-RR output: ``rotr64(high ^ low, high >> 58)``."""
    x = s_hi ^ s_lo
    rot = s_hi >> _S58
    return (x >> rot) | (x << ((_B64 - rot) & _S63))


@njit(cache=True)
def pcg64_seed(seed4):
    """PCG64 (state_hi, state_lo, inc_hi, inc_lo) from ``generate_state(4, np.uint64)``."""
    initstate_hi, initstate_lo = seed4[0], seed4[1]
    i_hi = (seed4[2] << _ONE) | (seed4[3] >> _S63)
    i_lo = (seed4[3] << _ONE) | _ONE
    s_hi, s_lo = _step(_ZERO, _ZERO, i_hi, i_lo)
    lo = s_lo + initstate_lo
    carry = _ONE if lo < s_lo else _ZERO
    s_hi, s_lo = _step(s_hi + initstate_hi + carry, lo, i_hi, i_lo)
    return s_hi, s_lo, i_hi, i_lo


@njit(cache=True)
def entropy_seed_state(words):
    """``SeedSequence(words).generate_state(4, np.uint64)`` for a uint32 array ``words``."""
    pool, _ = pool_start(words)
    return _generate_state64(pool)


@njit(cache=True)
def uniforms(prefix, trials, suffix, n):
    """``random(n)`` rows of the generators seeded by the words ``prefix, trial, suffix``.

    ``prefix`` (at least ``POOL_SIZE`` uint32 words) and ``suffix`` are shared; each trial
    (uint64) contributes one word if below 2**32, else two (low word first), as numpy does.
    """
    out = np.empty((trials.size, n), np.float64)
    pool0, hc0 = pool_start(prefix)
    pool = np.empty(POOL_SIZE, np.uint64)
    for r in range(trials.size):
        pool[:] = pool0
        t = trials[r]
        hc = _absorb(pool, hc0, t & _M32)
        if t > _M32:
            hc = _absorb(pool, hc, t >> _S32)
        for j in range(suffix.size):
            hc = _absorb(pool, hc, np.uint64(suffix[j]))
        s_hi, s_lo, i_hi, i_lo = pcg64_seed(_generate_state64(pool))
        for c in range(n):
            s_hi, s_lo = _step(s_hi, s_lo, i_hi, i_lo)
            out[r, c] = np.float64(_output(s_hi, s_lo) >> _S11) * _TWO_M53
    return out
