// Native CPU kernel of the atom convolution (paper §3.2, Eq. 5) and its gradients.
//
// out[n, c*m + b, i, j] = sum_{u,v} atoms[n, b, u, v, i, j] * x[n, c, i*sh - ph + u*dh, j*sw - pw + v*dw]
//
// Internal layouts (all contiguous): x as (N, H, W, C) (channels-last), atoms as (N, H', W', kh, kw, m),
// out as (N, H', W', C, m) == channels-last (N, C*m, H', W'). Inner loops are vectorised over the
// channels with at::vec::Vectorized (its instruction set chosen at compile time by CPU_CAPABILITY), and
// parallelised with at::parallel_for over output rows (forward, grad atoms) or over stripes of output
// rows whose input footprints do not overlap (grad x). No unfolded tensor is built.
#include <torch/extension.h>

#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <type_traits>
#include <vector>

namespace {

using at::vec::Vectorized;

struct Geometry {
  int64_t N, C, H, W, m, kh, kw, OH, OW, sh, sw, ph, pw, dh, dw;
  // Rows per parallel task: small problems run serially (no thread wake-up for a few kFLOPs).
  int64_t grain(int64_t row_width) const {
    const int64_t work = std::max<int64_t>(1, row_width * C * m * kh * kw);
    return std::max<int64_t>(1, (int64_t{1} << 15) / work);
  }
  // In-image taps of output pixel (n, i, j): offsets of x's channel vectors (NHWC) and tap indices
  // u·kw + v; returns how many there are (taps over zero padding are skipped).
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
};

#if defined(CPU_CAPABILITY_AVX512)
constexpr int kVecRegs = 32;
#else
constexpr int kVecRegs = 16;
#endif
constexpr int kMaxMB = 6;  // atoms per register block

// Calls f.template operator()<MB>() with MB = mb (1..kMaxMB) as a compile-time constant.
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

// Forward for one output pixel, channels [c0, c0 + cnt), atoms [b0, b0 + MB): MB x NV vector
// accumulators in registers; each tap loads NV vectors of x once and broadcasts MB atom values.
template <typename T, int MB, int NV>
inline void fwd_block(const T* x, const T* ap, T* op, const int64_t* offs, const int64_t* taps, int64_t nt,
                      int64_t c0, int64_t cnt, int64_t b0, int64_t m) {
  using Vec = Vectorized<T>;
  constexpr int64_t V = Vec::size();
  Vec acc[MB][NV];
  for (int b = 0; b < MB; ++b)
    for (int q = 0; q < NV; ++q) acc[b][q] = Vec(T(0));
  const bool full = cnt == NV * V;
  for (int64_t t = 0; t < nt; ++t) {
    const T* xp = x + offs[t] + c0;
    const T* at = ap + taps[t] * m + b0;
    Vec xv[NV];
    if (full) {
      for (int q = 0; q < NV; ++q) xv[q] = Vec::loadu(xp + q * V);
    } else {
      for (int q = 0; q < NV; ++q) {
        const int64_t rest = cnt - q * V;
        xv[q] = rest <= 0 ? Vec(T(0)) : Vec::loadu(xp + q * V, std::min<int64_t>(rest, V));
      }
    }
    for (int b = 0; b < MB; ++b) {
      const Vec a(at[b]);
      for (int q = 0; q < NV; ++q) acc[b][q] = at::vec::fmadd(a, xv[q], acc[b][q]);
    }
  }
  alignas(64) T buf[MB][NV * V];
  for (int b = 0; b < MB; ++b)
    for (int q = 0; q < NV; ++q) acc[b][q].store(buf[b] + q * V);
  T* o = op + c0 * m + b0;
  for (int64_t c = 0; c < cnt; ++c)
    for (int b = 0; b < MB; ++b) o[c * m + b] = buf[b][c];
}

template <typename T>
void forward_kernel(const T* x, const T* atoms, T* out, const Geometry& g) {
  using Vec = Vectorized<T>;
  constexpr int64_t V = Vec::size();
  const int64_t K = g.kh * g.kw;
  at::parallel_for(0, g.N * g.OH, g.grain(g.OW), [&](int64_t begin, int64_t end) {
    std::vector<int64_t> offs(K), taps(K);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t n = r / g.OH, i = r % g.OH;
      for (int64_t j = 0; j < g.OW; ++j) {
        const int64_t nt = g.gather_taps(n, i, j, offs.data(), taps.data());
        const int64_t pix = (n * g.OH + i) * g.OW + j;
        const T* ap = atoms + pix * K * g.m;
        T* op = out + pix * g.C * g.m;
        for (int64_t b0 = 0; b0 < g.m; b0 += kMaxMB) {
          dispatch_mb(std::min<int64_t>(kMaxMB, g.m - b0), [&](auto mb) {
            constexpr int MB = decltype(mb)::value;
            constexpr int NV = std::max(1, std::min(4, (kVecRegs - 6) / MB));
            int64_t c0 = 0;
            for (; c0 + NV * V <= g.C; c0 += NV * V)
              fwd_block<T, MB, NV>(x, ap, op, offs.data(), taps.data(), nt, c0, NV * V, b0, g.m);
            if (c0 < g.C) fwd_block<T, MB, NV>(x, ap, op, offs.data(), taps.data(), nt, c0, g.C - c0, b0, g.m);
          });
        }
      }
    }
  });
}

// One output pixel of grad_out, (C, m) interleaved as in the channels-last tensor -> (m, C) in dst.
template <typename T>
inline void transpose_pixel(const T* src, T* dst, int64_t C, int64_t m) {
  for (int64_t c = 0; c < C; ++c)
    for (int64_t b = 0; b < m; ++b) dst[b * C + c] = src[c * m + b];
}

// grad_atoms[n, i, j, u, v, b] = sum_c grad_out[n, c*m + b, i, j] * x[n, y, x, c], one pixel of grad_out
// transposed to (m, C) in a thread-local buffer.
// Per tap: one pass over the channels loads x once and updates MB dot-product accumulators.
template <typename T, int MB>
inline void ga_block(const T* xp, const T* gp, T* dst, int64_t C) {
  using Vec = Vectorized<T>;
  constexpr int64_t V = Vec::size();
  Vec acc[MB];
  for (int b = 0; b < MB; ++b) acc[b] = Vec(T(0));
  int64_t c = 0;
  for (; c + V <= C; c += V) {
    const Vec xv = Vec::loadu(xp + c);
    for (int b = 0; b < MB; ++b) acc[b] = at::vec::fmadd(Vec::loadu(gp + b * C + c), xv, acc[b]);
  }
  if (c < C) {
    const int64_t k = C - c;
    const Vec xv = Vec::loadu(xp + c, k);
    for (int b = 0; b < MB; ++b) acc[b] = at::vec::fmadd(Vec::loadu(gp + b * C + c, k), xv, acc[b]);
  }
  alignas(64) T buf[V];
  for (int b = 0; b < MB; ++b) {
    acc[b].store(buf);
    T s = T(0);
    for (int64_t l = 0; l < V; ++l) s += buf[l];
    dst[b] = s;
  }
}

template <typename T>
void grad_atoms_kernel(const T* x, const T* go, T* ga, const Geometry& g) {
  const int64_t K = g.kh * g.kw;
  at::parallel_for(0, g.N * g.OH, g.grain(g.OW), [&](int64_t begin, int64_t end) {
    std::vector<T> local(g.m * g.C);
    const T* gp = local.data();
    for (int64_t r = begin; r < end; ++r) {
      const int64_t n = r / g.OH, i = r % g.OH;
      for (int64_t j = 0; j < g.OW; ++j) {
        const int64_t pix = (n * g.OH + i) * g.OW + j;
        transpose_pixel(go + pix * g.C * g.m, local.data(), g.C, g.m);
        T* gap = ga + pix * K * g.m;
        for (int64_t u = 0; u < g.kh; ++u) {
          const int64_t y = i * g.sh - g.ph + u * g.dh;
          for (int64_t v = 0; v < g.kw; ++v) {
            const int64_t xx = j * g.sw - g.pw + v * g.dw;
            T* dst = gap + (u * g.kw + v) * g.m;
            if (y < 0 || y >= g.H || xx < 0 || xx >= g.W) {
              for (int64_t b = 0; b < g.m; ++b) dst[b] = T(0);
              continue;
            }
            const T* xp = x + ((n * g.H + y) * g.W + xx) * g.C;
            for (int64_t b0 = 0; b0 < g.m; b0 += kMaxMB) {
              dispatch_mb(std::min<int64_t>(kMaxMB, g.m - b0), [&](auto mb) {
                ga_block<T, decltype(mb)::value>(xp, gp + b0 * g.C, dst + b0, g.C);
              });
            }
          }
        }
      }
    }
  });
}

// grad_x[n, y, x, c] = sum over taps (u, v) and output pixels (i, j) reading (y, x) of
// sum_b atoms[n, i, j, u, v, b] * grad_out[n, c*m + b, i, j]. Computed as a scatter from each output pixel:
// its MB x NV gradient vectors stay in registers while the k_h*k_w taps are accumulated into grad_x
// (one load and store of grad_x per MB multiply-adds). Output rows are cut into stripes tall enough
// that stripes two apart never touch the same input row; even stripes run in parallel, then odd.
template <typename T, int MB, int NV>
inline void gx_block(const T* gp, const T* ap, T* gx, const int64_t* offs, const int64_t* taps, int64_t nt,
                     int64_t c0, int64_t cnt, int64_t b0, int64_t m, int64_t C) {
  using Vec = Vectorized<T>;
  constexpr int64_t V = Vec::size();
  Vec gv[MB][NV];
  const bool full = cnt == NV * V;
  for (int b = 0; b < MB; ++b) {
    const T* src = gp + (b0 + b) * C + c0;
    for (int q = 0; q < NV; ++q) {
      const int64_t rest = cnt - q * V;
      gv[b][q] = full ? Vec::loadu(src + q * V) : (rest <= 0 ? Vec(T(0)) : Vec::loadu(src + q * V, std::min<int64_t>(rest, V)));
    }
  }
  for (int64_t t = 0; t < nt; ++t) {
    T* dst = gx + offs[t] + c0;
    const T* at = ap + taps[t] * m + b0;
    if (full) {
      Vec acc[NV];
      for (int q = 0; q < NV; ++q) acc[q] = Vec::loadu(dst + q * V);
      for (int b = 0; b < MB; ++b) {
        const Vec a(at[b]);
        for (int q = 0; q < NV; ++q) acc[q] = at::vec::fmadd(a, gv[b][q], acc[q]);
      }
      for (int q = 0; q < NV; ++q) acc[q].store(dst + q * V);
    } else {
      for (int q = 0; q < NV; ++q) {
        const int64_t rest = std::min<int64_t>(cnt - q * V, V);
        if (rest <= 0) break;
        Vec acc = Vec::loadu(dst + q * V, rest);
        for (int b = 0; b < MB; ++b) acc = at::vec::fmadd(Vec(at[b]), gv[b][q], acc);
        acc.store(dst + q * V, rest);
      }
    }
  }
}

template <typename T>
void grad_x_kernel(const T* go, const T* atoms, T* gx, const Geometry& g) {
  using Vec = Vectorized<T>;
  constexpr int64_t V = Vec::size();
  const int64_t K = g.kh * g.kw;
  const int64_t stripe = std::max<int64_t>(1, ((g.kh - 1) * g.dh) / g.sh + 1);
  const int64_t stripes = (g.OH + stripe - 1) / stripe;
  for (int64_t phase = 0; phase < 2; ++phase) {
    const int64_t per_n = (stripes - phase + 1) / 2;  // stripes phase, phase + 2, ...
    if (per_n <= 0) continue;
    const int64_t grain = std::max<int64_t>(1, g.grain(g.OW * stripe));
    at::parallel_for(0, g.N * per_n, grain, [&](int64_t begin, int64_t end) {
      std::vector<int64_t> offs(K), taps(K);
      std::vector<T> local(g.m * g.C);
      for (int64_t task = begin; task < end; ++task) {
        const int64_t n = task / per_n, s = phase + 2 * (task % per_n);
        for (int64_t i = s * stripe; i < std::min(g.OH, (s + 1) * stripe); ++i) {
          for (int64_t j = 0; j < g.OW; ++j) {
            const int64_t nt = g.gather_taps(n, i, j, offs.data(), taps.data());
            const int64_t pix = (n * g.OH + i) * g.OW + j;
            transpose_pixel(go + pix * g.C * g.m, local.data(), g.C, g.m);
            for (int64_t b0 = 0; b0 < g.m; b0 += kMaxMB) {
              dispatch_mb(std::min<int64_t>(kMaxMB, g.m - b0), [&](auto mb) {
                constexpr int MB = decltype(mb)::value;
                constexpr int NV = std::max(1, std::min(4, (kVecRegs - 6) / MB));
                for (int64_t c0 = 0; c0 < g.C; c0 += NV * V) {
                  gx_block<T, MB, NV>(local.data(), atoms + pix * K * g.m, gx, offs.data(), taps.data(), nt, c0,
                                      std::min<int64_t>(NV * V, g.C - c0), b0, g.m, g.C);
                }
              });
            }
          }
        }
      }
    });
  }
}

Geometry geometry(const at::Tensor& x, const at::Tensor& atoms, at::IntArrayRef stride, at::IntArrayRef padding,
                  at::IntArrayRef dilation) {
  TORCH_CHECK(x.dim() == 4, "x must be 4-D (N, C, H, W)");
  TORCH_CHECK(atoms.dim() == 6, "atoms must be 6-D (N, m, kh, kw, H', W')");
  TORCH_CHECK(stride.size() == 2 && padding.size() == 2 && dilation.size() == 2, "stride/padding/dilation: 2 ints");
  TORCH_CHECK(x.device().is_cpu() && atoms.device().is_cpu(), "native atom_conv2d runs on CPU tensors");
  TORCH_CHECK(x.scalar_type() == atoms.scalar_type(), "x and atoms must have the same dtype");
  Geometry g{x.size(0), x.size(1), x.size(2), x.size(3), atoms.size(1), atoms.size(2), atoms.size(3),
             atoms.size(4), atoms.size(5), stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1]};
  TORCH_CHECK(atoms.size(0) == g.N, "batch sizes of x and atoms differ");
  TORCH_CHECK(g.OH == (g.H + 2 * g.ph - g.dh * (g.kh - 1) - 1) / g.sh + 1 &&
                  g.OW == (g.W + 2 * g.pw - g.dw * (g.kw - 1) - 1) / g.sw + 1,
              "atoms spatial size does not match the convolution output size");
  return g;
}

// Returns (N, C*m, H', W') with channels-last memory, i.e. (N, H', W', C, m) contiguous.
at::Tensor forward(const at::Tensor& x, const at::Tensor& atoms, at::IntArrayRef stride, at::IntArrayRef padding,
                   at::IntArrayRef dilation) {
  const Geometry g = geometry(x, atoms, stride, padding, dilation);
  const at::Tensor xc = x.permute({0, 2, 3, 1}).contiguous();
  const at::Tensor ac = atoms.permute({0, 4, 5, 2, 3, 1}).contiguous();
  at::Tensor out = at::empty({g.N, g.OH, g.OW, g.C * g.m}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "acda_atom_conv2d_forward", [&] {
    forward_kernel<scalar_t>(xc.data_ptr<scalar_t>(), ac.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), g);
  });
  return out.permute({0, 3, 1, 2});
}

// Returns (grad_x, grad_atoms); an undefined tensor for a gradient that is not needed. grad_x is
// channels-last (N, C, H, W); grad_atoms is contiguous (N, m, kh, kw, H', W').
std::tuple<at::Tensor, at::Tensor> backward(const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& atoms,
                                            at::IntArrayRef stride, at::IntArrayRef padding,
                                            at::IntArrayRef dilation, bool needs_x, bool needs_atoms) {
  const Geometry g = geometry(x, atoms, stride, padding, dilation);
  TORCH_CHECK(grad_out.dim() == 4 && grad_out.size(0) == g.N && grad_out.size(1) == g.C * g.m &&
                  grad_out.size(2) == g.OH && grad_out.size(3) == g.OW,
              "grad_out must have shape (N, C*m, H', W')");
  // Channels-last grad_out is (N, H', W', C, m) in memory; kernels transpose one pixel at a time.
  const at::Tensor go = grad_out.to(x.scalar_type()).contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor gx, ga;
  if (needs_x) {
    const at::Tensor ac = atoms.permute({0, 4, 5, 2, 3, 1}).contiguous();
    gx = at::zeros({g.N, g.H, g.W, g.C}, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "acda_atom_conv2d_grad_x", [&] {
      grad_x_kernel<scalar_t>(go.data_ptr<scalar_t>(), ac.data_ptr<scalar_t>(), gx.data_ptr<scalar_t>(), g);
    });
    gx = gx.permute({0, 3, 1, 2});
  }
  if (needs_atoms) {
    const at::Tensor xc = x.permute({0, 2, 3, 1}).contiguous();
    at::Tensor gat = at::empty({g.N, g.OH, g.OW, g.kh, g.kw, g.m}, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "acda_atom_conv2d_grad_atoms", [&] {
      grad_atoms_kernel<scalar_t>(xc.data_ptr<scalar_t>(), go.data_ptr<scalar_t>(), gat.data_ptr<scalar_t>(), g);
    });
    ga = gat.permute({0, 5, 3, 4, 1, 2}).contiguous();
  }
  return {gx, ga};
}

std::string capability() {
#if defined(CPU_CAPABILITY_AVX512)
  return "AVX512";
#elif defined(CPU_CAPABILITY_AVX2)
  return "AVX2";
#else
  return "DEFAULT";
#endif
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "atom convolution forward (paper Eq. 5)");
  m.def("backward", &backward, "atom convolution backward: (grad_x, grad_atoms)");
  m.def("capability", &capability, "at::vec instruction set compiled in");
  m.def("vector_width", [] { return static_cast<int64_t>(at::vec::Vectorized<float>::size()); });
}
