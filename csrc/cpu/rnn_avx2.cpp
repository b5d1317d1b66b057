// Recurrent gate loops compiled for avx2 (see rnn_cells_impl.hpp).
#define FASTNN_RNN_NS rnn_avx2
#include "rnn_cells_impl.hpp"

namespace fastnn {
const RnnCells& rnn_cells_avx2() { return rnn_avx2::table(); }
}  // namespace fastnn
