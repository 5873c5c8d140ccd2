// How encode forms the pre-activation a = (x - b_dec) @ W_enc + b_enc. One rule and one fold
// for the CPU path (encode.cpp) and the GPU path (likeable._gpu, through the binding), so the
// two compute the same numbers the same way.
#pragma once

#include <cstdint>

#include "encoder/encoder.h"

namespace likeable {

// At or below this many features the decoder bias is folded into the encoder bias.
constexpr std::int64_t kFoldDecoderBiasMaxFeatures = 256;

// Whether to fold b_dec into the bias, a = x @ W_enc + (b_enc - b_dec @ W_enc), instead of
// centring each row (x - b_dec) before the product. Folding saves a pass over X, which is what
// a product with few features is bound by; with many features that pass is negligible and the
// exact centring is kept. Inputs narrower than float32 (the GPU's bfloat16/float16) always fold:
// centring would round x - b_dec to the narrow type.
inline bool folds_decoder_bias(std::int64_t n_features, int input_bits = 32) {
  return n_features <= kFoldDecoderBiasMaxFeatures || input_bits < 32;
}

// out[j] = b_enc[j] - b_dec . W_enc[:, j], accumulated in float64 (out: n_features floats).
inline void fold_decoder_bias(const EncoderWeights& w, float* out) {
  for (std::int64_t j = 0; j < w.n_features; ++j) {
    double acc = w.b_enc[j];
    const float* we = w.W_encT + j * w.n_dims;
    for (std::int64_t c = 0; c < w.n_dims; ++c) acc -= static_cast<double>(we[c]) * w.b_dec[c];
    out[j] = static_cast<float>(acc);
  }
}

}  // namespace likeable
