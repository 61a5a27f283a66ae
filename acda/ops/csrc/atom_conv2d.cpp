// Native CPU kernel of the atom convolution alone (paper §3.2, Eq. 5) and its gradients:
// out (N, C*m, H', W') channel c*m + b, returned channels-last, i.e. (N, H', W', C, m) in memory.
// The per-pixel work is atom_kernels.h's; this file only moves each pixel's (m, C) block to and from
// the op's (C, m) channel order. No unfolded tensor is built.
#include "acda_ops.h"
#include "atom_kernels.h"

namespace acda {
namespace {

template <typename T>
void forward_kernel(const T* x, const T* atoms, T* out, const Geometry& g) {
  const int64_t cm = g.C * g.m;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(1, g.OW * cm * g.taps()));
  at::parallel_for(0, g.N * g.OH, grain, [&](int64_t begin, int64_t end) {
    Taps s(g);
    std::vector<T> z(cm);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t n = r / g.OH, i = r % g.OH;
      for (int64_t j = 0; j < g.OW; ++j) {
        forward_pixel(g, x, atoms + g.atom_pixel(n, i, j), g.atom_strides(), n, i, j, z.data(), s);
        T* o = out + (r * g.OW + j) * cm;
        for (int64_t b = 0; b < g.m; ++b)
          for (int64_t c = 0; c < g.C; ++c) o[c * g.m + b] = z[b * g.C + c];
      }
    }
  });
}

template <typename T>
void backward_kernel(const T* go, const T* x, const T* atoms, T* gx, T* ga, const Geometry& g) {
  const int64_t cm = g.C * g.m;
  const int64_t gat = g.OH * g.OW, gab = g.taps() * gat;  // grad atoms: strides of a tap and of an atom
  for_each_stripe(g, [&](int64_t, const std::vector<Rows>& stripes) {
    Taps s(g);
    std::vector<T> gz(cm);
    for (const Rows& r : stripes) {
      for (int64_t i = r.i0; i < r.i1; ++i) {
        for (int64_t j = 0; j < g.OW; ++j) {
          const T* src = go + ((r.n * g.OH + i) * g.OW + j) * cm;
          for (int64_t c = 0; c < g.C; ++c)
            for (int64_t b = 0; b < g.m; ++b) gz[b * g.C + c] = src[c * g.m + b];
          if (ga) grad_atoms_pixel(g, x, gz.data(), r.n, i, j, ga + r.n * g.m * gab + i * g.OW + j, gat, gab, s);
          if (gx) grad_x_pixel(g, gz.data(), atoms + g.atom_pixel(r.n, i, j), g.atom_strides(), r.n, i, j, gx, s);
        }
      }
    }
  });
}

}  // namespace

at::Tensor atom_forward(const at::Tensor& x, const at::Tensor& atoms, at::IntArrayRef stride,
                        at::IntArrayRef padding, at::IntArrayRef dilation) {
  const Geometry g = make_geometry(x, atoms, stride, padding, dilation);
  const at::Tensor xc = channels_last_x(x);
  at::Tensor out = empty_channels_last({g.N, g.C * g.m, g.OH, g.OW}, x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "acda_atom_conv2d_forward", [&] {
    forward_kernel<scalar_t>(xc.data_ptr<scalar_t>(), atoms.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), g);
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> atom_backward(const at::Tensor& grad_out, const at::Tensor& x,
                                                 const at::Tensor& atoms, at::IntArrayRef stride,
                                                 at::IntArrayRef padding, at::IntArrayRef dilation, bool needs_x,
                                                 bool needs_atoms) {
  const Geometry g = make_geometry(x, atoms, stride, padding, dilation);
  const BackwardBuffers b = backward_buffers(g, grad_out, x, g.C * g.m, "(N, C*m, H', W')", needs_x, needs_atoms);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "acda_atom_conv2d_backward", [&] {
    backward_kernel<scalar_t>(b.grad_out.data_ptr<scalar_t>(), b.x.data_ptr<scalar_t>(), atoms.data_ptr<scalar_t>(),
                              needs_x ? b.grad_x.data_ptr<scalar_t>() : nullptr,
                              needs_atoms ? b.grad_atoms.data_ptr<scalar_t>() : nullptr, g);
  });
  return {b.grad_x, b.grad_atoms};
}

}  // namespace acda
