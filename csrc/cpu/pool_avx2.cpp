// Max-pooling loops compiled for avx2 (see pool_max_impl.hpp).
#define FASTNN_POOL_NS pool_avx2
#include "pool_max_impl.hpp"

namespace fastnn {
const MaxPoolLoops& max_pool_loops_avx2() { return pool_avx2::table(); }
}  // namespace fastnn
