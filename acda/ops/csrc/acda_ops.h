// Entry points of the native CPU extension (bound in bindings.cpp).
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <tuple>

namespace acda {

// Atom convolution (paper Eq. 5): (N, C, H, W) x (N, m, kh, kw, H', W') -> (N, C*m, H', W'), channels-last.
at::Tensor atom_forward(const at::Tensor& x, const at::Tensor& atoms, at::IntArrayRef stride,
                        at::IntArrayRef padding, at::IntArrayRef dilation);
// (grad_x channels-last | undefined, grad_atoms contiguous | undefined).
std::tuple<at::Tensor, at::Tensor> atom_backward(const at::Tensor& grad_out, const at::Tensor& x,
                                                 const at::Tensor& atoms, at::IntArrayRef stride,
                                                 at::IntArrayRef padding, at::IntArrayRef dilation, bool needs_x,
                                                 bool needs_atoms);

// Two-layer ACDA (Eq. 5 + Eq. 6) with coef (O, C, m): (N, O, H', W'), channels-last. tile: pixels per
// GEMM (0: default).
at::Tensor acda_forward(const at::Tensor& x, const at::Tensor& atoms, const at::Tensor& coef,
                        const std::optional<at::Tensor>& bias, at::IntArrayRef stride, at::IntArrayRef padding,
                        at::IntArrayRef dilation, int64_t tile);
// (grad_x channels-last, grad_atoms, grad_coef); undefined where not requested. No bias gradient
// (it is grad_out summed over N, H', W').
std::tuple<at::Tensor, at::Tensor, at::Tensor> acda_backward(const at::Tensor& grad_out, const at::Tensor& x,
                                                             const at::Tensor& atoms, const at::Tensor& coef,
                                                             at::IntArrayRef stride, at::IntArrayRef padding,
                                                             at::IntArrayRef dilation, bool needs_x,
                                                             bool needs_atoms, bool needs_coef, int64_t tile);

// The alpha path of the fused op: atoms = alpha (N, m, B, H', W') . bases (B, kh, kw), formed per tile of pixels
// in cache, never stored; same output as acda_forward on those atoms.
at::Tensor alpha_forward(const at::Tensor& x, const at::Tensor& alpha, const at::Tensor& bases,
                         const at::Tensor& coef, const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                         at::IntArrayRef padding, at::IntArrayRef dilation, int64_t tile);
// (grad_x channels-last, grad_alpha stored pixel-major (N, H', W', m, B), grad_coef); undefined where not
// requested. No grad of bases.
std::tuple<at::Tensor, at::Tensor, at::Tensor> alpha_backward(const at::Tensor& grad_out, const at::Tensor& x,
                                                              const at::Tensor& alpha, const at::Tensor& bases,
                                                              const at::Tensor& coef, at::IntArrayRef stride,
                                                              at::IntArrayRef padding, at::IntArrayRef dilation,
                                                              bool needs_x, bool needs_alpha, bool needs_coef,
                                                              int64_t tile);

// t (N, C, H, W) in the contiguous (channels-first) layout: a blocked transpose when t is stored channels-last,
// else t.contiguous().
at::Tensor channels_first(const at::Tensor& t);

// Which library multiplies the fused ops' fp32 tiles: "onednn" (default, where torch has it) or "mkl" (ATen's mm).
// Returns the previous choice.
std::string set_tile_gemm(const std::string& name);

}  // namespace acda
