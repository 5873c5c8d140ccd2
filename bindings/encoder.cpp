// Encoder bindings: convert and check arrays with the GIL held, release it for the core.
// The weights live in numpy arrays owned by likeable.SparseEncoder; the core only borrows them.
#include <pybind11/stl.h>

#include <limits>
#include <optional>

#include "encoder/bias.h"
#include "encoder/train.h"
#include "arrays.h"
#include "bindings.h"

namespace likeable::py_bind {
namespace {

namespace py = pybind11;

struct BoundWeights {
  FloatArray W_encT, b_enc, W_dec, b_dec;
  std::optional<FloatArray> threshold;
  EncoderWeights view;
};

// W_encT and W_dec are (M x d); either may be None where the call does not need it.
BoundWeights bind_weights(const py::handle& W_encT, const py::handle& b_enc, const py::handle& W_dec,
                          const py::handle& b_dec, const py::handle& threshold) {
  BoundWeights b;
  const py::handle shape_from = W_encT.is_none() ? W_dec : W_encT;
  FloatArray first = float_matrix(shape_from, W_encT.is_none() ? "W_dec" : "W_encT");
  const std::int64_t M = first.shape(0), d = first.shape(1);
  b.view.n_features = M;
  b.view.n_dims = d;
  if (!W_encT.is_none()) {
    b.W_encT = first;
    b.view.W_encT = b.W_encT.data();
    b.b_enc = float_vector(b_enc, "b_enc", M);
    b.view.b_enc = b.b_enc.data();
  }
  if (!W_dec.is_none()) {
    b.W_dec = W_encT.is_none() ? first : float_matrix(W_dec, "W_dec", d);
    if (b.W_dec.shape(0) != M) throw InvalidArgument("W_dec and W_enc disagree on n_features");
    b.view.W_dec = b.W_dec.data();
  }
  b.b_dec = float_vector(b_dec, "b_dec", d);
  b.view.b_dec = b.b_dec.data();
  if (!threshold.is_none()) {
    b.threshold = float_vector(threshold, "threshold", M);
    b.view.threshold = b.threshold->data();
  }
  return b;
}

EncodeOptions make_options(int k, bool is_signed, bool use_threshold, int threads,
                           std::int64_t tile_rows, std::int64_t tile_features) {
  EncodeOptions opt;
  opt.mode = use_threshold ? SelectMode::kThreshold : SelectMode::kTopK;
  opt.k = k;
  opt.is_signed = is_signed;
  opt.threads = threads;
  opt.tile_rows = tile_rows;
  opt.tile_features = tile_features;
  return opt;
}

}  // namespace

void bind_encoder(py::module_& m) {
  py::class_<ReconstructionStats> stats(m, "ReconstructionStats", "What encoder_reconstruction_stats measured.");
  stats.def_readonly("squared_error", &ReconstructionStats::squared_error, "sum of ||x - decode(encode(x))||^2")
      .def_readonly("squared_deviation", &ReconstructionStats::squared_deviation, "sum of ||x - mean||^2")
      .def_readonly("n_active", &ReconstructionStats::n_active, "active entries over all rows");
  view_property(stats, "fire_counts", &ReconstructionStats::fire_counts, "int64 per latent: rows it fired in");
  py::class_<EpochStats>(m, "EpochStats", "What SaeTrainer.run_epoch measured.")
      .def_readonly("loss", &EpochStats::loss, "mean reconstruction loss (normalized MSE, Matryoshka mean)")
      .def_readonly("aux_loss", &EpochStats::aux_loss, "mean aux-K loss")
      .def_readonly("n_batches", &EpochStats::n_batches)
      .def_readonly("dead_fraction", &EpochStats::dead_fraction, "latents silent all epoch");

  m.def(
      "encoder_encode",
      [](const py::handle& X, const py::handle& W_encT, const py::handle& b_enc, const py::handle& b_dec,
         const py::handle& threshold, int k, bool is_signed, bool use_threshold, int threads,
         std::int64_t tile_rows, std::int64_t tile_features) {
        BoundWeights w = bind_weights(W_encT, b_enc, py::none(), b_dec, threshold);
        FloatArray x = float_matrix(X, "X", w.view.n_dims);
        const EncodeOptions opt = make_options(k, is_signed, use_threshold, threads, tile_rows, tile_features);
        py::gil_scoped_release release;
        CsrMatrix codes = encode(w.view, x.data(), x.shape(0), opt);
        // Finite inputs and weights can still overflow float32 in x . W_enc: refuse, rather than
        // hand back inf/NaN codes that decode and SparseIndex would refuse later.
        const float largest = max_abs(codes.values.data(), static_cast<std::int64_t>(codes.values.size()));
        LIKEABLE_CHECK(largest <= std::numeric_limits<float>::max(), "encoding overflowed float32 (a pre-activation "
                       "x . W_enc + b_enc is beyond 3.4e38 or NaN): the inputs or the encoder weights are too large; "
                       "scale them down");
        return codes;
      },
      py::arg("X"), py::arg("W_encT"), py::arg("b_enc"), py::arg("b_dec"), py::arg("threshold"),
      py::arg("k"), py::arg("signed"), py::arg("use_threshold"), py::arg("threads") = 0,
      py::arg("tile_rows") = 0, py::arg("tile_features") = 0,
      "Sparse codes of X (a Csr); rows sorted by feature id.");

  m.def("encoder_folds_decoder_bias", &folds_decoder_bias, py::arg("n_features"), py::arg("input_bits") = 32,
        "Whether encode folds b_dec into the bias (the rule the CPU and GPU paths share).");
  m.def(
      "encoder_folded_bias",
      [](const py::handle& W_encT, const py::handle& b_enc, const py::handle& b_dec) {
        BoundWeights w = bind_weights(W_encT, b_enc, py::none(), b_dec, py::none());
        py::array_t<float> out(static_cast<py::ssize_t>(w.view.n_features));
        float* dst = out.mutable_data();
        {
          py::gil_scoped_release release;
          fold_decoder_bias(w.view, dst);
        }
        return out;
      },
      py::arg("W_encT"), py::arg("b_enc"), py::arg("b_dec"),
      "b_enc - b_dec @ W_enc accumulated in float64 (the fold the CPU and GPU paths share).");

  m.def(
      "encoder_decode",
      [](const py::handle& codes, const py::handle& W_dec, const py::handle& b_dec, int threads) {
        BoundWeights w = bind_weights(py::none(), py::none(), W_dec, b_dec, py::none());
        const CodesSnapshot csr = csr_from_codes(codes);
        py::array_t<float> out({static_cast<py::ssize_t>(csr.view.n_rows), static_cast<py::ssize_t>(w.view.n_dims)});
        float* dst = out.mutable_data();
        {
          py::gil_scoped_release release;
          decode(w.view, csr.view, dst, threads);
        }
        return out;
      },
      py::arg("codes"), py::arg("W_dec"), py::arg("b_dec"), py::arg("threads") = 0,
      "codes @ W_dec + b_dec as float32 (n_rows x d).");

  m.def(
      "encoder_reconstruction_stats",
      [](const py::handle& X, const py::handle& W_encT, const py::handle& b_enc, const py::handle& W_dec,
         const py::handle& b_dec, const py::handle& threshold, py::array_t<double, py::array::c_style | py::array::forcecast> mean,
         int k, bool is_signed, bool use_threshold, int threads) {
        BoundWeights w = bind_weights(W_encT, b_enc, W_dec, b_dec, threshold);
        FloatArray x = float_matrix(X, "X", w.view.n_dims);
        if (mean.ndim() != 1 || mean.shape(0) != w.view.n_dims) throw InvalidArgument("mean must have d entries");
        const EncodeOptions opt = make_options(k, is_signed, use_threshold, threads, 0, 0);
        py::gil_scoped_release release;
        return reconstruction_stats(w.view, x.data(), x.shape(0), mean.data(), opt);
      },
      py::arg("X"), py::arg("W_encT"), py::arg("b_enc"), py::arg("W_dec"), py::arg("b_dec"),
      py::arg("threshold"), py::arg("mean"), py::arg("k"), py::arg("signed"), py::arg("use_threshold"),
      py::arg("threads") = 0,
      "Squared reconstruction error, squared deviation from `mean`, and per-latent fire counts (ReconstructionStats).");

  py::class_<SaeTrainer>(m, "SaeTrainer", "Adam state and dead-latent counters of one SAE fit.")
      .def(py::init([](std::int64_t n_dims, std::int64_t n_features, int k, bool batch_topk, bool is_signed,
                       std::vector<std::int64_t> prefixes, int aux_k, float aux_coef,
                       std::int64_t dead_after_rows, float lr, int threads) {
             TrainConfig cfg;
             cfg.n_dims = n_dims;
             cfg.n_features = n_features;
             cfg.k = k;
             cfg.batch_topk = batch_topk;
             cfg.is_signed = is_signed;
             cfg.prefixes = std::move(prefixes);
             cfg.aux_k = aux_k;
             cfg.aux_coef = aux_coef;
             cfg.dead_after_rows = dead_after_rows;
             cfg.lr = lr;
             cfg.threads = threads;
             return new SaeTrainer(std::move(cfg));
           }),
           py::arg("n_dims"), py::arg("n_features"), py::arg("k"), py::arg("batch_topk"), py::arg("signed"),
           py::arg("prefixes"), py::arg("aux_k"), py::arg("aux_coef"), py::arg("dead_after_rows"),
           py::arg("lr"), py::arg("threads") = 0)
      .def(
          "run_epoch",
          [](SaeTrainer& self, const py::handle& W_encT, const py::handle& b_enc, const py::handle& W_dec,
             const py::handle& b_dec, const py::handle& threshold, const py::handle& X,
             const py::handle& order, std::int64_t batch_size, double norm) {
            const auto& cfg = self.config();
            const std::int64_t M = cfg.n_features, d = cfg.n_dims;
            MutableWeights w;
            w.W_encT = mutable_floats(W_encT, "W_encT", {M, d});
            w.b_enc = mutable_floats(b_enc, "b_enc", {M});
            w.W_dec = mutable_floats(W_dec, "W_dec", {M, d});
            w.b_dec = mutable_floats(b_dec, "b_dec", {d});
            if (!threshold.is_none()) w.threshold = mutable_floats(threshold, "threshold", {M});
            FloatArray x = float_matrix(X, "X", d);
            const std::vector<std::int64_t> rows = copied_ids<std::int64_t>(order, "order");
            py::gil_scoped_release release;
            return self.run_epoch(w, x.data(), x.shape(0), rows.data(), static_cast<std::int64_t>(rows.size()),
                                  batch_size, norm);
          },
          py::arg("W_encT"), py::arg("b_enc"), py::arg("W_dec"), py::arg("b_dec"), py::arg("threshold"),
          py::arg("X"), py::arg("order"), py::arg("batch_size"), py::arg("norm"),
          "One epoch over X[order] in batches; updates the weight arrays in place (EpochStats).");
}

}  // namespace likeable::py_bind
