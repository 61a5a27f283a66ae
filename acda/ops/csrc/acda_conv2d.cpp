// Fused native CPU kernel of the two-layer ACDA (paper §3.2: Eq. 5, atom convolution, then Eq. 6,
// the 1x1 coefficient convolution) and its gradients.
//
//   out[n, o, i, j] = bias[o] + sum_{b, c} coef[o, c, b] * z[n, i, j, b, c]     (z: atom_kernels.h)
//
// Output pixels are processed in tiles of P pixels: a tile's z (P x m*C) is computed into a buffer
// that stays in cache and multiplied at once by the coefficients (one GEMM per tile), so the C*m-channel
// intermediate is never written at full size. The backward recomputes z per tile instead of storing it
// (grad coef += g^T z), forms grad z = g W per tile, and from it the gradients of the atoms (per pixel)
// and of x (a scatter, run over row stripes: see for_each_stripe). Per-chunk grad-coef accumulators are
// summed in a fixed order after each phase, so results do not depend on thread timing and at most one
// accumulator per thread is alive at a time.
#include "acda_ops.h"
#include "atom_kernels.h"

#include <map>
#include <mutex>

namespace acda {
namespace {

// Default tile: about 768 KiB of z (128 pixels at C*m = 1536 in fp32), at least 16 and at most 1024 pixels.
constexpr int64_t kTileBytes = int64_t{3} << 18;

// Row-major matrix view of a buffer (no copy).
template <typename T>
at::Tensor matrix(T* data, int64_t rows, int64_t cols, const at::TensorOptions& options) {
  return at::from_blob(data, {rows, cols}, options);
}

struct Pixel {
  int64_t n, i, j;
};

inline Pixel pixel_of(const Geometry& g, int64_t p) { return {p / (g.OH * g.OW), (p / g.OW) % g.OH, p % g.OW}; }

template <typename T>
void forward_kernel(const T* x, const T* atoms, const at::Tensor& w /* (O, m*C) */, const T* bias, T* out,
                    const Geometry& g, int64_t tile) {
  const int64_t cm = g.C * g.m, O = w.size(0);
  const int64_t tiles = (g.pixels() + tile - 1) / tile;
  const at::TensorOptions options = w.options();
  const at::Tensor wt = w.t();
  at::parallel_for(0, tiles, 1, [&](int64_t begin, int64_t end) {
    Taps s(g);
    at::Tensor zbuf = at::empty({tile, cm}, options);
    T* z = zbuf.data_ptr<T>();
    for (int64_t t = begin; t < end; ++t) {
      const int64_t p0 = t * tile, np = std::min(tile, g.pixels() - p0);
      for (int64_t q = 0; q < np; ++q) {
        const Pixel px = pixel_of(g, p0 + q);
        forward_pixel(g, x, atoms, px.n, px.i, px.j, z + q * cm, s);
      }
      at::Tensor o = matrix(out + p0 * O, np, O, options);
      at::Tensor zt = matrix(z, np, cm, options);
      if (bias) {
        for (int64_t q = 0; q < np; ++q) std::copy(bias, bias + O, out + (p0 + q) * O);
        o.addmm_(zt, wt);
      } else {
        at::mm_out(o, zt, wt);
      }
    }
  });
}

template <typename T>
void backward_kernel(const T* go, const T* x, const T* atoms, const at::Tensor& w, T* gx, T* ga, at::Tensor* gw,
                     const Geometry& g, int64_t tile) {
  const int64_t cm = g.C * g.m, O = w.size(0);
  const at::TensorOptions options = w.options();
  std::mutex lock;
  std::map<int64_t, at::Tensor> partial;  // grad coef of each chunk, by chunk key
  for_each_stripe(g, [&](int64_t key, const std::vector<Rows>& stripes) {
    Taps s(g);
    at::Tensor zbuf = gw ? at::empty({tile, cm}, options) : at::Tensor();
    at::Tensor gzbuf = (gx || ga) ? at::empty({tile, cm}, options) : at::Tensor();
    at::Tensor acc = gw ? at::zeros({O, cm}, options) : at::Tensor();
    for (const Rows& r : stripes) {
      const int64_t first = (r.n * g.OH + r.i0) * g.OW, last = (r.n * g.OH + r.i1) * g.OW;
      for (int64_t p0 = first; p0 < last; p0 += tile) {
        const int64_t np = std::min(tile, last - p0);
        const at::Tensor gt = matrix(const_cast<T*>(go) + p0 * O, np, O, options);
        if (gw) {
          T* z = zbuf.data_ptr<T>();
          for (int64_t q = 0; q < np; ++q) {
            const Pixel px = pixel_of(g, p0 + q);
            forward_pixel(g, x, atoms, px.n, px.i, px.j, z + q * cm, s);
          }
          acc.addmm_(gt.t(), matrix(z, np, cm, options));
        }
        if (gx || ga) {
          T* gz = gzbuf.data_ptr<T>();
          at::Tensor gzt = matrix(gz, np, cm, options);
          at::mm_out(gzt, gt, w);
          for (int64_t q = 0; q < np; ++q) {
            const Pixel px = pixel_of(g, p0 + q);
            if (ga) grad_atoms_pixel(g, x, gz + q * cm, px.n, px.i, px.j, ga, s);
            if (gx) grad_x_pixel(g, gz + q * cm, atoms, px.n, px.i, px.j, gx, s);
          }
        }
      }
    }
    if (gw) {
      std::lock_guard<std::mutex> guard(lock);
      partial.emplace(key, acc);
    }
  }, [&] {  // after each phase: fold its chunks' partial sums in key order, free them
    if (!gw) return;
    for (auto& [key, acc] : partial) {
      if (gw->defined()) gw->add_(acc);
      else *gw = acc;
    }
    partial.clear();
  });
}

int64_t tile_or_default(int64_t tile, const Geometry& g, int64_t element_size) {
  TORCH_CHECK(tile >= 0, "tile must be >= 0 (0: default)");
  if (tile > 0) return tile;
  const int64_t fit = kTileBytes / std::max<int64_t>(1, g.C * g.m * element_size);
  return std::clamp<int64_t>(fit / 16 * 16, 16, 1024);
}

at::Tensor coefficient_matrix(const at::Tensor& coef, const Geometry& g) {
  TORCH_CHECK(coef.dim() == 3 && coef.size(1) == g.C && coef.size(2) == g.m, "coef must have shape (O, C, m)");
  // (O, m*C): z's order. Detached: the GEMMs run on at::parallel_for's worker threads, which do not inherit
  // the custom op's below-autograd dispatch state, so a view of a coef that requires grad (C = 1 or m = 1:
  // contiguous() is then a no-op) would reach autograd there ("mm(): functions with out=... arguments").
  return coef.detach().permute({0, 2, 1}).contiguous().view({coef.size(0), g.m * g.C});
}

}  // namespace

at::Tensor acda_forward(const at::Tensor& x, const at::Tensor& atoms, const at::Tensor& coef,
                        const std::optional<at::Tensor>& bias, at::IntArrayRef stride, at::IntArrayRef padding,
                        at::IntArrayRef dilation, int64_t tile) {
  const Geometry g = make_geometry(x, atoms, stride, padding, dilation);
  TORCH_CHECK(coef.scalar_type() == x.scalar_type(), "coef must have the dtype of x");
  const at::Tensor w = coefficient_matrix(coef, g);
  const int64_t O = w.size(0);
  at::Tensor b;
  if (bias && bias->defined()) {
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == O, "bias must have shape (O,)");
    b = bias->to(x.scalar_type()).contiguous();
  }
  const at::Tensor xc = channels_last_x(x);
  at::Tensor out = empty_channels_last({g.N, O, g.OH, g.OW}, x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "acda_conv2d_forward", [&] {
    forward_kernel<scalar_t>(xc.data_ptr<scalar_t>(), atoms.data_ptr<scalar_t>(), w,
                             b.defined() ? b.data_ptr<scalar_t>() : nullptr, out.data_ptr<scalar_t>(), g,
                             tile_or_default(tile, g, x.element_size()));
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> acda_backward(const at::Tensor& grad_out, const at::Tensor& x,
                                                             const at::Tensor& atoms, const at::Tensor& coef,
                                                             at::IntArrayRef stride, at::IntArrayRef padding,
                                                             at::IntArrayRef dilation, bool needs_x,
                                                             bool needs_atoms, bool needs_coef, int64_t tile) {
  const Geometry g = make_geometry(x, atoms, stride, padding, dilation);
  TORCH_CHECK(coef.scalar_type() == x.scalar_type(), "coef must have the dtype of x");
  const at::Tensor w = coefficient_matrix(coef, g);
  const int64_t O = w.size(0);
  const BackwardBuffers b = backward_buffers(g, grad_out, x, O, "(N, O, H', W')", needs_x, needs_atoms);
  at::Tensor gw;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "acda_conv2d_backward", [&] {
    backward_kernel<scalar_t>(b.grad_out.data_ptr<scalar_t>(), b.x.data_ptr<scalar_t>(), atoms.data_ptr<scalar_t>(),
                              w, needs_x ? b.grad_x.data_ptr<scalar_t>() : nullptr,
                              needs_atoms ? b.grad_atoms.data_ptr<scalar_t>() : nullptr, needs_coef ? &gw : nullptr,
                              g, tile_or_default(tile, g, x.element_size()));
  });
  if (needs_coef && !gw.defined()) gw = at::zeros({O, g.m * g.C}, w.options());  // no pixels (N = 0)
  if (needs_coef) gw = gw.view({O, g.m, g.C}).permute({0, 2, 1}).contiguous();
  return {b.grad_x, b.grad_atoms, gw};
}

}  // namespace acda
