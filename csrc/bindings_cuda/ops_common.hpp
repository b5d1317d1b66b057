// Shared argument helpers of the CUDA op bindings (the rules and messages of the
// CPU bindings in csrc/bindings/, for GPU arrays).
#pragma once
#include <string>
#include <vector>

#include "common.hpp"
#include "device_array.hpp"

namespace fastnn {
namespace bind_cuda {

using fastnn::bind::Pair;
using fastnn::bind::parse_pair;
using fastnn::bind::parse_pair_nonneg;
using fastnn::bind::shape_str;
using fastnn::bind::type_error;
using fastnn::bind::value_error;

inline DeviceArray new_f32(const std::vector<i64>& shape) { return device_empty(shape, DType::float32); }

inline void require_rank(const DeviceArray& a, std::size_t rank, const char* name, const char* layout) {
  if (a.shape.size() != rank)
    value_error(std::string(name) + ": expected a " + std::to_string(rank) + "-D array " + layout +
                ", got shape " + shape_str(a.shape) + " (" + std::to_string(a.shape.size()) + "-D)");
}

inline void require_shape(const DeviceArray& a, const std::vector<i64>& shape, const char* name) {
  if (a.shape != shape)
    value_error(std::string(name) + ": expected shape " + shape_str(shape) + ", got " + shape_str(a.shape));
}

// An axis in [-ndim, ndim) -> [0, ndim).
int parse_axis(py::handle obj, int ndim, const char* name);
// A non-negative integer up to 2**64 - 1.
std::uint64_t parse_u64(py::handle obj, const char* name);
// The dropout rate, 0 <= rate < 1.
double parse_rate(py::handle obj);

}  // namespace bind_cuda
}  // namespace fastnn
