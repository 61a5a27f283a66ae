// Layout conversion the layer's backward needs: a gradient (N, C, H, W) stored channels-last (what the fused
// kernels and the generator's convolutions produce) copied to the contiguous (channels-first) layout of an input
// that came in that way. ATen's generic copy walks the destination with strided reads; this transposes each
// image's (pixels x channels) matrix in register tiles (at::vec::transpose_mxn on 16 x 16 tiles).
#include "acda_ops.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>

namespace acda {

at::Tensor channels_first(const at::Tensor& t) {
  TORCH_CHECK(t.dim() == 4, "t must be 4-D (N, C, H, W)");
  TORCH_CHECK(t.device().is_cpu(), "channels_first runs on CPU tensors");
  if (t.is_contiguous() || !t.is_contiguous(at::MemoryFormat::ChannelsLast)) return t.contiguous();
  at::Tensor out = at::empty(t.sizes(), t.options());
  const int64_t C = t.size(1), P = t.size(2) * t.size(3);
  constexpr int64_t kBlock = 64;  // pixels per task: 64 x C source elements, C rows of 64 destination elements
  constexpr int64_t kTile = 16;
  const int64_t blocks = (P + kBlock - 1) / kBlock;
  AT_DISPATCH_ALL_TYPES_AND3(at::kHalf, at::kBFloat16, at::kBool, t.scalar_type(), "channels_first", [&] {
    const scalar_t* src = t.data_ptr<scalar_t>();
    scalar_t* dst = out.data_ptr<scalar_t>();
    at::parallel_for(0, t.size(0) * blocks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const int64_t n = task / blocks, p0 = (task % blocks) * kBlock, np = std::min(kBlock, P - p0);
        for (int64_t p = p0; p < p0 + np; p += kTile)  // tiles of at most 16 x 16 (what every specialisation takes)
          for (int64_t c = 0; c < C; c += kTile)
            at::vec::transpose_mxn<scalar_t>(src + (n * P + p) * C + c, C, dst + (n * C + c) * P + p, P,
                                             static_cast<int>(std::min(kTile, p0 + np - p)),
                                             static_cast<int>(std::min(kTile, C - c)));
      }
    });
  });
  return out;
}

}  // namespace acda
