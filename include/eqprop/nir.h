/* eqprop — NIR (the Neuromorphic Intermediate Representation, Pedersen et al., Nat. Commun.
 * 2024) files of spiking networks, through libhdf5.
 *
 * The file layout (what neuromorphs/NIR's reader and writer use):
 *   /version                 a string dataset
 *   /node/type               "NIRGraph"
 *   /node/nodes/<name>/      one group per node: a string dataset `type` and one dataset per
 *                            parameter, with NIR's field names (never attributes)
 *   /node/edges              an N x 2 string dataset of (source, target) node names
 *   /node/metadata/          optional datasets (eqprop writes its own, below)
 * A node of type NIRGraph nests a graph (eqprop writes a recurrent layer as one). Strings may be
 * variable- or fixed-length, numbers float32, float64 or integers; arrays are written
 * gzip-compressed in one chunk.
 *
 * The nodes eqprop reads and writes, per layer l (PyTorch's layouts; no batch dimension):
 *   Input  shape (C, H, W) or (N)          Output shape
 *   Affine weight (N_out, N_in), bias      Linear weight (no bias)
 *   Conv2d weight (C_out, C_in, K, K), bias (C_out), stride, padding (ints or "same" /
 *          "valid"), dilation (1), groups (1), input_shape (H, W) (optional)
 *   AvgPool2d / SumPool2d kernel_size, stride (= kernel_size), padding (0)
 *   Flatten start_dim, end_dim, input_type (the whole non-batch shape is flattened)
 *   LIF     tau, r, v_leak, v_threshold, v_reset (optional, 0)
 *   CubaLIF tau_syn, tau_mem, r, v_leak (0), v_threshold, v_reset (0), w_in (optional, 1)
 *   IF      r, v_threshold, v_reset (0)
 *   LI      tau, r, v_leak                (a non-spiking readout)
 * and a recurrent layer as a nested NIRGraph {input -> neuron, neuron -> w_rec (Linear or
 * Affine, the neuron's own output one step late), w_rec -> neuron, neuron -> output}, which is
 * also how snnTorch's RLeaky exports.
 *
 * Discretisation. NIR neurons are continuous in time: tau dv/dt = (v_leak - v) + r I. eqprop
 * steps v_t = alpha v_{t-1} + I_t (snn.h); a step lasts dt seconds, and
 *   forward Euler (the default):   alpha = 1 - dt / tau,    tau = dt / (1 - alpha)
 *   exact for a held input ("exp"): alpha = exp(-dt / tau),  tau = -dt / ln(alpha)
 * In both, a step adds (1 - alpha) (r I + v_leak) to v: eqprop writes r = 1 / (1 - alpha) and
 * v_leak = 0, so that the input enters with gain 1, and on reading folds the gain (1 - alpha) r
 * into the weights and bias of the synapse in front (and (1 - alpha) v_leak into its bias).
 * IF (alpha = 1): a step adds dt r I (r = 1 / dt on export). CubaLIF: alpha_s from tau_syn the
 * same way; the synapse's gain (1 - alpha_s) w_in (eqprop writes w_in = 1 / (1 - alpha_s)) is
 * folded in too (v_leak must be 0 there). SumPool2d over P x P reads as average pooling with
 * the synapse scaled by P^2. A layer whose decays are all 1 is written as IF.
 *
 * Resets. NIR's spiking neurons reset to v_reset when they fire: eqprop's reset "zero" (to v_r,
 * taking effect on the next step, which gives the same spikes). eqprop's reset "subtract" has
 * no NIR field: it is written to the metadata (eqprop_reset), and a file without that entry
 * reads as reset "zero". The metadata also holds eqprop_dt, eqprop_decay_map ("euler" | "exp")
 * and eqprop_config (the network's full config text, so that eqprop reads back the encoder,
 * steps and loss it was trained with).
 *
 * What eqprop cannot express is an error naming the node: max pooling, refractory periods,
 * adaptive (alif) and two-compartment neurons, smooth mode (export); unknown node types,
 * branches, skip connections, Delay / Scale / Threshold nodes, shapes that disagree along an
 * edge, more than one hidden neuron model, a tau that gives a decay outside [0, 1] (import). */
#ifndef EQPROP_NIR_H
#define EQPROP_NIR_H

#include <stddef.h>

#include "eqprop/snn.h"
#include "eqprop/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum eqp_nir_decay {
    EQP_NIR_DECAY_FILE = -1, /* import only: the file's eqprop_decay_map, else Euler */
    EQP_NIR_DECAY_EULER = 0, /* alpha = 1 - dt / tau */
    EQP_NIR_DECAY_EXP = 1,   /* alpha = exp(-dt / tau) */
} eqp_nir_decay;

typedef struct eqp_nir_opts {
    double dt;            /* seconds per step; import: 0 = the file's eqprop_dt, else 1e-3 [1e-3
                             for export, 0 for import] */
    eqp_nir_decay decay;  /* [euler for export, file for import] */
    const char *config;   /* import: "key=value" lines applied after the file's eqprop_config
                             (e.g. "steps=25\nencoder=rate\nreset=subtract"); NULL: none */
} eqp_nir_opts;

/* What an import used. */
typedef struct eqp_nir_info {
    double dt;
    eqp_nir_decay decay;
    int config_from_file; /* 1: the file carried eqprop_config */
    int n_nodes;          /* nodes read, nested graphs included */
    char version[32];     /* the file's NIR version string */
} eqp_nir_info;

void eqp_nir_opts_default_export(eqp_nir_opts *o);
void eqp_nir_opts_default_import(eqp_nir_opts *o);

/* Write n as a NIR graph to path (temporary file + rename). EQP_EINVAL naming the layer if the
 * network has something NIR cannot express (above); EQP_EIO on write errors. */
eqp_status eqp_nir_export(const char *path, const eqp_snn *n, const eqp_nir_opts *o);

/* Read the NIR graph in path into a new network (*out, free with eqp_snn_free). Its config
 * starts from eqp_snn_config_default, then the file's eqprop_config, then o->config; the graph
 * sets sizes, neuron, out_neuron and the parameters. info may be NULL. EQP_EIO / EQP_EFORMAT
 * (file or layout, naming the node and field), EQP_EINVAL (a node eqprop cannot run),
 * EQP_ESHAPE (shapes along an edge). */
eqp_status eqp_nir_import(const char *path, const eqp_nir_opts *o, eqp_snn **out,
                          eqp_nir_info *info);

/* eqp_nir_import above runs libhdf5 in the calling process, and libhdf5 (1.10.8 at least) is
 * not robust to malformed files: some crash it (SIGSEGV, heap overflows inside its global-heap
 * reader), hang it in an endless loop or make it allocate hundreds of GB (docs/RELIABILITY.md).
 * Use it only on files you trust (ones eqprop wrote, say). For any other file use: */

/* eqp_nir_import in a child process (fork), so that whatever libhdf5 does on a hostile file
 * ends as a status with a message. The child lowers its limits (no core file; CPU time
 * ceil(timeout_s) + 1 s; with mem_limit_bytes > 0, RLIMIT_AS at its current address space plus
 * mem_limit_bytes, so an absurd allocation fails inside the child), imports, writes the network
 * as an eqprop SNN file (eqp_snn_save) to a temporary file in $TMPDIR (else /tmp) and sends the
 * status, message and info through a pipe; then it _exits (no atexit handler, no stdio flush).
 * The parent waits at most timeout_s seconds of wall time, then kills the child (SIGKILL),
 * reads the network back with eqp_snn_load (CRC, config and finiteness checks) and removes the
 * temporary file. The result equals eqp_nir_import's: same config, bit-identical parameters.
 * Arguments as eqp_nir_import; timeout_s in (0, 1e6]. Errors: the child's own status and
 * message, unchanged, when the import failed normally; and, naming the file:
 *   EQP_EFORMAT  libhdf5 crashed (the child died by a signal: "libhdf5 crashed with signal 11
 *                (Segmentation fault) while reading the NIR file") or exited without a result;
 *   EQP_EIO      timed out ("timed out after 30 s") or over its CPU time, a truncated result,
 *                no temporary file or pipe;
 *   EQP_ENOMEM   the child was killed by SIGKILL not sent by us (the out-of-memory killer), or
 *                fork failed for lack of memory;
 *   EQP_EINVAL   a bad timeout_s.
 * *out is NULL on failure. The child only reads: it closes none of the caller's descriptors,
 * flushes none of its streams and changes nothing the parent sees, but it is a fork of a
 * possibly multi-threaded process, so call this where no other thread holds a lock the import
 * needs (libhdf5's or a stdio stream's); eqprop's command calls it before starting threads.
 * POSIX systems only. If the caller itself is killed during the call, the temporary file
 * ($TMPDIR/eqprop-nir-XXXXXX) stays behind. */
eqp_status eqp_nir_import_isolated(const char *path, const eqp_nir_opts *o, eqp_snn **out,
                                   eqp_nir_info *info, double timeout_s, size_t mem_limit_bytes);

#ifdef __cplusplus
}
#endif
#endif
