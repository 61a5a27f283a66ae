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

#include <ATen/core/dispatch/Dispatcher.h>

#include <atomic>
#include <map>
#include <mutex>

namespace acda {
namespace {

// Which library multiplies the tiles (set_tile_gemm). fp32 tiles go to oneDNN by default: on the AMD EPYC this was
// written on its GEMMs ran 8-15% faster than MKL's sgemm (docs/performance.md); not where the user disabled oneDNN
// (torch.backends.mkldnn.enabled = False). It is reached through the registered
// mkldnn::_linear_pointwise op (not at::native::mkldnn_matmul, which corrupts the heap for a one-row product
// accumulated into its output); float64, and builds of torch without it, use ATen's mm (MKL).
std::atomic<bool> g_onednn{true};

using LinearFn = at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&, std::string_view,
                            c10::List<std::optional<at::Scalar>>, std::optional<std::string_view>);

const std::optional<c10::TypedOperatorHandle<LinearFn>>& onednn_op() {
  static const std::optional<c10::TypedOperatorHandle<LinearFn>> op = [] {
    const auto handle = c10::Dispatcher::singleton().findSchema({"mkldnn::_linear_pointwise", ""});
    return handle && at::hasMKLDNN() ? std::optional(handle->typed<LinearFn>()) : std::nullopt;
  }();
  return op;
}

// The three products of a tile of np pixels, z (np, m*C), with the coefficients w (O, m*C); g: grad out (np, O).
class TileGemm {
 public:
  // grad_z: whether grad_z will be asked for (oneDNN then needs w^T in rows, made once here)
  TileGemm(const at::Tensor& w, bool grad_z)
      : w_(w), onednn_(g_onednn.load() && w.scalar_type() == at::kFloat && onednn_op().has_value() &&
                       at::globalContext().userEnabledMkldnn()),
        wt_(onednn_ && grad_z ? w.t().contiguous() : at::Tensor()) {}

  // out = z w^T + bias
  void forward(const at::Tensor& out, const at::Tensor& z, const std::optional<at::Tensor>& bias) const {
    at::Tensor& o = const_cast<at::Tensor&>(out);
    if (onednn_) {
      o.copy_(linear(z, w_, bias));
    } else if (bias) {
      o.copy_(bias->expand_as(o));
      o.addmm_(z, w_.t());
    } else {
      at::mm_out(o, z, w_.t());
    }
  }
  // grad z = g w: into buffer, or a new tensor it returns (oneDNN writes its own)
  at::Tensor grad_z(const at::Tensor& g, const at::Tensor& buffer) const {
    if (onednn_) return linear(g, wt_, std::nullopt);
    at::mm_out(const_cast<at::Tensor&>(buffer), g, w_);
    return buffer;
  }
  // acc += g^T z
  void accumulate_grad_w(const at::Tensor& acc, const at::Tensor& g, const at::Tensor& z) const {
    if (onednn_) const_cast<at::Tensor&>(acc).add_(linear(g.t().contiguous(), z.t(), std::nullopt));
    else const_cast<at::Tensor&>(acc).addmm_(g.t(), z);
  }

 private:
  static at::Tensor linear(const at::Tensor& a, const at::Tensor& rows_w, const std::optional<at::Tensor>& bias) {
    return onednn_op()->call(a, rows_w, bias, "none", c10::List<std::optional<at::Scalar>>(), std::nullopt);
  }

  at::Tensor w_;
  bool onednn_;
  at::Tensor wt_;
};

// Default tiles: about 1.5 MiB of z in the forward (256 pixels at C*m = 1536 in fp32) and 3 MiB in the backward
// (512 pixels: fewer, larger GEMMs, of which there are three per tile), the sizes measured fastest with oneDNN's
// tile GEMM on the machine this was written on; at least 16 and at most 1024 pixels, and small enough to give every
// thread 4 tiles (see tile_or_default).
constexpr int64_t kForwardTileBytes = int64_t{3} << 19;
constexpr int64_t kBackwardTileBytes = int64_t{3} << 20;

// Row-major matrix view of a buffer (no copy).
template <typename T>
at::Tensor matrix(T* data, int64_t rows, int64_t cols, const at::TensorOptions& options) {
  return at::from_blob(data, {rows, cols}, options);
}

struct Pixel {
  int64_t n, i, j;
};

inline Pixel pixel_of(const Geometry& g, int64_t p) { return {p / (g.OH * g.OW), (p / g.OW) % g.OH, p % g.OW}; }

// Where the kernels find each pixel's atoms and put their gradient. Two sources, one per thread:
//   GivenAtoms: the (N, m, kh, kw, H', W') tensor itself, read through its strides; grad atoms written into
//     the contiguous gradient tensor.
//   AlphaAtoms (the alpha path): D = alpha . psi formed per tile of pixels into a cache-resident buffer
//     (tile, m, kh*kw) by one GEMM; grad atoms of the tile go to a second such buffer, and
//     grad alpha = grad atoms . psi^T is written per tile (grad atoms never exist at full size).
// Interface: load(p0, np, atoms_needed) at the start of a tile of pixels [p0, p0 + np) (forms its atoms only if
// atoms_needed); atoms(p) / strides(); grad_slot(p) and its strides grad_tap / grad_atom; store_grad(p0, np)
// after a tile's atom gradients are written.
template <typename T>
class GivenAtoms {
 public:
  GivenAtoms(const Geometry& g, const T* atoms, T* grad) : g_(g), atoms_(atoms), grad_(grad) {}
  void load(int64_t, int64_t, bool) {}
  const T* atoms(int64_t p) const {
    const Pixel px = pixel_of(g_, p);
    return atoms_ + g_.atom_pixel(px.n, px.i, px.j);
  }
  AtomStrides strides() const { return g_.atom_strides(); }
  T* grad_slot(int64_t p) const {
    const int64_t hw = g_.OH * g_.OW, n = p / hw;
    return grad_ + n * g_.m * g_.taps() * hw + (p - n * hw);
  }
  int64_t grad_tap() const { return g_.OH * g_.OW; }
  int64_t grad_atom() const { return g_.taps() * g_.OH * g_.OW; }
  void store_grad(int64_t, int64_t) {}

 private:
  const Geometry& g_;
  const T* atoms_;
  T* grad_;
};

template <typename T>
class AlphaAtoms {
 public:
  // alpha: pixel-major (N*H'*W', m, B) contiguous, i.e. (N, m, B, H', W') stored channels-last; psi: contiguous
  // (B, kh*kw); grad_alpha: like alpha, or null. A tile's atoms are one GEMM: (np*m, B) x (B, kh*kw).
  AlphaAtoms(const Geometry& g, const T* alpha, const at::Tensor& psi, T* grad_alpha, int64_t tile)
      : g_(g), alpha_(alpha), psi_(psi), grad_alpha_(grad_alpha), B_(psi.size(0)),
        buf_(at::empty({tile * g.m, g.taps()}, psi.options())),
        gbuf_(grad_alpha ? at::empty({tile * g.m, g.taps()}, psi.options()) : at::Tensor()), atap_(g.taps()) {
    for (int64_t t = 0; t < g.taps(); ++t) atap_[t] = t;
  }
  void load(int64_t p0, int64_t np, bool atoms_needed) {
    p0_ = p0;
    if (!atoms_needed) return;
    at::Tensor out = rows(buf_.data_ptr<T>(), np * g_.m, g_.taps());
    at::mm_out(out, rows(const_cast<T*>(alpha_) + p0 * g_.m * B_, np * g_.m, B_), psi_);
  }
  const T* atoms(int64_t p) const { return buf_.data_ptr<T>() + (p - p0_) * g_.m * g_.taps(); }
  AtomStrides strides() const { return {g_.taps(), atap_.data()}; }
  T* grad_slot(int64_t p) const { return gbuf_.data_ptr<T>() + (p - p0_) * g_.m * g_.taps(); }
  int64_t grad_tap() const { return 1; }
  int64_t grad_atom() const { return g_.taps(); }
  void store_grad(int64_t p0, int64_t np) {  // grad alpha = grad atoms psi^T, straight into the output rows
    at::Tensor out = rows(grad_alpha_ + p0 * g_.m * B_, np * g_.m, B_);
    at::mm_out(out, rows(gbuf_.data_ptr<T>(), np * g_.m, g_.taps()), psi_.t());
  }

 private:
  at::Tensor rows(T* data, int64_t r, int64_t c) const { return at::from_blob(data, {r, c}, psi_.options()); }

  const Geometry& g_;
  const T* alpha_;
  at::Tensor psi_;
  T* grad_alpha_;
  int64_t B_, p0_ = 0;
  at::Tensor buf_, gbuf_;
  std::vector<int64_t> atap_;
};

// make_source(): a new atom source for the calling thread (GivenAtoms or AlphaAtoms).
template <typename T, typename MakeSource>
void forward_kernel(const T* x, MakeSource&& make_source, const at::Tensor& w /* (O, m*C) */, const T* bias, T* out,
                    const Geometry& g, int64_t tile) {
  const int64_t cm = g.C * g.m, O = w.size(0);
  const int64_t tiles = (g.pixels() + tile - 1) / tile;
  const at::TensorOptions options = w.options();
  const TileGemm gemm(w, false);
  const std::optional<at::Tensor> bias_t =
      bias ? std::optional<at::Tensor>(at::from_blob(const_cast<T*>(bias), {O}, options)) : std::nullopt;
  at::parallel_for(0, tiles, 1, [&](int64_t begin, int64_t end) {
    Taps s(g);
    auto src = make_source();
    at::Tensor zbuf = at::empty({tile, cm}, options);
    T* z = zbuf.data_ptr<T>();
    for (int64_t t = begin; t < end; ++t) {
      const int64_t p0 = t * tile, np = std::min(tile, g.pixels() - p0);
      src.load(p0, np, true);
      for (int64_t q = 0; q < np; ++q) {
        const Pixel px = pixel_of(g, p0 + q);
        forward_pixel(g, x, src.atoms(p0 + q), src.strides(), px.n, px.i, px.j, z + q * cm, s);
      }
      gemm.forward(matrix(out + p0 * O, np, O, options), matrix(z, np, cm, options), bias_t);
    }
  });
}

template <typename T, typename MakeSource>
void backward_kernel(const T* go, const T* x, MakeSource&& make_source, const at::Tensor& w, T* gx, bool ga,
                     at::Tensor* gw, const Geometry& g, int64_t tile) {
  const int64_t cm = g.C * g.m, O = w.size(0);
  const at::TensorOptions options = w.options();
  const TileGemm gemm(w, gx || ga);
  std::mutex lock;
  std::map<int64_t, at::Tensor> partial;  // grad coef of each chunk, by chunk key
  for_each_stripe(g, [&](int64_t key, const std::vector<Rows>& stripes) {
    Taps s(g);
    auto src = make_source();
    at::Tensor zbuf = gw ? at::empty({tile, cm}, options) : at::Tensor();
    at::Tensor gzbuf = (gx || ga) ? at::empty({tile, cm}, options) : at::Tensor();
    at::Tensor acc = gw ? at::zeros({O, cm}, options) : at::Tensor();
    for (const Rows& r : stripes) {
      const int64_t first = (r.n * g.OH + r.i0) * g.OW, last = (r.n * g.OH + r.i1) * g.OW;
      for (int64_t p0 = first; p0 < last; p0 += tile) {
        const int64_t np = std::min(tile, last - p0);
        const at::Tensor gt = matrix(const_cast<T*>(go) + p0 * O, np, O, options);
        src.load(p0, np, gw || gx);
        if (gw) {
          T* z = zbuf.data_ptr<T>();
          for (int64_t q = 0; q < np; ++q) {
            const Pixel px = pixel_of(g, p0 + q);
            forward_pixel(g, x, src.atoms(p0 + q), src.strides(), px.n, px.i, px.j, z + q * cm, s);
          }
          gemm.accumulate_grad_w(acc, gt, matrix(z, np, cm, options));
        }
        if (gx || ga) {
          const at::Tensor gzt = gemm.grad_z(gt, matrix(gzbuf.data_ptr<T>(), np, cm, options));
          const T* gz = gzt.data_ptr<T>();
          for (int64_t q = 0; q < np; ++q) {
            const Pixel px = pixel_of(g, p0 + q);
            if (ga)
              grad_atoms_pixel(g, x, gz + q * cm, px.n, px.i, px.j, src.grad_slot(p0 + q), src.grad_tap(),
                               src.grad_atom(), s);
            if (gx) grad_x_pixel(g, gz + q * cm, src.atoms(p0 + q), src.strides(), px.n, px.i, px.j, gx, s);
          }
          if (ga) src.store_grad(p0, np);
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

int64_t tile_or_default(int64_t tile, const Geometry& g, int64_t element_size, int64_t bytes) {
  TORCH_CHECK(tile >= 0, "tile must be >= 0 (0: default)");
  if (tile > 0) return tile;
  const int64_t fit = bytes / std::max<int64_t>(1, g.C * g.m * element_size);
  // 4 tiles per thread where that leaves tiles of >= 128 pixels (a smaller GEMM would not repay repacking
  // the coefficient matrix)
  const int64_t share = std::max<int64_t>(128, g.pixels() / (4 * std::max<int64_t>(1, at::get_num_threads())));
  return std::clamp<int64_t>(std::min(fit, share) / 16 * 16, 16, 1024);
}

at::Tensor coefficient_matrix(const at::Tensor& coef, const Geometry& g) {
  TORCH_CHECK(coef.dim() == 3 && coef.size(1) == g.C && coef.size(2) == g.m, "coef must have shape (O, C, m)");
  // (O, m*C): z's order. Detached: the GEMMs run on at::parallel_for's worker threads, which do not inherit
  // the custom op's below-autograd dispatch state, so a view of a coef that requires grad (C = 1 or m = 1:
  // contiguous() is then a no-op) would reach autograd there ("mm(): functions with out=... arguments").
  return coef.detach().permute({0, 2, 1}).contiguous().view({coef.size(0), g.m * g.C});
}

// grad coef (O, C, m) from the kernels' (O, m*C) sum (undefined when not requested; zero without pixels).
at::Tensor coefficient_gradient(at::Tensor gw, bool needs_coef, const Geometry& g, int64_t O, const at::Tensor& w) {
  if (!needs_coef) return at::Tensor();
  if (!gw.defined()) gw = at::zeros({O, g.m * g.C}, w.options());  // no pixels (N = 0)
  return gw.view({O, g.m, g.C}).permute({0, 2, 1}).contiguous();
}


at::Tensor bias_or_undefined(const std::optional<at::Tensor>& bias, const at::Tensor& x, int64_t O) {
  if (!bias || !bias->defined()) return at::Tensor();
  TORCH_CHECK(bias->dim() == 1 && bias->size(0) == O, "bias must have shape (O,)");
  return bias->to(x.scalar_type()).contiguous();
}

// Geometry of the alpha path: that of atoms (N, m, kh, kw, H', W') = alpha (N, m, B, H', W') . psi (B, kh, kw).
Geometry alpha_geometry(const at::Tensor& x, const at::Tensor& alpha, const at::Tensor& psi, at::IntArrayRef stride,
                        at::IntArrayRef padding, at::IntArrayRef dilation) {
  TORCH_CHECK(alpha.dim() == 5 && psi.dim() == 3 && alpha.size(2) == psi.size(0),
              "alpha must be (N, m, B, H', W') and bases (B, kh, kw) with equal B");
  TORCH_CHECK(alpha.scalar_type() == x.scalar_type() && psi.scalar_type() == x.scalar_type(),
              "alpha and bases must have the dtype of x");
  TORCH_CHECK(alpha.device().is_cpu() && psi.device().is_cpu(), "native ACDA kernels run on CPU tensors");
  // the atoms alpha . psi would have; the strides are unused (the alpha source lays out its own tiles)
  const std::vector<int64_t> sizes{alpha.size(0), alpha.size(1), psi.size(1), psi.size(2), alpha.size(3),
                                   alpha.size(4)};
  return make_geometry(x, sizes, std::vector<int64_t>(6, 0), stride, padding, dilation);
}

// alpha (N, m, B, H', W') as (N, H', W', m, B) contiguous: no copy when it is stored so (the layer's generator
// output in channels-last memory).
at::Tensor pixel_major(const at::Tensor& alpha) { return alpha.detach().permute({0, 3, 4, 1, 2}).contiguous(); }

}  // namespace

std::string set_tile_gemm(const std::string& name) {
  TORCH_CHECK(name == "onednn" || name == "mkl", "tile GEMM must be 'onednn' or 'mkl', got '", name, "'");
  return g_onednn.exchange(name == "onednn") ? "onednn" : "mkl";
}

at::Tensor acda_forward(const at::Tensor& x, const at::Tensor& atoms, const at::Tensor& coef,
                        const std::optional<at::Tensor>& bias, at::IntArrayRef stride, at::IntArrayRef padding,
                        at::IntArrayRef dilation, int64_t tile) {
  const Geometry g = make_geometry(x, atoms, stride, padding, dilation);
  TORCH_CHECK(coef.scalar_type() == x.scalar_type(), "coef must have the dtype of x");
  const at::Tensor w = coefficient_matrix(coef, g);
  const at::Tensor b = bias_or_undefined(bias, x, w.size(0));
  const at::Tensor xc = channels_last_x(x);
  at::Tensor out = empty_channels_last({g.N, w.size(0), g.OH, g.OW}, x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "acda_conv2d_forward", [&] {
    const scalar_t* a = atoms.data_ptr<scalar_t>();
    forward_kernel<scalar_t>(xc.data_ptr<scalar_t>(), [&] { return GivenAtoms<scalar_t>(g, a, nullptr); }, w,
                             b.defined() ? b.data_ptr<scalar_t>() : nullptr, out.data_ptr<scalar_t>(), g,
                             tile_or_default(tile, g, x.element_size(), kForwardTileBytes));
  });
  return out;
}

at::Tensor alpha_forward(const at::Tensor& x, const at::Tensor& alpha, const at::Tensor& bases,
                         const at::Tensor& coef, const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                         at::IntArrayRef padding, at::IntArrayRef dilation, int64_t tile) {
  const Geometry g = alpha_geometry(x, alpha, bases, stride, padding, dilation);
  TORCH_CHECK(coef.scalar_type() == x.scalar_type(), "coef must have the dtype of x");
  const at::Tensor w = coefficient_matrix(coef, g);
  const at::Tensor b = bias_or_undefined(bias, x, w.size(0));
  const at::Tensor xc = channels_last_x(x);
  const at::Tensor ac = pixel_major(alpha);
  const at::Tensor psi = bases.detach().reshape({bases.size(0), g.taps()}).contiguous();
  at::Tensor out = empty_channels_last({g.N, w.size(0), g.OH, g.OW}, x);
  const int64_t t = tile_or_default(tile, g, x.element_size(), kForwardTileBytes);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "acda_alpha_conv2d_forward", [&] {
    const scalar_t* a = ac.data_ptr<scalar_t>();
    forward_kernel<scalar_t>(xc.data_ptr<scalar_t>(), [&] { return AlphaAtoms<scalar_t>(g, a, psi, nullptr, t); }, w,
                             b.defined() ? b.data_ptr<scalar_t>() : nullptr, out.data_ptr<scalar_t>(), g, t);
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
    const scalar_t* a = atoms.data_ptr<scalar_t>();
    scalar_t* ga = needs_atoms ? b.grad_atoms.data_ptr<scalar_t>() : nullptr;
    backward_kernel<scalar_t>(b.grad_out.data_ptr<scalar_t>(), b.x.data_ptr<scalar_t>(),
                              [&] { return GivenAtoms<scalar_t>(g, a, ga); }, w,
                              needs_x ? b.grad_x.data_ptr<scalar_t>() : nullptr, needs_atoms,
                              needs_coef ? &gw : nullptr, g,
                              tile_or_default(tile, g, x.element_size(), kBackwardTileBytes));
  });
  return {b.grad_x, b.grad_atoms, coefficient_gradient(gw, needs_coef, g, O, w)};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> alpha_backward(const at::Tensor& grad_out, const at::Tensor& x,
                                                              const at::Tensor& alpha, const at::Tensor& bases,
                                                              const at::Tensor& coef, at::IntArrayRef stride,
                                                              at::IntArrayRef padding, at::IntArrayRef dilation,
                                                              bool needs_x, bool needs_alpha, bool needs_coef,
                                                              int64_t tile) {
  const Geometry g = alpha_geometry(x, alpha, bases, stride, padding, dilation);
  TORCH_CHECK(coef.scalar_type() == x.scalar_type(), "coef must have the dtype of x");
  const at::Tensor w = coefficient_matrix(coef, g);
  const int64_t O = w.size(0);
  const BackwardBuffers b = backward_buffers(g, grad_out, x, O, "(N, O, H', W')", needs_x, false);
  const at::Tensor ac = pixel_major(alpha);
  const at::Tensor psi = bases.detach().reshape({bases.size(0), g.taps()}).contiguous();
  at::Tensor galpha = needs_alpha ? at::empty(ac.sizes(), x.options()) : at::Tensor();  // pixel-major too
  at::Tensor gw;
  const int64_t t = tile_or_default(tile, g, x.element_size(), kBackwardTileBytes);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "acda_alpha_conv2d_backward", [&] {
    const scalar_t* a = ac.data_ptr<scalar_t>();
    scalar_t* ga = needs_alpha ? galpha.data_ptr<scalar_t>() : nullptr;
    backward_kernel<scalar_t>(b.grad_out.data_ptr<scalar_t>(), b.x.data_ptr<scalar_t>(),
                              [&] { return AlphaAtoms<scalar_t>(g, a, psi, ga, t); }, w,
                              needs_x ? b.grad_x.data_ptr<scalar_t>() : nullptr, needs_alpha,
                              needs_coef ? &gw : nullptr, g, t);
  });
  if (needs_alpha) galpha = galpha.permute({0, 3, 4, 1, 2});  // (N, m, B, H', W'), stored pixel-major
  return {b.grad_x, galpha, coefficient_gradient(gw, needs_coef, g, O, w)};
}

}  // namespace acda
