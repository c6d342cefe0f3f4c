/* Linked instead of kernels/ in builds without CUDA (make without CUDA=1), so that
 * --device cuda fails with a clear message rather than at link time. */
#include "ops/ops_backend.h"

const OpsBackend *ops_backend_cuda(void) { return NULL; }
