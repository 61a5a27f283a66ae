// Per-pixel kernels of the atom convolution (paper §3.2, Eq. 5), shared by the atom_conv2d op and the
// fused ACDA op (Eq. 5 + Eq. 6).
//
//   z[n, i, j, b, c] = sum_{u,v} atoms[n, b, u, v, i, j] * x[n, i*sh - ph + u*dh, j*sw - pw + v*dw, c]
//
// x is channels-last (N, H, W, C) contiguous; atoms are read through their own strides (any layout);
// one output pixel of z (and of its gradient gz) is an (m, C) block, channels innermost, so every
// inner loop is a vector loop over channels (at::vec::Vectorized, instruction set fixed at compile time
// by CPU_CAPABILITY). Taps that fall on the zero padding are skipped, except that they keep the
// definition's 0 * atom = NaN for an infinite or NaN atom (see padding_nan; likewise their atom gradient,
// sum_c gz * 0, is NaN where gz is not finite): every backend propagates non-finite values the same way.
#pragma once

#include <ATen/ATen.h>

#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

namespace acda {

using at::vec::Vectorized;

#if defined(CPU_CAPABILITY_AVX512)
constexpr int kVecRegs = 32;
#else
constexpr int kVecRegs = 16;
#endif
constexpr int kMaxMB = 6;  // atoms per register block

// Layout of one pixel's atoms: atom b, tap u*kw + v at offset b * ab + atap[u*kw + v].
struct AtomStrides {
  int64_t ab;
  const int64_t* atap;
};

struct Geometry {
  int64_t N, C, H, W, m, kh, kw, OH, OW, sh, sw, ph, pw, dh, dw;
  int64_t an, ab, ai, aj;       // atom strides for n, b, i, j (elements)
  std::vector<int64_t> atap;    // atom offset of tap u*kw + v: u*stride_u + v*stride_v

  int64_t taps() const { return kh * kw; }
  int64_t pixels() const { return N * OH * OW; }
  int64_t atom_pixel(int64_t n, int64_t i, int64_t j) const { return n * an + i * ai + j * aj; }
  AtomStrides atom_strides() const { return {ab, atap.data()}; }

  // In-image taps of output pixel (n, i, j): offsets of x's channel vectors and tap indices u*kw + v.
  int64_t gather_taps(int64_t n, int64_t i, int64_t j, int64_t* offs, int64_t* taps) const {
    int64_t nt = 0;
    for (int64_t u = 0; u < kh; ++u) {
      const int64_t y = i * sh - ph + u * dh;
      if (y < 0 || y >= H) continue;
      for (int64_t v = 0; v < kw; ++v) {
        const int64_t xx = j * sw - pw + v * dw;
        if (xx < 0 || xx >= W) continue;
        offs[nt] = ((n * H + y) * W + xx) * C;
        taps[nt] = u * kw + v;
        ++nt;
      }
    }
    return nt;
  }

  // Stripes of output rows for the grad-x scatter: stripes two apart never touch the same input row,
  // so the even stripes can run in parallel, then the odd ones (no atomics, deterministic). The stripe
  // count is a multiple of 2 * threads where the image allows it, so both phases split evenly.
  int64_t min_stripe() const {
    const int64_t reach = (kh - 1) * dh - sh;  // need stripe * sh > reach
    return reach < 0 ? 1 : reach / sh + 1;
  }
  int64_t stripes(int64_t threads) const {
    int64_t s = std::max<int64_t>(1, OH / min_stripe());
    const int64_t unit = 2 * std::max<int64_t>(1, threads);
    if (s >= unit) s -= s % unit;
    return s;
  }
};

// Geometry of x (N, C, H, W) and atoms of sizes (N, m, kh, kw, H', W') stored with strides astrides.
inline Geometry make_geometry(const at::Tensor& x, at::IntArrayRef asizes, at::IntArrayRef astrides,
                              at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation) {
  TORCH_CHECK(x.dim() == 4, "x must be 4-D (N, C, H, W)");
  TORCH_CHECK(asizes.size() == 6 && astrides.size() == 6, "atoms must be 6-D (N, m, kh, kw, H', W')");
  TORCH_CHECK(stride.size() == 2 && padding.size() == 2 && dilation.size() == 2, "stride/padding/dilation: 2 ints");
  TORCH_CHECK(x.device().is_cpu(), "native ACDA kernels run on CPU tensors");
  Geometry g{x.size(0), x.size(1), x.size(2), x.size(3), asizes[1], asizes[2], asizes[3],
             asizes[4], asizes[5], stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1],
             astrides[0], astrides[1], astrides[4], astrides[5], {}};
  TORCH_CHECK(asizes[0] == g.N, "batch sizes of x and atoms differ");
  TORCH_CHECK(g.OH == (g.H + 2 * g.ph - g.dh * (g.kh - 1) - 1) / g.sh + 1 &&
                  g.OW == (g.W + 2 * g.pw - g.dw * (g.kw - 1) - 1) / g.sw + 1,
              "atoms spatial size does not match the convolution output size");
  for (int64_t u = 0; u < g.kh; ++u)
    for (int64_t v = 0; v < g.kw; ++v) g.atap.push_back(u * astrides[2] + v * astrides[3]);
  return g;
}

inline Geometry make_geometry(const at::Tensor& x, const at::Tensor& atoms, at::IntArrayRef stride,
                              at::IntArrayRef padding, at::IntArrayRef dilation) {
  TORCH_CHECK(atoms.device().is_cpu(), "native ACDA kernels run on CPU tensors");
  TORCH_CHECK(x.scalar_type() == atoms.scalar_type(), "x and atoms must have the same dtype");
  return make_geometry(x, atoms.sizes(), atoms.strides(), stride, padding, dilation);
}

inline at::Tensor channels_last_x(const at::Tensor& x) { return x.permute({0, 2, 3, 1}).contiguous(); }

// Inputs and outputs of a backward pass, in the layouts the kernels read and write.
struct BackwardBuffers {
  at::Tensor grad_out;  // (N, channels, H', W') channels-last, the dtype of x
  at::Tensor x;         // (N, H, W, C) contiguous
  at::Tensor grad_x;    // (N, C, H, W) channels-last, zeroed; undefined unless needed
  at::Tensor grad_atoms;  // (N, m, kh, kw, H', W') contiguous; undefined unless needed
};

// A new (N, C, H, W) tensor stored channels-last: its data is (N, H, W, C) contiguous, and it is not a view
// (autograd lets later in-place ops modify it).
inline at::Tensor empty_channels_last(at::IntArrayRef sizes, const at::Tensor& like) {
  at::Tensor t = at::empty(sizes, like.options(), at::MemoryFormat::ChannelsLast);
  TORCH_INTERNAL_ASSERT(t.is_contiguous(at::MemoryFormat::ChannelsLast));
  return t;
}

inline BackwardBuffers backward_buffers(const Geometry& g, const at::Tensor& grad_out, const at::Tensor& x,
                                        int64_t channels, const char* expected_shape, bool needs_x,
                                        bool needs_atoms) {
  TORCH_CHECK(grad_out.dim() == 4 && grad_out.size(0) == g.N && grad_out.size(1) == channels &&
                  grad_out.size(2) == g.OH && grad_out.size(3) == g.OW,
              "grad_out must have shape ", expected_shape);
  return {grad_out.to(x.scalar_type()).contiguous(at::MemoryFormat::ChannelsLast), channels_last_x(x),
          needs_x ? empty_channels_last({g.N, g.C, g.H, g.W}, x).zero_() : at::Tensor(),
          needs_atoms ? at::empty({g.N, g.m, g.kh, g.kw, g.OH, g.OW}, x.options()) : at::Tensor()};
}

// Calls f(std::integral_constant<int, MB>) with MB = mb (1..kMaxMB) as a compile-time constant.
template <typename F>
inline void dispatch_mb(int64_t mb, F&& f) {
  switch (mb) {
    case 1: f(std::integral_constant<int, 1>{}); break;
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 3: f(std::integral_constant<int, 3>{}); break;
    case 4: f(std::integral_constant<int, 4>{}); break;
    case 5: f(std::integral_constant<int, 5>{}); break;
    default: f(std::integral_constant<int, 6>{}); break;
  }
}

template <typename T>
inline Vectorized<T> load_part(const T* p, int64_t count) {
  using Vec = Vectorized<T>;
  return count >= Vec::size() ? Vec::loadu(p) : (count <= 0 ? Vec(T(0)) : Vec::loadu(p, count));
}

// Scratch the per-pixel kernels need: tap offsets and indices.
struct Taps {
  std::vector<int64_t> offs, taps;
  explicit Taps(const Geometry& g) : offs(g.taps()), taps(g.taps()) {}
};

// ---- forward: z[b, c] for one pixel ---------------------------------------------------------------
// MB x NV vector accumulators stay in registers; each tap loads NV vectors of x once and broadcasts MB
// atom values.
template <typename T, int MB, int NV, bool FULL>
inline void fwd_block(const T* x, const T* ap, int64_t ab, const int64_t* atap, T* zp, const int64_t* offs,
                      const int64_t* taps, int64_t nt, int64_t c0, int64_t cnt, int64_t C) {
  using Vec = Vectorized<T>;
  constexpr int64_t V = Vec::size();
  Vec acc[MB][NV];
  for (int b = 0; b < MB; ++b)
    for (int q = 0; q < NV; ++q) acc[b][q] = Vec(T(0));
  for (int64_t t = 0; t < nt; ++t) {
    const T* xp = x + offs[t] + c0;
    const T* at = ap + atap[taps[t]];
    Vec xv[NV];
    for (int q = 0; q < NV; ++q) {
      if constexpr (FULL) xv[q] = Vec::loadu(xp + q * V);
      else xv[q] = load_part(xp + q * V, cnt - q * V);
    }
    for (int b = 0; b < MB; ++b) {
      const Vec a(at[b * ab]);
      for (int q = 0; q < NV; ++q) acc[b][q] = at::vec::fmadd(a, xv[q], acc[b][q]);
    }
  }
  for (int b = 0; b < MB; ++b) {
    T* dst = zp + b * C + c0;
    for (int q = 0; q < NV; ++q) {
      if constexpr (FULL) {
        acc[b][q].store(dst + q * V);
      } else {
        const int64_t rest = cnt - q * V;
        if (rest >= V) acc[b][q].store(dst + q * V);
        else if (rest > 0) acc[b][q].store(dst + q * V, rest);
      }
    }
  }
}

template <int MB_, int NV_>
struct BlockShape {
  static constexpr int MB = MB_;  // atoms per block
  static constexpr int NV = NV_;  // channel vectors per block
};

// Calls f(BlockShape, std::bool_constant<full>, b0, c0, cnt) over the (atom block, channel block) grid of
// one pixel: blocks of up to kMaxMB atoms times NV channel vectors held in registers, the last channel
// block partial (full == false) when C is not a multiple of NV vectors.
template <typename T, typename F>
inline void for_each_block(const Geometry& g, F&& f) {
  constexpr int64_t V = Vectorized<T>::size();
  for (int64_t b0 = 0; b0 < g.m; b0 += kMaxMB) {
    dispatch_mb(std::min<int64_t>(kMaxMB, g.m - b0), [&](auto mb) {
      constexpr int MB = decltype(mb)::value;
      constexpr int NV = std::max(1, std::min(4, (kVecRegs - 6) / MB));
      int64_t c0 = 0;
      for (; c0 + NV * V <= g.C; c0 += NV * V) f(BlockShape<MB, NV>{}, std::true_type{}, b0, c0, NV * V);
      if (c0 < g.C) f(BlockShape<MB, NV>{}, std::false_type{}, b0, c0, g.C - c0);
    });
  }
}

// Whether atom b of a pixel (atoms at ap) is infinite or NaN on a tap that falls on the padding (one not
// among the nt in-image taps, increasing, of gather_taps): then 0 * atom is NaN and so is z[b, :].
template <typename T>
inline bool nonfinite_on_padding(const Geometry& g, const T* ap, const AtomStrides& as, int64_t b, const int64_t* taps,
                                 int64_t nt) {
  for (int64_t t = 0, q = 0; t < g.taps(); ++t) {
    if (q < nt && taps[q] == t) {
      ++q;
      continue;
    }
    if (!std::isfinite(ap[b * as.ab + as.atap[t]])) return true;
  }
  return false;
}

// The padding taps' 0 * atom terms the kernels skip: NaN rows of z (m, C) where they are NaN.
template <typename T>
inline void padding_nan(const Geometry& g, const T* ap, const AtomStrides& as, const int64_t* taps, int64_t nt, T* zp) {
  if (nt == g.taps()) return;
  for (int64_t b = 0; b < g.m; ++b)
    if (nonfinite_on_padding(g, ap, as, b, taps, nt))
      std::fill(zp + b * g.C, zp + (b + 1) * g.C, std::numeric_limits<T>::quiet_NaN());
}

// z (m, C) of output pixel (n, i, j), whose atoms start at ap and are laid out as `as` says.
template <typename T>
inline void forward_pixel(const Geometry& g, const T* x, const T* ap, const AtomStrides& as, int64_t n, int64_t i,
                          int64_t j, T* zp, Taps& s) {
  const int64_t nt = g.gather_taps(n, i, j, s.offs.data(), s.taps.data());
  for_each_block<T>(g, [&](auto shape, auto full, int64_t b0, int64_t c0, int64_t cnt) {
    using S = decltype(shape);
    fwd_block<T, S::MB, S::NV, decltype(full)::value>(x, ap + b0 * as.ab, as.ab, as.atap, zp + b0 * g.C,
                                                       s.offs.data(), s.taps.data(), nt, c0, cnt, g.C);
  });
  padding_nan(g, ap, as, s.taps.data(), nt, zp);
}

// Sum of a vector's lanes: the instruction-set reduction for float (a few shuffles), else through memory.
template <typename T>
inline T lane_sum(const Vectorized<T>& v) {
  if constexpr (std::is_same_v<T, float>) {
    return v.reduce_add();
  } else {
    alignas(64) T lanes[Vectorized<T>::size()];
    v.store(lanes);
    T sum = T(0);
    for (int64_t l = 0; l < Vectorized<T>::size(); ++l) sum += lanes[l];
    return sum;
  }
}

// ---- grad atoms: ga[b, tap] = <gz[b, :], x[tap, :]> for one pixel ---------------------------------
// TB taps x MB atoms of dot products per pass over the channels: each pass loads TB vectors of x and
// one vector of gz per atom.
template <typename T, int MB, int TB>
inline void ga_block(const T* x, const int64_t* offs, const T* gp, int64_t C, T* res /* [TB][MB] */) {
  using Vec = Vectorized<T>;
  constexpr int64_t V = Vec::size();
  Vec acc[TB][MB];
  for (int t = 0; t < TB; ++t)
    for (int b = 0; b < MB; ++b) acc[t][b] = Vec(T(0));
  const T* xp[TB];
  for (int t = 0; t < TB; ++t) xp[t] = x + offs[t];
  int64_t c = 0;
  for (; c + V <= C; c += V) {
    Vec xv[TB];
    for (int t = 0; t < TB; ++t) xv[t] = Vec::loadu(xp[t] + c);
    for (int b = 0; b < MB; ++b) {
      const Vec gv = Vec::loadu(gp + b * C + c);
      for (int t = 0; t < TB; ++t) acc[t][b] = at::vec::fmadd(gv, xv[t], acc[t][b]);
    }
  }
  if (c < C) {
    const int64_t cnt = C - c;
    Vec xv[TB];
    for (int t = 0; t < TB; ++t) xv[t] = Vec::loadu(xp[t] + c, cnt);
    for (int b = 0; b < MB; ++b) {
      const Vec gv = Vec::loadu(gp + b * C + c, cnt);
      for (int t = 0; t < TB; ++t) acc[t][b] = at::vec::fmadd(gv, xv[t], acc[t][b]);
    }
  }
  for (int t = 0; t < TB; ++t)
    for (int b = 0; b < MB; ++b) res[t * MB + b] = lane_sum(acc[t][b]);
}

// grad of the atoms of output pixel (n, i, j), written at gap[b * gab + tap * gat] (taps on the padding
// get sum_c gz[b, c] * 0: 0, or NaN where gz[b, :] is not finite).
template <typename T>
inline void grad_atoms_pixel(const Geometry& g, const T* x, const T* gz, int64_t n, int64_t i, int64_t j, T* gap,
                             int64_t gat, int64_t gab, Taps& s) {
  const int64_t nt = g.gather_taps(n, i, j, s.offs.data(), s.taps.data());
  if (nt < g.taps())
    for (int64_t b = 0; b < g.m; ++b) {
      const bool finite = std::all_of(gz + b * g.C, gz + (b + 1) * g.C, [](T v) { return std::isfinite(v); });
      const T pad = finite ? T(0) : std::numeric_limits<T>::quiet_NaN();
      for (int64_t t = 0; t < g.taps(); ++t) gap[b * gab + t * gat] = pad;
    }
  for (int64_t b0 = 0; b0 < g.m; b0 += kMaxMB) {
    dispatch_mb(std::min<int64_t>(kMaxMB, g.m - b0), [&](auto mb) {
      constexpr int MB = decltype(mb)::value;
      constexpr int TB = std::max(1, std::min(4, (kVecRegs - 1) / (MB + 1)));
      T res[TB * MB];
      int64_t t = 0;
      auto emit = [&](int64_t count) {
        for (int64_t q = 0; q < count; ++q)
          for (int b = 0; b < MB; ++b) gap[(b0 + b) * gab + s.taps[t + q] * gat] = res[q * MB + b];
      };
      for (; t + TB <= nt; t += TB) {
        ga_block<T, MB, TB>(x, s.offs.data() + t, gz + b0 * g.C, g.C, res);
        emit(TB);
      }
      for (; t < nt; ++t) {
        ga_block<T, MB, 1>(x, s.offs.data() + t, gz + b0 * g.C, g.C, res);
        emit(1);
      }
    });
  }
}

// ---- grad x: scatter of one pixel's gz into its taps ----------------------------------------------
// The pixel's MB x NV gradient vectors stay in registers while the taps are accumulated into gx (one
// load and store of gx per MB multiply-adds).
template <typename T, int MB, int NV, bool FULL>
inline void gx_block(const T* gp, const T* ap, int64_t ab, const int64_t* atap, T* gx, const int64_t* offs,
                     const int64_t* taps, int64_t nt, int64_t c0, int64_t cnt, int64_t C) {
  using Vec = Vectorized<T>;
  constexpr int64_t V = Vec::size();
  Vec gv[MB][NV];
  for (int b = 0; b < MB; ++b)
    for (int q = 0; q < NV; ++q) {
      if constexpr (FULL) gv[b][q] = Vec::loadu(gp + b * C + c0 + q * V);
      else gv[b][q] = load_part(gp + b * C + c0 + q * V, cnt - q * V);
    }
  for (int64_t t = 0; t < nt; ++t) {
    T* dst = gx + offs[t] + c0;
    const T* at = ap + atap[taps[t]];
    if constexpr (FULL) {
      Vec acc[NV];
      for (int q = 0; q < NV; ++q) acc[q] = Vec::loadu(dst + q * V);
      for (int b = 0; b < MB; ++b) {
        const Vec a(at[b * ab]);
        for (int q = 0; q < NV; ++q) acc[q] = at::vec::fmadd(a, gv[b][q], acc[q]);
      }
      for (int q = 0; q < NV; ++q) acc[q].store(dst + q * V);
    } else {
      for (int q = 0; q < NV; ++q) {
        const int64_t rest = std::min<int64_t>(cnt - q * V, V);
        if (rest <= 0) break;
        Vec acc = Vec::loadu(dst + q * V, rest);
        for (int b = 0; b < MB; ++b) acc = at::vec::fmadd(Vec(at[b * ab]), gv[b][q], acc);
        acc.store(dst + q * V, rest);
      }
    }
  }
}

template <typename T>
inline void grad_x_pixel(const Geometry& g, const T* gz, const T* ap, const AtomStrides& as, int64_t n, int64_t i,
                         int64_t j, T* gx, Taps& s) {
  const int64_t nt = g.gather_taps(n, i, j, s.offs.data(), s.taps.data());
  for_each_block<T>(g, [&](auto shape, auto full, int64_t b0, int64_t c0, int64_t cnt) {
    using S = decltype(shape);
    gx_block<T, S::MB, S::NV, decltype(full)::value>(gz + b0 * g.C, ap + b0 * as.ab, as.ab, as.atap, gx,
                                                      s.offs.data(), s.taps.data(), nt, c0, cnt, g.C);
  });
}

struct Rows {
  int64_t n, i0, i1;  // output rows [i0, i1) of image n
};

// Runs f(key, rows) once per parallel chunk over output-row stripes of every image: even stripes in
// parallel, then odd ones (see Geometry::stripes), so f may scatter into the input rows its stripes
// read; phase_done() runs after each phase. Keys are distinct and increase with (phase, first stripe):
// reductions over chunks can be summed in key order, deterministically.
template <typename F, typename D>
inline void for_each_stripe(const Geometry& g, F&& f, D&& phase_done) {
  const int64_t S = g.stripes(at::get_num_threads());
  for (int64_t phase = 0; phase < 2; ++phase) {
    const int64_t per_n = (S - phase + 1) / 2;  // stripes phase, phase + 2, ...
    if (per_n <= 0) continue;
    at::parallel_for(0, g.N * per_n, 1, [&](int64_t begin, int64_t end) {
      std::vector<Rows> rows;
      for (int64_t task = begin; task < end; ++task) {
        const int64_t n = task / per_n, s = phase + 2 * (task % per_n);
        rows.push_back({n, s * g.OH / S, (s + 1) * g.OH / S});
      }
      f(phase * g.N * S + begin, rows);
    });
    phase_done();
  }
}

template <typename F>
inline void for_each_stripe(const Geometry& g, F&& f) {
  for_each_stripe(g, std::forward<F>(f), [] {});
}

}  // namespace acda
