// Max-pooling loops compiled for avx512 (see pool_max_impl.hpp).
#define FASTNN_POOL_NS pool_avx512
#include "pool_max_impl.hpp"

namespace fastnn {
const MaxPoolLoops& max_pool_loops_avx512() { return pool_avx512::table(); }
}  // namespace fastnn
