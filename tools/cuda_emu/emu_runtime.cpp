// The CUDA runtime calls kvsieve makes, on host memory (kernels run synchronously at launch).
#include "emu.hpp"
#include <cstdlib>
struct CUgraph_st { std::vector<std::function<void()>> ops; };
struct CUgraphExec_st { std::vector<std::function<void()>> ops; };
namespace {
bool capturing() { return emu::capture().active; }
}
extern "C" {
cudaError_t cudaMalloc(void** p, size_t n) {
  if (capturing()) return cudaErrorStreamCaptureUnsupported;
  *p = std::aligned_alloc(256, (n + 255) / 256 * 256);
  if (*p == nullptr) return cudaErrorMemoryAllocation;
  std::memset(*p, 0xff, n); // uninitialised device memory
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) { if (capturing()) return cudaErrorStreamCaptureUnsupported; std::free(p); return cudaSuccess; }
cudaError_t cudaMallocAsync(void** p, size_t n, cudaStream_t) { return cudaMalloc(p, n); }
cudaError_t cudaFreeAsync(void* p, cudaStream_t) { return cudaFree(p); }
cudaError_t cudaHostAlloc(void** p, size_t n, unsigned int) { return cudaMalloc(p, n); }
cudaError_t cudaHostGetDevicePointer(void** d, void* h, unsigned int) { *d = h; return cudaSuccess; }
cudaError_t cudaFreeHost(void* p) { std::free(p); return cudaSuccess; }
cudaError_t cudaMemcpy(void* d, const void* s, size_t n, cudaMemcpyKind) { if (capturing()) return cudaErrorStreamCaptureUnsupported; if (n > 0) std::memmove(d, s, n); return cudaSuccess; }
cudaError_t cudaMemcpyAsync(void* d, const void* s, size_t n, cudaMemcpyKind, cudaStream_t) { if (n > 0) std::memmove(d, s, n); return cudaSuccess; }
cudaError_t cudaMemset(void* d, int v, size_t n) { std::memset(d, v, n); return cudaSuccess; }
cudaError_t cudaMemsetAsync(void* d, int v, size_t n, cudaStream_t) { std::memset(d, v, n); return cudaSuccess; }
cudaError_t cudaDeviceSynchronize() { return capturing() ? cudaErrorStreamCaptureUnsupported : cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return capturing() ? cudaErrorStreamCaptureUnsupported : cudaSuccess; }
cudaError_t cudaStreamCreate(cudaStream_t* s) { *s = reinterpret_cast<cudaStream_t>(new char); return cudaSuccess; }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned /*flags: every emulated stream is ordered only with itself*/) { return cudaStreamCreate(s); }
cudaError_t cudaStreamDestroy(cudaStream_t s) { delete reinterpret_cast<char*>(s); return cudaSuccess; }
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode) {
  if (s == nullptr || capturing()) return cudaErrorStreamCaptureUnsupported; // the legacy stream cannot capture
  emu::capture() = {true, s, {}};
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* g) {
  if (!capturing() || s != emu::capture().stream) return cudaErrorIllegalState;
  *g = new CUgraph_st{std::move(emu::capture().ops)};
  emu::capture() = {};
  return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus* st) {
  *st = capturing() && s == emu::capture().stream ? cudaStreamCaptureStatusActive : cudaStreamCaptureStatusNone;
  return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* e, cudaGraph_t g, unsigned long long) { *e = new CUgraphExec_st{g->ops}; return cudaSuccess; }
cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t) {
  if (capturing()) return cudaErrorStreamCaptureUnsupported;
  for (auto& op : e->ops) op();
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e) { delete e; return cudaSuccess; }
cudaError_t cudaGraphDestroy(cudaGraph_t g) { delete g; return cudaSuccess; }
cudaError_t cudaGetLastError() { auto e = emu::last_error(); emu::last_error() = cudaSuccess; return e; }
cudaError_t cudaPeekAtLastError() { return emu::last_error(); }
const char* cudaGetErrorString(cudaError_t e) { return e == cudaSuccess ? "no error" : "emulated error"; }
const char* cudaGetErrorName(cudaError_t e) { return e == cudaSuccess ? "cudaSuccess" : "cudaErrorEmulated"; }
cudaError_t cudaGetDeviceCount(int* n) { *n = 1; return cudaSuccess; }
// One device, and streams that run at launch: events order nothing that is not already ordered.
cudaError_t cudaGetDevice(int* d) { *d = 0; return cudaSuccess; }
// A small device: 8 multiprocessors of 2 resident blocks each, so that a 16-block wave makes the
// balanced decode plan split tests' heads into chunks of several tiles.
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr a, int d) {
  if (d != 0) return cudaErrorInvalidDevice;
  *v = a == cudaDevAttrMultiProcessorCount ? 8 : 0;
  return cudaSuccess;
}
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* n, const void*, int, size_t) { *n = 2; return cudaSuccess; }
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidDevice; }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned int) { *e = reinterpret_cast<cudaEvent_t>(new char); return cudaSuccess; }
cudaError_t cudaEventDestroy(cudaEvent_t e) { delete reinterpret_cast<char*>(e); return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned int) { return cudaSuccess; }
cudaError_t cudaFuncSetAttribute(const void* f, cudaFuncAttribute a, int v) {
  if (a == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    if (v > 232448) return cudaErrorInvalidValue;
    emu::max_dyn_smem()[f] = v;
  }
  return cudaSuccess;
}
}
