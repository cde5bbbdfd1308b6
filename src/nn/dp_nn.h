/* dp_nn: a small CPU neural-network engine (float32, batched), in the style
 * of karpathy/llm.c: one forward/backward pair per layer, outputs first in
 * the argument list, shapes in comments. It knows nothing about packets.
 *
 * Conventions
 *  - All tensors are dense, row-major, float32, caller-allocated; shapes are
 *    given in the comments as [dim0, dim1, ...] (last dimension contiguous).
 *  - Weights use the PyTorch layouts (conv1d [OC, C, K], linear [OC, C]) so
 *    that parameters can be compared with / exchanged with PyTorch directly.
 *  - Backward functions OVERWRITE input gradients (dinp) and ACCUMULATE (+=)
 *    parameter gradients (dweight, dbias): zero those before each batch.
 *  - Matrix work goes through OpenBLAS (cblas_sgemm, its own threads);
 *    im2col/col2im, bias+ReLU, the first (C = 1) convolution and Adam are
 *    vectorisable C loops split over dp_nn_parallel_for (pthreads) when big.
 *    Inference has its own channels-last convolutions for one sample per
 *    thread, whose GEMMs run single-threaded (dp_gemm_seq: oneDNN).
 *    Measurements and the choice of library: docs/bench-nn.md.
 *  - Scratch: only the convolutions need any, passed in by the caller.
 *  - Determinism: the same inputs, thread count and OpenBLAS core (see
 *    dp_nn_blas_core) give bit-identical results: no atomics, every sum of
 *    our own in a fixed order (independent even of the thread count), and
 *    OpenBLAS partitions a GEMM by its shape and thread count only.
 *  - No function allocates, fails or prints (except in bf16 mode, whose GEMMs
 *    keep per-thread buffers: see "precision" below); invalid shapes are the
 *    caller's bug (checked with assert in debug builds).
 */
#ifndef DP_NN_H
#define DP_NN_H

#include <stddef.h>
#include <stdint.h>

#include "util/dp_util.h"

/* Threads used by the matrix library and our own loops; n <= 0 means
 * dp_ncpu(). Call before any layer runs (not thread-safe against them). */
void dp_nn_set_threads(int n);
/* The current thread count (as last set; dp_ncpu() before any call). */
int dp_nn_get_threads(void);
/* Runs fn(ctx, i, n) for i = 0..n-1 on up to dp_nn_get_threads() threads
 * (the calling thread included), returning when all are done; n == 1 runs
 * inline. Each i must write disjoint memory (this is how the engine keeps
 * results independent of scheduling). Every chunk runs in the caller's
 * precision (dp_nn_get_precision, below). The threads are a pool kept for the
 * life of the process (a call costs a wake-up, not thread creation); a call
 * made while the pool is busy (from another thread, or nested) gets one-off
 * threads instead. Used internally; exported for bench. */
void dp_nn_parallel_for(int n, void (*fn)(void *ctx, int i, int n), void *ctx);

/* The OpenBLAS kernel set in use (e.g. "Haswell", "Cooperlake"). OpenBLAS
 * picks it once, when loaded, from the CPU or from the OPENBLAS_CORETYPE
 * environment variable; on an AVX-512 machine "Haswell" (AVX2) halves the
 * sgemm speed. Worth printing in logs next to timings. */
const char *dp_nn_blas_core(void);

/* ---- conv1d ---------------------------------------------------------------
 * conv1d, no padding, no dilation, stride S:
 *   inp [B, C, L], weight [OC, C, K], bias [OC] (may be NULL) -> out [B, OC, LO],
 *   LO = (L - K) / S + 1, requires L >= K.
 *   out[b,o,t] = bias[o] + sum_{c,k} weight[o,c,k] * inp[b,c,t*S+k]
 * scratch: at least dp_conv1d_scratch_floats(B, C, L, OC, K, S) floats; the
 * same scratch size serves both forward and backward, and every batch size
 * up to B (the size is non-decreasing in B). Contents are garbage
 * on return (no state is carried from forward to backward). */
size_t dp_conv1d_scratch_floats(int B, int C, int L, int OC, int K, int S);
/* Output length LO for input length L, kernel K, stride S (0 if L < K). */
int dp_conv1d_out_len(int L, int K, int S);
void dp_conv1d_forward(float *out, float *scratch, const float *inp, const float *weight, const float *bias,
                       int B, int C, int L, int OC, int K, int S);
/* Same, with ReLU fused into the output (out = max(0, conv)); the backward
 * of the fused form is dp_relu_backward on out followed by dp_conv1d_backward. */
void dp_conv1d_relu_forward(float *out, float *scratch, const float *inp, const float *weight,
                            const float *bias, int B, int C, int L, int OC, int K, int S);
/* backward: dout [B, OC, LO], inp [B, C, L], weight [OC, C, K] ->
 *   dinp [B, C, L] OVERWRITTEN (may be NULL, e.g. for the first layer),
 *   dweight [OC, C, K] and dbias [OC] (may be NULL) ACCUMULATED (+=). */
void dp_conv1d_backward(float *dinp, float *dweight, float *dbias, float *scratch, const float *dout,
                        const float *inp, const float *weight, int B, int C, int L, int OC, int K, int S);

/* ---- channels-last conv1d for inference (dp_nn_convcl.c) -------------------
 * One sample on the calling thread (data-parallel inference: each thread
 * takes whole samples). Position-major signals: inp [rows, C] (inp[t*C + c]),
 * out [n, OC]. With the layer's weight [OC, C, K] packed once by
 * dp_conv1d_cl_pack into dp_conv1d_cl_weight_floats(OC, C, K, S) floats,
 *   out[t, o] = relu(bias[o] + sum_{c,k} weight[o,c,k] * inp[(t*S + k)*C + c])
 * for the first n positions 0 <= t < n (bias may be NULL). It reads input
 * rows 0 .. dp_conv1d_cl_in_rows(n, K, S, C) - 1, which for the Winograd form
 * (K = 5, S = 1, C*K > 16) runs up to 7 rows past the last window
 * (S*(n-1) + K rows): those extra rows must be finite and of the signal's
 * scale (its continuation, or zeros); they change results only by rounding.
 * scratch: dp_conv1d_cl_scratch_floats(n, ...) floats (serves any n' <= n).
 * Equals dp_conv1d_relu_forward up to float summation order (about 1e-6
 * relative for the Winograd form). Matrix products: dp_gemm_seq. */
size_t dp_conv1d_cl_weight_floats(int OC, int C, int K, int S);
void dp_conv1d_cl_pack(float *wp, const float *weight, int OC, int C, int K, int S);
int dp_conv1d_cl_in_rows(int n, int K, int S, int C);
size_t dp_conv1d_cl_scratch_floats(int n, int C, int OC, int K, int S);
void dp_conv1d_cl_relu_forward(float *out, float *scratch, const float *inp, const float *wp, const float *bias,
                               int n, int C, int OC, int K, int S);
/* The same over `count` signals of one layer (DP_CONV_CL_MANY at a time): signal s
 * reads inps[s] (rows 0 .. dp_conv1d_cl_in_rows(ns[s]) - 1) and writes
 * outs[s] [ns[s], OC]; the Winograd form runs one set of GEMMs over all
 * their tiles (as tall as the signals together, so short signals do not
 * make small GEMMs), the other forms run them one by one. scratch:
 * dp_conv1d_cl_scratch_floats(m, ...) floats with m >= the sum over the
 * signals of ns[s] rounded up to a multiple of 4. Each signal's outputs
 * equal dp_conv1d_cl_relu_forward's on it up to float summation order. */
#define DP_CONV_CL_MANY 64
void dp_conv1d_cl_relu_forward_many(float *const *outs, float *scratch, const float *const *inps, const int *ns,
                                    int count, const float *wp, const float *bias, int C, int OC, int K, int S);
/* Channels-last max-pool (kernel = stride = P) of n output positions, minus
 * an optional per-channel vector: inp [n*P, C] -> out [n, C],
 *   out[p, c] = max_{k<P} inp[p*P + k, c] - (sub ? sub[c] : 0)
 * (NaN handling is the compiler's max, unlike dp_maxpool1d_forward: for
 * inference on finite values). */
void dp_maxpool1d_cl_forward(float *out, const float *inp, const float *sub, int n, int C, int P);

/* ---- single-threaded GEMM for worker threads (dp_nn_gemm.c) -----------------
 * C [M, N] = A [M, K] @ op(B) + beta C, row-major, on the calling thread only:
 * op(B) = B^T with B [N, K] (transb) or B [K, N]; lda/ldb/ldc row strides.
 * oneDNN's dnnl_sgemm when built with DP_WITH_DNNL (kernels chosen from the
 * CPU at run time; the calling thread's OpenMP thread count is set to 1),
 * else cblas_sgemm. Wrap a parallel region that calls it in
 * dp_gemm_seq_begin / _end: they hold OpenBLAS to one thread meanwhile (its
 * idle threads would spin against the caller's), then restore
 * dp_nn_get_threads(). With oneDNN on glibc the first begin also tunes
 * malloc, process-wide, to keep freed memory (M_MMAP_THRESHOLD 8 MB,
 * M_TRIM_THRESHOLD 64 MB): dnnl_sgemm allocates on every call, and by
 * default those pages went back to the kernel and faulted in again each
 * time. dp_gemm_seq_engine names the library. */
void dp_gemm_seq(int transb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta,
                 float *C, int ldc);
void dp_gemm_seq_begin(void);
void dp_gemm_seq_end(void);
const char *dp_gemm_seq_engine(void);

/* ---- precision (dp_nn_bf16.c) ------------------------------------------------
 * DP_PREC_BF16 runs the GEMMs of the convolutions and fully connected layers
 * (training: dp_conv1d_*, dp_linear_*, dp_seqconv_*; inference: dp_gemm_seq)
 * with bf16 operands (float inputs rounded to nearest even) and float32
 * accumulation and outputs, through oneDNN's matmul (vdpbf16ps on
 * AVX512_BF16). Everything else stays float32 (master weights, Adam, losses,
 * the direct first-layer convolution, bias, ReLU, pooling). DP_PREC_FP32
 * (the default) is the float32 path, unchanged. The precision in effect on
 * a thread is its own (dp_nn_set_thread_precision: a model's inference sets
 * the model's for its duration) or else the process's (dp_nn_set_precision:
 * training and the benches, set before any layer runs); the chunks of a
 * dp_nn_parallel_for run in the caller's. In bf16 mode the GEMMs keep
 * per-thread conversion buffers and primitives (allocated on first use and
 * kept); if oneDNN or an allocation fails, that GEMM runs in float32. */
enum { DP_PREC_FP32 = 0, DP_PREC_BF16 = 1, DP_PREC_AUTO = 2 };
/* 1 if the CPU has AVX512_BF16 (cpuid, with the OS saving ZMM state);
 * DEEPPACKET_CPU_NO_BF16=1 in the environment makes it 0 (to test the
 * refusal on a CPU that has it). */
int dp_nn_cpu_has_bf16(void);
/* 1 if bf16 can run here: the CPU has it and the build has oneDNN. */
int dp_nn_bf16_available(void);
/* "fp32", "bf16" or "auto" -> DP_PREC_*, anything else -1. */
int dp_nn_precision_parse(const char *s);
/* prec resolved: DP_PREC_FP32 or DP_PREC_BF16 (AUTO: bf16 where available,
 * else fp32); -1 with a message naming what is missing for bf16 where it is
 * unavailable, or for a value that is no DP_PREC_*. */
int dp_nn_precision_resolve(int prec, char *errbuf);
/* Sets the process's precision (dp_nn_precision_resolve(prec)); -1 with its
 * message and nothing changed when that fails. Threads with a precision of
 * their own keep it. */
int dp_nn_set_precision(int prec, char *errbuf);
/* Sets the calling thread's own precision, in effect on it (and in the
 * chunks of its dp_nn_parallel_for) instead of the process's: prec is
 * DP_PREC_FP32, DP_PREC_BF16 only as dp_nn_precision_resolve gives it (where
 * bf16 runs), or -1 (anything else too): none, the process's again. Returns
 * the thread's previous setting (-1: none), for the caller to restore:
 *   int old = dp_nn_set_thread_precision(p); ...; dp_nn_set_thread_precision(old);
 * Touches no other thread. */
int dp_nn_set_thread_precision(int prec);
/* The precision in effect on the calling thread: DP_PREC_FP32 or
 * DP_PREC_BF16 (its own if set, else the process's). */
int dp_nn_get_precision(void);
/* "fp32", "bf16" or "auto". */
const char *dp_nn_precision_name(int prec);
/* f rounded to the nearest bf16 (ties to even), as a float: the rounding
 * the bf16 GEMMs apply to their inputs (for tests and references). */
float dp_bf16_round(float f);
/* C [M, N] = op(A) @ op(B) + beta C, row-major, cblas_sgemm's contract
 * (op(A) = A^T with A stored [K, M] when ta; op(B) = B^T with B stored
 * [N, K] when tb), on dp_nn_get_threads() threads: cblas_sgemm in fp32, the
 * bf16 matmul in bf16. */
void dp_nn_gemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta,
                float *C, int ldc);
/* Declares the n floats at p constant until dp_nn_bf16_forget(p) (call it
 * before changing or freeing them): bf16 GEMMs whose operand lies inside
 * read a bf16 copy made here, once, instead of converting that operand on
 * every call (inference weights). 0, or -1 when out of memory or when 64
 * buffers are declared already (nothing declared: the GEMMs convert as
 * before). Thread-safe. */
int dp_nn_bf16_const(const float *p, size_t n);
void dp_nn_bf16_forget(const float *p);
/* dp_gemm_seq in bf16 on the calling thread: 0 when done, -1 when not
 * (precision fp32, or oneDNN failed: the caller then runs float32). */
int dp_gemm_seq_bf16(int transb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta,
                     float *C, int ldc);
/* dp_gemm_seq_bf16 with an operand already in bf16: A16 (B16), when not
 * NULL, is A (B) rounded to bf16, same shape and row stride, and A (B) is
 * not read (it may be NULL). Inference passes that produce an operand write
 * it in bf16 directly, saving the conversion pass over it. */
int dp_gemm_seq_bf16_pre(int transb, int M, int N, int K, const float *A, const uint16_t *A16, int lda, const float *B,
                         const uint16_t *B16, int ldb, float beta, float *C, int ldc);
/* dst [n] = src [n] rounded to bf16, nearest even (the GEMMs' rounding):
 * with AVX512_BF16's vcvtne2ps2bf16 in bf16 mode, else in scalar code. */
void dp_nn_to_bf16(uint16_t *dst, const float *src, size_t n);

/* ---- max-pool 1d ------------------------------------------------------------
 * kernel = stride = P, floor mode (a trailing L % P is dropped):
 *   inp [B, C, L] -> out [B, C, L / P]; argmax [B, C, L / P] holds the index
 *   (0..L-1, within the row) of the chosen input; ties pick the first
 *   (lowest) index, NaN wins (as PyTorch). */
void dp_maxpool1d_forward(float *out, int32_t *argmax, const float *inp, int B, int C, int L, int P);
/* dout [B, C, L / P] -> dinp [B, C, L] OVERWRITTEN (zero except at argmax). */
void dp_maxpool1d_backward(float *dinp, const float *dout, const int32_t *argmax, int B, int C, int L, int P);

/* ---- fully connected ------------------------------------------------------
 * inp [B, C], weight [OC, C] (PyTorch layout), bias [OC] (may be NULL) -> out [B, OC]
 *   out = inp @ weight^T + bias */
void dp_linear_forward(float *out, const float *inp, const float *weight, const float *bias, int B, int C, int OC);
/* dout [B, OC] -> dinp [B, C] OVERWRITTEN (may be NULL);
 * dweight [OC, C] and dbias [OC] (may be NULL) ACCUMULATED (+=). */
void dp_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, int B, int C, int OC);

/* ---- sequence layers (dp_nn_seq.c): channels-last [B, N, C] sequences ----
 * Convolution over a sequence with "same" zero padding, PyTorch
 * Conv1d(C, OC, K, padding=K/2) applied to inp.transpose(1, 2), K odd, the
 * result transposed back to channels-last:
 *   inp [B, N, C], weight [OC, C, K], bias [OC] (may be NULL) -> out [B, N, OC],
 *   out[b,t,o] = bias[o] + sum_{c,k} weight[o,c,k] * inp[b, t+k-K/2, c]
 *   (terms with t+k-K/2 outside 0..N-1 are zero).
 * cols [B*N, C*K] receives the im2col rows (cols[(b*N+t), c*K+k]); keep it
 * for the backward. */
void dp_seqconv_forward(float *out, float *cols, const float *inp, const float *weight, const float *bias, int B,
                        int N, int C, int OC, int K);
/* dout [B, N, OC], cols from the forward -> dinp [B, N, C] OVERWRITTEN (may
 * be NULL), dweight [OC, C, K] and dbias [OC] (may be NULL) ACCUMULATED;
 * dcols [B*N, C*K] is scratch (garbage on return; unused when dinp is NULL). */
void dp_seqconv_backward(float *dinp, float *dweight, float *dbias, float *dcols, const float *dout,
                         const float *cols, const float *weight, int B, int N, int C, int OC, int K);
/* Row scaling, its own backward: out[r, c] = inp[r, c] * scale[r * sstride]
 * for R rows of C (e.g. zeroing the rows of absent packets by their present
 * flag; the gradient wrt inp is the same call on dout). out may == inp. */
void dp_rowscale(float *out, const float *inp, const float *scale, size_t sstride, size_t R, int C);

/* ---- activations ----------------------------------------------------------- */
/* out = max(0, inp) elementwise, n elements; out may == inp. */
void dp_relu_forward(float *out, const float *inp, size_t n);
/* dinp = dout * (out > 0), out = the forward OUTPUT; dinp may == dout. */
void dp_relu_backward(float *dinp, const float *dout, const float *out, size_t n);

/* Inverted dropout, p = drop probability in [0, 1): each element is kept
 * with probability 1 - p (mask[i] = 1) and scaled by 1 / (1 - p), else
 * out[i] = 0 and mask[i] = 0. Training only; for evaluation do not call it
 * (identity). out may == inp. Consumes one rng draw per element, in order. */
void dp_dropout_forward(float *out, uint8_t *mask, const float *inp, size_t n, float p, dp_rng *rng);
/* dinp = dout * mask / (1 - p); dinp may == dout. */
void dp_dropout_backward(float *dinp, const float *dout, const uint8_t *mask, size_t n, float p);

/* ---- losses ---------------------------------------------------------------
 * Softmax cross-entropy, mean over the batch:
 *   logits [B, V], labels [B] (0..V-1) -> probs [B, V]; returns the mean
 *   of -log softmax(logits)[b, labels[b]] (computed stably via log-sum-exp). */
float dp_softmax_xent_forward(float *probs, const float *logits, const int *labels, int B, int V);
/* dlogits [B, V] OVERWRITTEN = (probs - onehot(labels)) / B. */
void dp_softmax_xent_backward(float *dlogits, const float *probs, const int *labels, int B, int V);
/* Class-weighted softmax cross-entropy, as PyTorch's
 * cross_entropy(logits, labels, weight=cw): with w_b = cw[labels[b]],
 * returns sum_b w_b * (-log softmax(logits)[b, labels[b]]) / sum_b w_b
 * (0 when that sum is 0) and fills probs [B, V]. cw NULL: the unweighted
 * mean (dp_softmax_xent_forward). */
float dp_softmax_wxent_forward(float *probs, const float *logits, const int *labels, const float *cw, int B,
                               int V);
/* dlogits [B, V] OVERWRITTEN = w_b (probs - onehot(labels)) / sum_b w_b
 * (zeros when that sum is 0); cw NULL: dp_softmax_xent_backward. */
void dp_softmax_wxent_backward(float *dlogits, const float *probs, const int *labels, const float *cw, int B,
                               int V);
/* out [B, V] = log_softmax(logits) row-wise (stable); out may == logits. */
void dp_log_softmax(float *out, const float *logits, int B, int V);

/* Mean squared error, mean over all n elements: sum (pred - target)^2 / n. */
float dp_mse_forward(const float *pred, const float *target, size_t n);
/* dpred [n] OVERWRITTEN = 2 (pred - target) / n. */
void dp_mse_backward(float *dpred, const float *pred, const float *target, size_t n);

/* ---- optimiser -------------------------------------------------------------
 * Adam, PyTorch semantics (torch.optim.Adam, weight_decay 0, amsgrad off):
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *   p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 * t = step number starting at 1; m, v [n] start zeroed and are updated in place. */
void dp_adam_update(float *params, const float *grads, float *m, float *v, size_t n,
                    float lr, float beta1, float beta2, float eps, int t);

/* ---- initialisation ----------------------------------------------------------
 * PyTorch-default init: weights kaiming_uniform(a=sqrt(5)) == U(-1/sqrt(fan_in),
 * 1/sqrt(fan_in)); biases the same bound. w[i] = U(-bound, bound), drawn in
 * order from rng (one dp_rng_float per element). fan_in = C*K (conv), C (linear). */
void dp_init_uniform(float *w, size_t n, float bound, dp_rng *rng);

#endif
