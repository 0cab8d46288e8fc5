"""numba kernel of the MADRS time course: every patient's score under every dose at every
time in one pass (no (patients × doses × times) temporaries)."""
from __future__ import annotations

from numba import njit


@njit(cache=True, error_model="numpy")
def scores(b, plateau, sens, effect, eps, extra, has_extra, onset, g, residual_sd, lo, hi,
           out):
    """``out[i, d, t] = clip(b_i − plateau_i onset_t − sens_i effect_id g_t + residual_sd
    eps_i(d)t − extra_i(d)t, lo, hi)``: ``b``, ``plateau``, ``sens`` (M,), ``effect`` (M, D),
    ``eps`` (M, 1 or D, T), ``extra`` (M, 1 or D, T) when ``has_extra``, ``onset``, ``g``
    (T,); ``out`` (M, D, T)."""
    M, D, T = out.shape
    de = eps.shape[1] > 1
    dx = extra.shape[1] > 1
    for i in range(M):
        for d in range(D):
            drug = sens[i] * effect[i, d]
            je = d if de else 0
            jx = d if dx else 0
            for t in range(T):
                v = b[i] - plateau[i] * onset[t] - drug * g[t] + residual_sd * eps[i, je, t]
                if has_extra:
                    v = v - extra[i, jx, t]
                out[i, d, t] = min(max(v, lo), hi)
