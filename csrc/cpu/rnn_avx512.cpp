// Recurrent gate loops compiled for avx512 (see rnn_cells_impl.hpp).
#define FASTNN_RNN_NS rnn_avx512
#include "rnn_cells_impl.hpp"

namespace fastnn {
const RnnCells& rnn_cells_avx512() { return rnn_avx512::table(); }
}  // namespace fastnn
