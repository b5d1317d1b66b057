// Shared argument helpers of the CUDA op bindings: the rules and messages of the
// CPU bindings (csrc/bindings/common.hpp, op_rules.hpp, compiled into this module
// too) brought into bind_cuda, plus their forms for GPU arrays.
#pragma once
#include <string>
#include <vector>

#include "common.hpp"
#include "device_array.hpp"
#include "op_rules.hpp"

namespace fastnn {
namespace bind_cuda {

using fastnn::bind::Pair;
using fastnn::bind::parse_pair;
using fastnn::bind::parse_pair_nonneg;
using fastnn::bind::shape_str;
using fastnn::bind::type_error;
using fastnn::bind::value_error;
// the shared rules of op_rules.hpp
using fastnn::bind::batch_norm_cache_flags;
using fastnn::bind::BatchNormCacheFlags;
using fastnn::bind::channel_rows;
using fastnn::bind::ChannelRows;
using fastnn::bind::check_adadelta_args;
using fastnn::bind::check_adagrad_args;
using fastnn::bind::check_adam_args;
using fastnn::bind::check_batch_norm_args;
using fastnn::bind::check_clipvalue;
using fastnn::bind::check_dense_kernel;
using fastnn::bind::check_no_aliasing;
using fastnn::bind::check_rmsprop_args;
using fastnn::bind::check_sgd_args;
using fastnn::bind::conv2d_geometry;
using fastnn::bind::MemRange;
using fastnn::bind::overlaps;
using fastnn::bind::parse_axis;
using fastnn::bind::parse_rate;
using fastnn::bind::parse_u64;
using fastnn::bind::pool2d_geometry;
using fastnn::bind::require_nhwc_sizes;
using fastnn::bind::require_same_shape;
using fastnn::bind::row_view;
using fastnn::bind::RowView;

inline DeviceArray new_f32(const std::vector<i64>& shape) { return device_empty(shape, DType::float32); }

inline void require_rank(const DeviceArray& a, std::size_t rank, const char* name, const char* layout) {
  fastnn::bind::require_rank(a.shape, rank, name, layout);
}

inline void require_shape(const DeviceArray& a, const std::vector<i64>& shape, const char* name) {
  fastnn::bind::require_shape(a.shape, shape, name);
}

inline MemRange memory_of(const DeviceArray& a, const char* name) {
  return {reinterpret_cast<std::uintptr_t>(a.data), static_cast<std::uintptr_t>(a.nbytes()), name};
}

}  // namespace bind_cuda
}  // namespace fastnn
