// Fused forward and backward kernels for LoRA training on CPU: MindSpore "aot" Custom ops
// (pipeline/kernels/train_ops.py builds them and pipeline/model/fused_layers.py puts them in
// the decoder layers). float32, single-threaded: each op touches at most a few hundred KB,
// and MindSpore's own kernel thread calls it, so another thread pool would only fight
// oneDNN's for the two cores.
//
// Why: MindSpore's CPU wheel has no graph-kernel fusion, so MindFormers' RMSNorm, rotary
// embedding, attention softmax and SiLU gate run as ~1,900 small kernels a 2-row pass
// (forward and backward), each paying a launch and a trip through memory; MindSpore's own
// ReduceSum/ReduceMean take 0.2-0.6 ms for a [196, 576] row sum. These ops do the same work
// in ~360 kernels. Sums use `omp simd` reductions (-fopenmp-simd: vector lanes, no threads).
//   RmsNorm(x [.., K], w [K], eps [1])              y = x * rsqrt(mean(x^2) + eps) * w
//   RmsNormGrad(x, w, eps, dy)                      -> dx, dw
//   SiluMul(a, b)                                   y = silu(a) * b   (SwiGLU's gate)
//   SiluMulGrad(a, b, dy)                           -> da, db
//   ScaledMaskedSoftmax(score [B, H, S, T], mask, scale [1])
//                                                   y = softmax(score * scale + mask) over T;
//                                                   mask holds S*T, B*S*T or B*H*S*T numbers
//   ScaledMaskedSoftmaxGrad(y, dy, scale)           -> dscore = scale * y * (dy - sum(dy y))
//   RopeHeads(x [B, S, Hin, D], cos [S, D], sin)    -> [B, Hout, S, D]
//       rotary embedding (MindFormers' use_rope_slice form: x * cos + concat(-x2, x1) * sin)
//       with the transpose to heads-first and the key/value heads repeated Hout / Hin times
//   RopeHeadsGrad(dy [B, Hout, S, D], cos, sin)     -> dx [B, S, Hin, D]  (repeats summed)
//   RepeatHeads / RepeatHeadsGrad                   the same without the rotation (values)
#include <cmath>
#include <cstdint>
#include <cstring>

namespace {

int64_t rows_of(int ndim, const int64_t* shape) {   // product of all but the last dimension
  int64_t m = 1;
  for (int i = 0; i + 1 < ndim; ++i) m *= shape[i];
  return m;
}

int64_t count_of(int ndim, const int64_t* shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= shape[i];
  return n;
}

bool all_float32(int n, const char** dtypes) {
  for (int i = 0; i < n; ++i)
    if (std::strcmp(dtypes[i], "float32") != 0) return false;
  return true;
}

// exp(x) for float32 by 2^x = 2^floor * 2^frac with a degree-6 minimax polynomial for the
// fraction (relative error < 2e-7): plain arithmetic the compiler vectorises, where expf
// would be one scalar call per element without -ffast-math.
inline float exp_approx(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float t = x * 1.4426950408889634f;
  int32_t n = static_cast<int32_t>(t);      // toward zero, then down: floor(t)
  n -= t < static_cast<float>(n) ? 1 : 0;
  const float f = t - static_cast<float>(n);
  float p = 1.535336188319500e-4f;
  p = p * f + 1.339887440266574e-3f;
  p = p * f + 9.618437357674640e-3f;
  p = p * f + 5.550332471162809e-2f;
  p = p * f + 2.402264791363012e-1f;
  p = p * f + 6.931472028550421e-1f;
  p = p * f + 1.0f;
  // p * 2^n by adding n to the exponent bits (__builtin_bit_cast: memcpy kept GCC from
  // vectorising the loops that call this)
  return __builtin_bit_cast(float, __builtin_bit_cast(int32_t, p) + n * (1 << 23));
}

inline float sigmoid(float a) { return 1.0f / (1.0f + exp_approx(-a)); }

float inv_rms(const float* x, int64_t k, float eps) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < k; ++j) sum += x[j] * x[j];
  return 1.0f / std::sqrt(sum / static_cast<float>(k) + eps);
}

}  // namespace

extern "C" int RmsNorm(int nparam, void** params, int* ndims, int64_t** shapes,
                       const char** dtypes, void* stream, void* extra) {
  if (nparam != 4 || !all_float32(4, dtypes)) return 1;
  const int64_t k = shapes[0][ndims[0] - 1], m = rows_of(ndims[0], shapes[0]);
  if (count_of(ndims[1], shapes[1]) != k) return 2;
  const float* x = static_cast<const float*>(params[0]);
  const float* w = static_cast<const float*>(params[1]);
  const float eps = *static_cast<const float*>(params[2]);
  float* y = static_cast<float*>(params[3]);
  for (int64_t r = 0; r < m; ++r) {
    const float* xr = x + r * k;
    float* yr = y + r * k;
    const float s = inv_rms(xr, k, eps);
    for (int64_t j = 0; j < k; ++j) yr[j] = xr[j] * s * w[j];
  }
  return 0;
}

// dx_j = r g_j - x_j r^3 mean(g x) with g = dy w; dw_j = sum over rows of dy_j x_j r.
extern "C" int RmsNormGrad(int nparam, void** params, int* ndims, int64_t** shapes,
                           const char** dtypes, void* stream, void* extra) {
  if (nparam != 6 || !all_float32(6, dtypes)) return 1;
  const int64_t k = shapes[0][ndims[0] - 1], m = rows_of(ndims[0], shapes[0]);
  if (count_of(ndims[1], shapes[1]) != k || count_of(ndims[3], shapes[3]) != m * k) return 2;
  const float* x = static_cast<const float*>(params[0]);
  const float* w = static_cast<const float*>(params[1]);
  const float eps = *static_cast<const float*>(params[2]);
  const float* dy = static_cast<const float*>(params[3]);
  float* dx = static_cast<float*>(params[4]);
  float* dw = static_cast<float*>(params[5]);
  for (int64_t j = 0; j < k; ++j) dw[j] = 0.0f;
  for (int64_t r = 0; r < m; ++r) {
    const float* xr = x + r * k;
    const float* dyr = dy + r * k;
    float* dxr = dx + r * k;
    const float s = inv_rms(xr, k, eps);
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < k; ++j) dot += dyr[j] * w[j] * xr[j];
    const float c = s * s * s * dot / static_cast<float>(k);
    for (int64_t j = 0; j < k; ++j) {
      dxr[j] = s * dyr[j] * w[j] - c * xr[j];
      dw[j] += dyr[j] * xr[j] * s;
    }
  }
  return 0;
}

extern "C" int SiluMul(int nparam, void** params, int* ndims, int64_t** shapes,
                       const char** dtypes, void* stream, void* extra) {
  if (nparam != 3 || !all_float32(3, dtypes)) return 1;
  const int64_t n = count_of(ndims[0], shapes[0]);
  if (count_of(ndims[1], shapes[1]) != n) return 2;
  const float* a = static_cast<const float*>(params[0]);
  const float* b = static_cast<const float*>(params[1]);
  float* y = static_cast<float*>(params[2]);
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * sigmoid(a[i]) * b[i];
  return 0;
}

// d silu(a) / da = s (1 + a (1 - s)) for s = sigmoid(a).
extern "C" int SiluMulGrad(int nparam, void** params, int* ndims, int64_t** shapes,
                           const char** dtypes, void* stream, void* extra) {
  if (nparam != 5 || !all_float32(5, dtypes)) return 1;
  const int64_t n = count_of(ndims[0], shapes[0]);
  if (count_of(ndims[1], shapes[1]) != n || count_of(ndims[2], shapes[2]) != n) return 2;
  const float* a = static_cast<const float*>(params[0]);
  const float* b = static_cast<const float*>(params[1]);
  const float* dy = static_cast<const float*>(params[2]);
  float* da = static_cast<float*>(params[3]);
  float* db = static_cast<float*>(params[4]);
  for (int64_t i = 0; i < n; ++i) {
    const float s = sigmoid(a[i]);
    da[i] = dy[i] * b[i] * s * (1.0f + a[i] * (1.0f - s));
    db[i] = dy[i] * a[i] * s;
  }
  return 0;
}

extern "C" int ScaledMaskedSoftmax(int nparam, void** params, int* ndims, int64_t** shapes,
                                  const char** dtypes, void* stream, void* extra) {
  if (nparam != 4 || !all_float32(4, dtypes) || ndims[0] != 4) return 1;
  const int64_t* sh = shapes[0];
  const int64_t batch = sh[0], heads = sh[1], plane = sh[2] * sh[3], t = sh[3];
  const int64_t masked = count_of(ndims[1], shapes[1]);
  if (masked != plane && masked != batch * plane && masked != batch * heads * plane) return 2;
  const float* score = static_cast<const float*>(params[0]);
  const float* mask = static_cast<const float*>(params[1]);
  const float scale = *static_cast<const float*>(params[2]);
  float* y = static_cast<float*>(params[3]);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t at = (b * heads + h) * plane;
      const float* m = mask + (masked == plane ? 0 : masked == batch * plane ? b * plane : at);
      for (int64_t r = 0; r < plane; r += t) {
        const float* in = score + at + r;
        float* out = y + at + r;
        float top = -INFINITY;
#pragma omp simd reduction(max : top)
        for (int64_t j = 0; j < t; ++j) {
          out[j] = in[j] * scale + m[r + j];
          top = out[j] > top ? out[j] : top;
        }
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < t; ++j) {
          out[j] = exp_approx(out[j] - top);
          sum += out[j];
        }
        const float inv = 1.0f / sum;
        for (int64_t j = 0; j < t; ++j) out[j] *= inv;
      }
    }
  return 0;
}

extern "C" int ScaledMaskedSoftmaxGrad(int nparam, void** params, int* ndims, int64_t** shapes,
                                      const char** dtypes, void* stream, void* extra) {
  if (nparam != 4 || !all_float32(4, dtypes) || ndims[0] < 1) return 1;
  const int64_t n = count_of(ndims[0], shapes[0]), t = shapes[0][ndims[0] - 1];
  if (count_of(ndims[1], shapes[1]) != n) return 2;
  const float* y = static_cast<const float*>(params[0]);
  const float* dy = static_cast<const float*>(params[1]);
  const float scale = *static_cast<const float*>(params[2]);
  float* dx = static_cast<float*>(params[3]);
  for (int64_t r = 0; r < n; r += t) {
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < t; ++j) dot += dy[r + j] * y[r + j];
    for (int64_t j = 0; j < t; ++j) dx[r + j] = scale * y[r + j] * (dy[r + j] - dot);
  }
  return 0;
}

namespace {

struct HeadShape {
  int64_t batch, seq, heads_in, heads_out, dim;
};

// x [B, S, Hin, D] (params[in]) against out [B, Hout, S, D] (params[out]); cos/sin, when
// given, hold S * D numbers.
bool head_shape(int* ndims, int64_t** shapes, int in, int out, bool with_tables, HeadShape* h) {
  if (ndims[in] != 4 || ndims[out] != 4) return false;
  const int64_t* x = shapes[in];
  const int64_t* y = shapes[out];
  *h = {x[0], x[1], x[2], y[1], x[3]};
  if (y[0] != x[0] || y[2] != x[1] || y[3] != x[3] || h->heads_out % h->heads_in) return false;
  if (with_tables && (count_of(ndims[1], shapes[1]) != h->seq * h->dim ||
                      count_of(ndims[2], shapes[2]) != h->seq * h->dim || h->dim % 2))
    return false;
  return true;
}

// Forward, or its transpose (the backward), of one head's row:
// forward out_j = x_j c_j - x_{j+D/2} s_j (j < D/2), x_j c_j + x_{j-D/2} s_j (j >= D/2).
inline void rotate(const float* x, const float* c, const float* s, int64_t d, bool backward,
                   float* out) {
  const int64_t half = d / 2;
  if (!backward) {
    for (int64_t j = 0; j < half; ++j) out[j] = x[j] * c[j] - x[j + half] * s[j];
    for (int64_t j = half; j < d; ++j) out[j] = x[j] * c[j] + x[j - half] * s[j];
  } else {
    for (int64_t j = 0; j < half; ++j) out[j] = x[j] * c[j] + x[j + half] * s[j + half];
    for (int64_t j = half; j < d; ++j) out[j] = x[j] * c[j] - x[j - half] * s[j - half];
  }
}

// x [B, S, Hin, D] -> y [B, Hout, S, D]: each head rotated (when cos/sin are given) into its
// first copy, then repeated Hout / Hin times.
void heads_first(const float* x, const float* cos, const float* sin, const HeadShape& h, float* y) {
  const int64_t rep = h.heads_out / h.heads_in, d = h.dim;
  for (int64_t b = 0; b < h.batch; ++b)
    for (int64_t s = 0; s < h.seq; ++s)
      for (int64_t hi = 0; hi < h.heads_in; ++hi) {
        const float* src = x + ((b * h.seq + s) * h.heads_in + hi) * d;
        float* first = y + ((b * h.heads_out + hi * rep) * h.seq + s) * d;
        if (cos != nullptr)
          rotate(src, cos + s * d, sin + s * d, d, false, first);
        else
          std::memcpy(first, src, d * sizeof(float));
        for (int64_t r = 1; r < rep; ++r) std::memcpy(first + r * h.seq * d, first, d * sizeof(float));
      }
}

// Its transpose, dy [B, Hout, S, D] -> dx [B, S, Hin, D]: each head's repeats summed, then
// rotated back when cos/sin are given. 2 when a head is wider than the scratch row.
int heads_back(const float* dy, const float* cos, const float* sin, const HeadShape& h, float* dx) {
  const int64_t rep = h.heads_out / h.heads_in, d = h.dim;
  float scratch[1024];
  if (cos != nullptr && d > 1024) return 2;
  for (int64_t b = 0; b < h.batch; ++b)
    for (int64_t s = 0; s < h.seq; ++s)
      for (int64_t hi = 0; hi < h.heads_in; ++hi) {
        float* out = dx + ((b * h.seq + s) * h.heads_in + hi) * d;
        float* sum = cos != nullptr ? scratch : out;   // rotate() cannot work in place
        const float* first = dy + ((b * h.heads_out + hi * rep) * h.seq + s) * d;
        std::memcpy(sum, first, d * sizeof(float));
        for (int64_t r = 1; r < rep; ++r)
          for (int64_t j = 0; j < d; ++j) sum[j] += first[r * h.seq * d + j];
        if (cos != nullptr) rotate(sum, cos + s * d, sin + s * d, d, true, out);
      }
  return 0;
}

}  // namespace

extern "C" int RopeHeads(int nparam, void** params, int* ndims, int64_t** shapes,
                         const char** dtypes, void* stream, void* extra) {
  HeadShape h;
  if (nparam != 4 || !all_float32(4, dtypes) || !head_shape(ndims, shapes, 0, 3, true, &h)) return 1;
  heads_first(static_cast<const float*>(params[0]), static_cast<const float*>(params[1]),
              static_cast<const float*>(params[2]), h, static_cast<float*>(params[3]));
  return 0;
}

extern "C" int RopeHeadsGrad(int nparam, void** params, int* ndims, int64_t** shapes,
                             const char** dtypes, void* stream, void* extra) {
  HeadShape h;   // dy [B, Hout, S, D] is params[0], dx [B, S, Hin, D] params[3]
  if (nparam != 4 || !all_float32(4, dtypes) || !head_shape(ndims, shapes, 3, 0, true, &h)) return 1;
  return heads_back(static_cast<const float*>(params[0]), static_cast<const float*>(params[1]),
                    static_cast<const float*>(params[2]), h, static_cast<float*>(params[3]));
}

extern "C" int RepeatHeads(int nparam, void** params, int* ndims, int64_t** shapes,
                           const char** dtypes, void* stream, void* extra) {
  HeadShape h;
  if (nparam != 2 || !all_float32(2, dtypes) || !head_shape(ndims, shapes, 0, 1, false, &h)) return 1;
  heads_first(static_cast<const float*>(params[0]), nullptr, nullptr, h, static_cast<float*>(params[1]));
  return 0;
}

extern "C" int RepeatHeadsGrad(int nparam, void** params, int* ndims, int64_t** shapes,
                               const char** dtypes, void* stream, void* extra) {
  HeadShape h;   // dy [B, Hout, S, D] is params[0], dx [B, S, Hin, D] params[1]
  if (nparam != 2 || !all_float32(2, dtypes) || !head_shape(ndims, shapes, 1, 0, false, &h)) return 1;
  return heads_back(static_cast<const float*>(params[0]), nullptr, nullptr, h,
                    static_cast<float*>(params[1]));
}
