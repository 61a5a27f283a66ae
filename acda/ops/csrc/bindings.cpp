// Python bindings of the native CPU extension (compiled on first use by acda/ops/native.py).
#include "acda_ops.h"

#include <torch/python.h>

#include <ATen/cpu/vec/vec.h>

#include <string>

namespace {

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
  m.def("forward", &acda::atom_forward, "atom convolution forward (paper Eq. 5)");
  m.def("backward", &acda::atom_backward, "atom convolution backward: (grad_x, grad_atoms)");
  m.def("acda_forward", &acda::acda_forward, "fused two-layer ACDA forward (paper Eq. 5 + 6)");
  m.def("acda_backward", &acda::acda_backward, "fused two-layer ACDA backward: (grad_x, grad_atoms, grad_coef)");
  m.def("alpha_forward", &acda::alpha_forward, "fused two-layer ACDA forward from alpha and bases (atoms in cache)");
  m.def("alpha_backward", &acda::alpha_backward, "fused ACDA backward from alpha: (grad_x, grad_alpha, grad_coef)");
  m.def("channels_first", &acda::channels_first, "(N, C, H, W) stored channels-last -> contiguous (blocked transpose)");
  m.def("set_tile_gemm", &acda::set_tile_gemm, "fp32 tile GEMMs of the fused ops: onednn | mkl; returns the previous");
  m.def("capability", &capability, "at::vec instruction set compiled in");
  m.def("vector_width", [] { return static_cast<int64_t>(at::vec::Vectorized<float>::size()); });
}
