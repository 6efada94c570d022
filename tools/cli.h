/* Shared pieces of the `eqprop` subcommands: strict option parsing, progress, logs. */
#ifndef EQP_CLI_H
#define EQP_CLI_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>

#include "eqprop/config.h"

#define EXIT_RUNTIME     1
#define EXIT_USAGE       2
#define EXIT_INTERRUPTED 130

/* Options of a subcommand: name (without "--"), whether it takes a value, help text. */
typedef struct cli_opt {
    const char *name;
    int takes_value;
    const char *help;
} cli_opt;

/* Find opt for argv[i] ("--name value" or "--name=value"); on success *value points at the
 * value (or NULL for flags) and *i is advanced past what was used. Returns the opt index,
 * or -1 after printing a usage error naming the argument. */
int cli_next(const cli_opt *opts, int argc, char **argv, int *i, const char **value,
             const char *cmd);

/* Strict numbers: print "--flag: expected ..., got '...'" on stderr and return -1 on error. */
int cli_parse_size(const char *flag, const char *v, size_t *out);
int cli_parse_int(const char *flag, const char *v, long lo, long hi, long *out);

void cli_print_opts(FILE *f, const cli_opt *opts);

/* Progress bar on stderr when it is a terminal (no-op otherwise). */
void cli_progress(void *ctx, size_t done, size_t total, double running_error);
void cli_progress_clear(void);

/* SIGINT/SIGTERM set this flag (installed by cli_install_signals). */
extern volatile sig_atomic_t cli_stop;
void cli_install_signals(void);

/* An output file written atomically: to "<path>.tmp.<pid>", then flushed, synced and renamed
 * over path, so a failed run never leaves a partial file where the result should be. */
typedef struct cli_out {
    FILE *f;
    char *tmp;
    const char *path;
} cli_out;

/* Open the temporary file. On failure print "eqprop <cmd>: <flag>: cannot open '<path>' for
 * writing: <reason>" and return -1 (o->f is NULL then). */
int cli_out_open(cli_out *o, const char *path, const char *cmd, const char *flag);
/* ok != 0: check for write errors and rename into place; ok == 0 (or any error): remove the
 * temporary file. Returns 0 when the file is in place; prints "eqprop <cmd>: <flag>: error
 * writing '<path>'" when ok was set and the write failed. A no-op on an unopened o. */
int cli_out_close(cli_out *o, int ok, const char *cmd, const char *flag);

/* Print an error from the library: "eqprop <cmd>: <message>". */
void cli_error(const char *cmd, const char *what);

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_gradcheck(int argc, char **argv);
/* Windowed spiking EP on the sequence task (cmd_sep.c). */
int cmd_sep_sequence(int argc, char **argv);
/* Spiking networks (cmd_train_snn.c): chosen by cmd_train / cmd_eval for snn-* presets and
 * SNN model files. */
int cmd_train_snn(int argc, char **argv);
/* e-prop on the drifting decoding stream (cmd_online.c; eqprop train --preset eprop-online). */
int cmd_train_online(int argc, char **argv);
int cmd_eval_snn(const char *model, const char *data, const char *split, size_t limit, int threads,
                 int json);
/* NIR (cmd_export.c): eqprop export --nir, eqprop eval --nir (cmd_eval dispatches when
 * cli_wants_nir); plots (cmd_plot.c). */
int cmd_export(int argc, char **argv);
int cmd_eval_nir(int argc, char **argv);
int cli_wants_nir(int argc, char **argv);
int cmd_plot(int argc, char **argv);
/* eqprop delay-sweep (cmd_delay.c): the stability boundary of delayed coupling. */
int cmd_delay_sweep(int argc, char **argv);

/* Backprop (cmd_train_bp.c): chosen by cmd_train for --learner bp, bp-* presets and bp
 * checkpoints, and by cmd_eval for bp network files. */
int cmd_train_bp(int argc, char **argv);
int cmd_eval_bp(const char *model, const char *data, const char *split, size_t limit, int threads,
                int json);

/* Hopfield memory (cmd_hopfield.c): `eqprop hopfield`, and cmd_train for hopfield-* presets. */
int cmd_hopfield(int argc, char **argv);

/* Data-parallel runs (mpirun -np P eqprop train ...): the process group a training command
 * trains in (main sets the world for `train`; `sweep` sets each configuration's sub-group).
 * Only the group's rank 0 prints, logs and writes files; cli_rank0() says whether this
 * process is it. NULL: this process alone. */
struct eqp_dist;
extern struct eqp_dist *cli_group;
int cli_rank0(void);
/* Whether any process of the group has cli_stop set (a collective: every process calls it
 * at the same point). */
int cli_group_stop(void);
/* A process of a group that fails alone (rc neither 0 nor EXIT_INTERRUPTED) ends the whole
 * group (MPI_Abort), since the others would wait for it forever. No-op alone. */
void cli_group_fail(int rc);

/* --on-diverge: after EQP_ENONFINITE (the trainer is back at the failed run's start),
 * either stop, writing the last good model to `save` (or "eqprop-last-good.eqp") and, with a
 * checkpoint path, a resumable checkpoint there; or (reduce-lr) retry with every learning rate
 * halved, up to `retries` times. Returns 1 to retry, 0 to stop. Rank 0 alone writes. */
typedef struct cli_diverge {
    int reduce, retries;
} cli_diverge;
int cli_parse_diverge(const char *flag, const char *v, cli_diverge *d);
/* The messages of both outcomes (rank 0 calls them): a retry with the new rates (text), or
 * where the last good model (and the checkpoint, if ckpt) went; a failed write is reported
 * as the library's error. */
void cli_diverge_retrying(const char *rates, int retries_left);
void cli_diverge_saved(const char *what, const char *path, int ok, const char *ckpt, int ckpt_ok);

/* The last training run's summary (set by each trainer command's rank 0; read by sweep). */
typedef struct cli_summary {
    int valid, epochs;
    double train_error, test_error, seconds; /* seconds: training time summed over epochs */
} cli_summary;
extern cli_summary cli_last;

/* Parameter sweeps over rank groups (cmd_sweep.c). */
int cmd_sweep(int argc, char **argv);

#endif
