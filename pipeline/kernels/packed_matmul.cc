// x[M, K] @ W for float32, with W packed as [N / BLOCK][K][BLOCK]: each block of BLOCK output
// columns is one contiguous run of memory. MindSpore "aot" Custom ops (pipeline/kernels/
// __init__.py compiles this file once per machine with -march=native):
//   PackedMatMul(x, W)          x @ W
//   NormMatMul(x, eps, W)       rmsnorm(x) @ W      (the norm's weight is folded into W)
//   MatMulAdd(x, W, r)          r + x @ W           (the residual connection)
//   NormGateUp(x, eps, W13)     silu(rmsnorm(x) @ W1) * (rmsnorm(x) @ W3), W13 = [W1 | W3]
// The fused forms save MindSpore's per-kernel launch cost (~15 us each, ~16 kernels a layer).
//
// Why our own: decoding multiplies a few rows (the batch) by every weight of the model, so it
// is bound by reading the weights. MindSpore 2.9's CPU MatMul reads a [K, N] weight at 8-17
// GB/s for 1-8 rows; streaming contiguous blocks reaches 15-33 GB/s on the same machine
// (bench/bench_decode.py; --kernel mindspore runs the other). Each thread takes whole column
// blocks; within a block every group of up to 8 rows reuses the block while it is in cache,
// so W is read once whatever M is.
#include <cstdint>
#include <cmath>
#include <cstring>
#include <vector>

constexpr int BLOCK = 32;   // pipeline.kernels.BLOCK must agree

template <int M>
static void block_acc(const float* __restrict x, const float* __restrict w, int K,
                      float (*__restrict acc)[BLOCK]) {
  for (int m = 0; m < M; ++m)
    for (int j = 0; j < BLOCK; ++j) acc[m][j] = 0.f;
  for (int k = 0; k < K; ++k) {
    const float* wk = w + (int64_t)k * BLOCK;
    for (int m = 0; m < M; ++m) {
      const float a = x[(int64_t)m * K + k];
      for (int j = 0; j < BLOCK; ++j) acc[m][j] += a * wk[j];
    }
  }
}

static void acc_rows(int m, const float* x, const float* w, int K, float (*acc)[BLOCK]) {
  switch (m) {
    case 1: block_acc<1>(x, w, K, acc); break;
    case 2: block_acc<2>(x, w, K, acc); break;
    case 3: block_acc<3>(x, w, K, acc); break;
    case 4: block_acc<4>(x, w, K, acc); break;
    case 5: block_acc<5>(x, w, K, acc); break;
    case 6: block_acc<6>(x, w, K, acc); break;
    case 7: block_acc<7>(x, w, K, acc); break;
    default: block_acc<8>(x, w, K, acc); break;
  }
}

enum Epilogue { kPlain, kAdd, kGate };

// out [rows, N] for N = blocks * BLOCK; kGate reads block b and block b + blocks of W.
static void multiply(const float* x, const float* packed, const float* residual, float* out,
                     int64_t rows, int K, int64_t blocks, Epilogue epilogue) {
  const int64_t N = blocks * BLOCK;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const float* w = packed + b * K * BLOCK;
    float acc[8][BLOCK], up[8][BLOCK];
    for (int64_t r = 0; r < rows; r += 8) {   // the block stays in cache across row groups
      const int m = (int)(rows - r < 8 ? rows - r : 8);
      acc_rows(m, x + r * K, w, K, acc);
      if (epilogue == kGate) acc_rows(m, x + r * K, w + blocks * K * BLOCK, K, up);
      for (int i = 0; i < m; ++i) {
        float* o = out + (r + i) * N + b * BLOCK;
        if (epilogue == kPlain) {
          std::memcpy(o, acc[i], sizeof(float) * BLOCK);
        } else if (epilogue == kAdd) {
          const float* res = residual + (r + i) * N + b * BLOCK;
          for (int j = 0; j < BLOCK; ++j) o[j] = res[j] + acc[i][j];
        } else {
          for (int j = 0; j < BLOCK; ++j)
            o[j] = acc[i][j] / (1.f + std::exp(-acc[i][j])) * up[i][j];
        }
      }
    }
  }
}

// x / sqrt(mean(x^2) + eps) row by row, as pipeline.decode_cell.normed computes it
static std::vector<float> rms_normed(const float* x, int64_t rows, int K, float eps) {
  std::vector<float> out((size_t)(rows * K));
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * K;
    float sum = 0.f;
    for (int k = 0; k < K; ++k) sum += xr[k] * xr[k];
    const float scale = 1.f / std::sqrt(sum / K + eps);
    for (int k = 0; k < K; ++k) out[(size_t)(r * K + k)] = xr[k] * scale;
  }
  return out;
}

static bool packed_ok(int* ndims, int64_t** shapes, const char** dtypes, int x, int w) {
  return ndims[x] == 2 && ndims[w] == 3 && shapes[w][2] == BLOCK &&
         shapes[w][1] == shapes[x][1] && std::strcmp(dtypes[x], "float32") == 0 &&
         std::strcmp(dtypes[w], "float32") == 0;
}

// The entry points: MindSpore's aot signature, params = inputs then the output.
extern "C" int PackedMatMul(int nparam, void** params, int* ndims, int64_t** shapes,
                            const char** dtypes, void* stream, void* extra) {
  if (nparam != 3 || !packed_ok(ndims, shapes, dtypes, 0, 1)) return 1;
  multiply(static_cast<const float*>(params[0]), static_cast<const float*>(params[1]), nullptr,
           static_cast<float*>(params[2]), shapes[0][0], (int)shapes[0][1], shapes[1][0], kPlain);
  return 0;
}

extern "C" int NormMatMul(int nparam, void** params, int* ndims, int64_t** shapes,
                          const char** dtypes, void* stream, void* extra) {
  if (nparam != 4 || !packed_ok(ndims, shapes, dtypes, 0, 2)) return 1;
  const int64_t rows = shapes[0][0];
  const int K = (int)shapes[0][1];
  const float eps = *static_cast<const float*>(params[1]);
  std::vector<float> xn = rms_normed(static_cast<const float*>(params[0]), rows, K, eps);
  multiply(xn.data(), static_cast<const float*>(params[2]), nullptr,
           static_cast<float*>(params[3]), rows, K, shapes[2][0], kPlain);
  return 0;
}

extern "C" int MatMulAdd(int nparam, void** params, int* ndims, int64_t** shapes,
                         const char** dtypes, void* stream, void* extra) {
  if (nparam != 4 || !packed_ok(ndims, shapes, dtypes, 0, 1)) return 1;
  if (shapes[2][0] != shapes[0][0] || shapes[2][1] != shapes[1][0] * BLOCK) return 2;
  multiply(static_cast<const float*>(params[0]), static_cast<const float*>(params[1]),
           static_cast<const float*>(params[2]), static_cast<float*>(params[3]), shapes[0][0],
           (int)shapes[0][1], shapes[1][0], kAdd);
  return 0;
}

extern "C" int NormGateUp(int nparam, void** params, int* ndims, int64_t** shapes,
                          const char** dtypes, void* stream, void* extra) {
  if (nparam != 4 || !packed_ok(ndims, shapes, dtypes, 0, 2) || shapes[2][0] % 2) return 1;
  const int64_t rows = shapes[0][0];
  const int K = (int)shapes[0][1];
  const float eps = *static_cast<const float*>(params[1]);
  std::vector<float> xn = rms_normed(static_cast<const float*>(params[0]), rows, K, eps);
  multiply(xn.data(), static_cast<const float*>(params[2]), nullptr,
           static_cast<float*>(params[3]), rows, K, shapes[2][0] / 2, kGate);
  return 0;
}
