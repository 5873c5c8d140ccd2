// Bindings for preference models and scoring: convert and check arrays, release the GIL, call
// the core, wrap the results. User-facing validation (labels, ids, NaN) lives in preferences.py.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "preferences/logistic.h"
#include "preferences/user_offsets.h"
#include "preferences/scoring.h"
#include "arrays.h"
#include "bindings.h"

namespace likeable::py_bind {
namespace {

// fit_user_offsets' result: the offsets matrix (allocated here, filled by the core).
struct UserOffsets {
  py::array_t<float> offsets;
  std::int64_t n_not_converged = 0;
};

// Optional dense controls: None -> zero columns.
struct Controls {
  FloatArray array;
  const float* data = nullptr;
  std::int64_t cols = 0;
};
Controls controls_from(const py::object& obj, std::int64_t n_rows) {
  Controls out;
  if (obj.is_none()) return out;
  out.array = float_matrix(obj, "controls");
  LIKEABLE_CHECK(out.array.shape(0) == n_rows, "controls has ", out.array.shape(0), " rows, expected ", n_rows);
  out.cols = out.array.shape(1);
  out.data = out.array.data();
  return out;
}

scoring::UserWeights user_weights(const FloatArray& population, const FloatArray& offsets) {
  LIKEABLE_CHECK(offsets.shape(1) == population.shape(0), "offsets have ", offsets.shape(1),
                 " columns, population has ", population.shape(0));
  return scoring::UserWeights{population.data(), offsets.data(), offsets.shape(0), population.shape(0)};
}

}  // namespace

void bind_preferences(py::module_& m) {
  py::class_<prefs::LogisticFit> fit(m, "LogisticFit", "A fit_logistic result (also its warm start).");
  fit.def(py::init([](const std::vector<double>& coef, const std::vector<double>& control_coef, double intercept) {
            prefs::LogisticFit start;
            start.coef = coef;
            start.control_coef = control_coef;
            start.intercept = intercept;
            return start;
          }),
          py::arg("coef"), py::arg("control_coef"), py::arg("intercept"),
          "A warm start from known coefficients (copied).");
  view_property(fit, "coef", &prefs::LogisticFit::coef, "float64 per feature");
  view_property(fit, "control_coef", &prefs::LogisticFit::control_coef, "float64 per control");
  fit.def_readonly("intercept", &prefs::LogisticFit::intercept)
      .def_readonly("n_iter", &prefs::LogisticFit::n_iter, "outer (Newton) iterations run")
      .def_readonly("converged", &prefs::LogisticFit::converged);
  py::class_<UserOffsets>(m, "UserOffsets", "A fit_user_offsets result.")
      .def_readonly("offsets", &UserOffsets::offsets, "float32, n_users x n_features")
      .def_readonly("n_not_converged", &UserOffsets::n_not_converged, "users whose Newton solve did not converge");
  py::class_<prefs::FeatureEffects> fx(m, "FeatureEffects", "A feature_effects result: per feature.");
  view_property(fx, "coef", &prefs::FeatureEffects::coef, "float64");
  view_property(fx, "std_error", &prefs::FeatureEffects::std_error, "float64 (NaN where the feature is never active)");
  view_property(fx, "z", &prefs::FeatureEffects::z, "float64");
  view_property(fx, "p_value", &prefs::FeatureEffects::p_value, "float64, two-sided");
  view_property(fx, "n_active", &prefs::FeatureEffects::n_active, "int64 rows where the feature is non-zero");

  m.def(
      "fit_logistic",
      [](const py::handle& codes, const py::object& controls_obj, const py::handle& labels_obj,
         const py::object& offset_obj, double l2, double l1, bool fit_intercept, int max_iter, double tol,
         const py::object& init_obj) {
        auto csr = csr_from_codes(codes);
        auto ctl = controls_from(controls_obj, csr.view.n_rows);
        auto labels = float_vector(labels_obj, "labels", csr.view.n_rows);
        FloatArray offset;
        if (!offset_obj.is_none()) offset = float_vector(offset_obj, "row_offset", csr.view.n_rows);
        const bool warm = !init_obj.is_none();
        prefs::LogisticFit init;
        if (warm) init = init_obj.cast<prefs::LogisticFit>();  // a copy: the solve runs without the GIL
        prefs::LogisticOptions opts{l2, l1, fit_intercept, max_iter, tol};
        py::gil_scoped_release release;
        return prefs::fit_logistic(csr.view, ctl.data, ctl.cols, labels.data(),
                                   offset_obj.is_none() ? nullptr : offset.data(), opts, warm ? &init : nullptr);
      },
      py::arg("codes"), py::arg("controls"), py::arg("labels"), py::arg("row_offset"), py::arg("l2"),
      py::arg("l1"), py::arg("fit_intercept"), py::arg("max_iter"), py::arg("tol"), py::arg("init") = py::none(),
      "Regularised logistic fit (IRLS + coordinate descent), warm-started from `init` (a LogisticFit). A LogisticFit.");

  m.def(
      "fit_user_offsets",
      [](const py::handle& codes, const py::handle& base_obj, const py::handle& labels_obj,
         const py::handle& row_ptr_obj, const py::handle& rows_obj, double shrinkage, int max_iter, double tol,
         int threads) {
        auto csr = csr_from_codes(codes);
        auto base = float_vector(base_obj, "base_logit", csr.view.n_rows);
        auto labels = float_vector(labels_obj, "labels", csr.view.n_rows);
        const std::vector<std::int64_t> row_ptr = copied_ids<std::int64_t>(row_ptr_obj, "row_ptr");
        const std::vector<std::int64_t> rows = copied_ids<std::int64_t>(rows_obj, "rows");
        LIKEABLE_CHECK(row_ptr.size() >= 1, "row_ptr must have n_users + 1 entries");
        const std::int64_t n_users = static_cast<std::int64_t>(row_ptr.size()) - 1;
        LIKEABLE_CHECK(row_ptr[n_users] == static_cast<std::int64_t>(rows.size()), "row_ptr[-1] must equal len(rows)");
        py::array_t<float> offsets({n_users, csr.view.n_cols});
        float* out = offsets.mutable_data();
        prefs::UserFitOptions opts{shrinkage, max_iter, tol, threads};
        UserOffsets result{offsets, 0};
        {
          py::gil_scoped_release release;
          result.n_not_converged = prefs::fit_user_offsets(csr.view, base.data(), labels.data(), row_ptr.data(),
                                                           rows.data(), n_users, out, opts);
        }
        return result;
      },
      py::arg("codes"), py::arg("base_logit"), py::arg("labels"), py::arg("row_ptr"), py::arg("rows"),
      py::arg("shrinkage"), py::arg("max_iter"), py::arg("tol"), py::arg("threads") = 0,
      "Batched per-user offsets (Newton per user). A UserOffsets.");

  m.def(
      "feature_effects",
      [](const py::handle& codes, const py::object& controls_obj, const py::handle& labels_obj, double l2,
         bool fit_intercept, int max_iter, double tol, int threads) {
        auto csr = csr_from_codes(codes);
        auto ctl = controls_from(controls_obj, csr.view.n_rows);
        auto labels = float_vector(labels_obj, "labels", csr.view.n_rows);
        py::gil_scoped_release release;
        return prefs::feature_effects(csr.view, ctl.data, ctl.cols, labels.data(), l2, fit_intercept, max_iter, tol,
                                      threads);
      },
      py::arg("codes"), py::arg("controls"), py::arg("labels"), py::arg("l2"), py::arg("fit_intercept"),
      py::arg("max_iter"), py::arg("tol"), py::arg("threads") = 0,
      "Per-feature logistic (feature + controls) with Hessian standard errors and two-sided p-values (FeatureEffects).");

  m.def(
      "score_users_items",
      [](const py::handle& pop_obj, const py::handle& off_obj, const py::handle& rows_obj, const py::handle& items,
         int threads) {
        auto population = float_vector(pop_obj, "population");
        auto offsets = float_matrix(off_obj, "offsets");
        const std::vector<std::int64_t> rows = copied_ids<std::int64_t>(rows_obj, "user_rows");
        auto csr = csr_from_codes(items);
        auto w = user_weights(population, offsets);
        const std::int64_t n_users = static_cast<std::int64_t>(rows.size());
        py::array_t<float> out({n_users, csr.view.n_rows});
        float* dst = out.mutable_data();
        {
          py::gil_scoped_release release;
          scoring::score_users_items(w, rows.data(), n_users, csr.view, dst, threads);
        }
        return out;
      },
      py::arg("population"), py::arg("offsets"), py::arg("user_rows"), py::arg("items"), py::arg("threads") = 0,
      "Utilities (n_users x n_items) of sparse items under population + offsets[user_rows] (-1: population).");

  m.def(
      "top_items",
      [](const py::handle& pop_obj, const py::handle& off_obj, const py::handle& rows_obj, const py::handle& items,
         std::int64_t k, int threads) {
        auto population = float_vector(pop_obj, "population");
        auto offsets = float_matrix(off_obj, "offsets");
        const std::vector<std::int64_t> rows = copied_ids<std::int64_t>(rows_obj, "user_rows");
        auto csr = csr_from_codes(items);
        LIKEABLE_CHECK(k >= 1, "k must be >= 1, got ", k);
        auto w = user_weights(population, offsets);
        const std::int64_t n_users = static_cast<std::int64_t>(rows.size());
        py::array_t<std::int64_t> ids({n_users, k});
        py::array_t<float> scores({n_users, k});
        std::int64_t* ids_ptr = ids.mutable_data();
        float* scores_ptr = scores.mutable_data();
        {
          py::gil_scoped_release release;
          scoring::top_items(w, rows.data(), n_users, csr.view, k, ids_ptr, scores_ptr, threads);
        }
        return py::make_tuple(ids, scores);
      },
      py::arg("population"), py::arg("offsets"), py::arg("user_rows"), py::arg("items"), py::arg("k"),
      py::arg("threads") = 0,
      "Each user's k best items under population + offsets[user_rows]: (ids, scores), n_users x k.");

  m.def(
      "predict_pairs",
      [](const py::handle& pop_obj, const py::handle& off_obj, const py::handle& rows_obj, const py::handle& pairs,
         const py::object& base_obj, int threads, bool logits) {
        auto population = float_vector(pop_obj, "population");
        auto offsets = float_matrix(off_obj, "offsets");
        const std::vector<std::int64_t> rows = copied_ids<std::int64_t>(rows_obj, "user_rows");
        auto csr = csr_from_codes(pairs);
        LIKEABLE_CHECK(static_cast<std::int64_t>(rows.size()) == csr.view.n_rows, "user_rows has ", rows.size(),
                       " entries for ",
                       csr.view.n_rows, " pairs");
        FloatArray base;
        if (!base_obj.is_none()) base = float_vector(base_obj, "base_logit", csr.view.n_rows);
        auto w = user_weights(population, offsets);
        py::array_t<float> out(csr.view.n_rows);
        float* dst = out.mutable_data();
        const float* base_ptr = base_obj.is_none() ? nullptr : base.data();
        {
          py::gil_scoped_release release;
          scoring::predict_pairs(w, rows.data(), csr.view, base_ptr, dst, threads, logits);
        }
        return out;
      },
      py::arg("population"), py::arg("offsets"), py::arg("user_rows"), py::arg("pairs"),
      py::arg("base_logit") = py::none(), py::arg("threads") = 0, py::arg("logits") = false,
      "P(first response preferred) per (pair, user) row (its logit with logits=True).");

  m.def(
      "gather_weights",
      [](const py::handle& pop_obj, const py::handle& off_obj, const py::handle& rows_obj, int threads) {
        auto population = float_vector(pop_obj, "population");
        auto offsets = float_matrix(off_obj, "offsets");
        const std::vector<std::int64_t> rows = copied_ids<std::int64_t>(rows_obj, "user_rows");
        auto w = user_weights(population, offsets);
        const std::int64_t n_users = static_cast<std::int64_t>(rows.size());
        py::array_t<float> out({n_users, w.n_features});
        float* dst = out.mutable_data();
        {
          py::gil_scoped_release release;
          scoring::gather_weights(w, rows.data(), n_users, dst, threads);
        }
        return out;
      },
      py::arg("population"), py::arg("offsets"), py::arg("user_rows"), py::arg("threads") = 0,
      "Dense weights population + offsets[user_rows] (n_users x n_features).");
}

}  // namespace likeable::py_bind
