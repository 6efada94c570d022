/* eqprop — status codes and error messages.
 *
 * Every fallible call returns an eqp_status and writes its results through out-pointers.
 * On failure the library records a message for the calling thread that names the field,
 * the value and what was expected; read it with eqp_last_error(). The library never
 * prints and never exits. */
#ifndef EQPROP_STATUS_H
#define EQPROP_STATUS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum eqp_status {
    EQP_OK = 0,
    EQP_EINVAL,       /* an argument or configuration value is out of range */
    EQP_ESHAPE,       /* sizes do not agree */
    EQP_ENOMEM,       /* allocation failed or a size computation overflowed */
    EQP_EIO,          /* a file could not be opened, read or written */
    EQP_EFORMAT,      /* a file's contents are malformed */
    EQP_ENONFINITE,   /* NaN or Inf met in states, parameters or an update */
    EQP_ENOCONVERGE,  /* a relaxation did not reach its tolerance */
    EQP_EINTERRUPTED, /* stopped on request (e.g. SIGINT) after a consistent step */
    EQP_EDIST,        /* a collective operation across processes (MPI) failed */
} eqp_status;

/* Short name of a status, e.g. "EQP_EFORMAT". Never NULL. */
const char *eqp_status_name(eqp_status st);

/* Message of the most recent failure in this thread ("" if none). The pointer stays
 * valid until the next failing call in the same thread. */
const char *eqp_last_error(void);

/* Forget the message of the last failure in this thread. */
void eqp_clear_error(void);

/* The memory budget: no single allocation whose size comes from data (a file header, a
 * config, a command line) may exceed it; such an allocation fails with EQP_ENOMEM and a
 * message naming the size and the budget, before anything is allocated. The budget is the
 * value set here, else the environment variable EQPROP_MEMORY_LIMIT (bytes, or a number with
 * K, M, G or T: "4G"), else the machine's physical memory. Set 0 to return to the default. */
void eqp_set_memory_budget(size_t bytes);
size_t eqp_memory_budget(void);

#ifdef __cplusplus
}
#endif
#endif
