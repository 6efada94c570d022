/* Process groups for data-parallel training (include/eqprop/dist.h): MPI when built with
 * -DEQP_MPI, else one process per group. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eqprop/dist.h"
#include "internal.h"

#ifdef EQP_MPI
#include <limits.h>
#include <mpi.h>
#endif

struct eqp_dist {
    int rank, size;
#ifdef EQP_MPI
    MPI_Comm comm;
#endif
};

static eqp_dist world_group = {0, 1
#ifdef EQP_MPI
                               ,
                               MPI_COMM_NULL
#endif
};
static int world_ready;
static double comm_seconds;

#ifdef EQP_MPI
static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
#endif

int eqp_dist_available(void) {
#ifdef EQP_MPI
    return 1;
#else
    return 0;
#endif
}

#ifdef EQP_MPI
static int we_initialised;

static eqp_status mpi_fail(int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS)
        len = 0;
    msg[len < MPI_MAX_ERROR_STRING ? len : MPI_MAX_ERROR_STRING - 1] = '\0';
    return eqp_fail(EQP_EDIST, "%s: MPI error %d (%s)", what, rc, len ? msg : "?");
}
#endif

eqp_status eqp_dist_init(int *argc, char ***argv, eqp_dist **world) {
    *world = &world_group;
    if (world_ready)
        return EQP_OK;
#ifdef EQP_MPI
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        int provided = 0;
        int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS)
            return mpi_fail(rc, "MPI_Init_thread");
        we_initialised = 1;
    }
    /* errors come back as codes, not aborts, so they can be reported */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    world_group.comm = MPI_COMM_WORLD;
    MPI_Comm_rank(MPI_COMM_WORLD, &world_group.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_group.size);
#else
    (void)argc;
    (void)argv;
#endif
    world_ready = 1;
    return EQP_OK;
}

void eqp_dist_finalize(void) {
#ifdef EQP_MPI
    if (we_initialised) {
        int fin = 0;
        MPI_Finalized(&fin);
        if (!fin)
            MPI_Finalize();
        we_initialised = 0;
    }
    world_group.comm = MPI_COMM_NULL;
#endif
    world_group.rank = 0;
    world_group.size = 1;
    world_ready = 0;
}

int eqp_dist_rank(const eqp_dist *d) {
    return d ? d->rank : 0;
}

int eqp_dist_size(const eqp_dist *d) {
    return d ? d->size : 1;
}

eqp_status eqp_dist_split(const eqp_dist *d, int color, eqp_dist **out) {
    *out = NULL;
    if (color < 0)
        return eqp_fail(EQP_EINVAL, "dist split: color expected >= 0, got %d", color);
    eqp_dist *g = calloc(1, sizeof *g);
    if (!g)
        return eqp_fail(EQP_ENOMEM, "dist split: out of memory");
    g->rank = 0;
    g->size = 1;
#ifdef EQP_MPI
    g->comm = MPI_COMM_NULL;
    if (d && d->size > 1) {
        int rc = MPI_Comm_split(d->comm, color, d->rank, &g->comm);
        if (rc != MPI_SUCCESS) {
            free(g);
            return mpi_fail(rc, "MPI_Comm_split");
        }
        MPI_Comm_set_errhandler(g->comm, MPI_ERRORS_RETURN);
        MPI_Comm_rank(g->comm, &g->rank);
        MPI_Comm_size(g->comm, &g->size);
    }
#else
    (void)d;
#endif
    *out = g;
    return EQP_OK;
}

void eqp_dist_free(eqp_dist *d) {
    if (!d || d == &world_group)
        return;
#ifdef EQP_MPI
    if (d->comm != MPI_COMM_NULL)
        MPI_Comm_free(&d->comm);
#endif
    free(d);
}

#ifdef EQP_MPI
/* MPI counts are ints: large buffers go in pieces */
static eqp_status sum_chunks(const eqp_dist *d, void *buf, size_t n, MPI_Datatype type,
                             size_t esize) {
    double t0 = now_seconds();
    char *p = buf;
    while (n > 0) {
        const int k = n > (size_t)INT_MAX ? INT_MAX : (int)n;
        int rc = MPI_Allreduce(MPI_IN_PLACE, p, k, type, MPI_SUM, d->comm);
        if (rc != MPI_SUCCESS)
            return mpi_fail(rc, "MPI_Allreduce");
        p += (size_t)k * esize;
        n -= (size_t)k;
    }
    comm_seconds += now_seconds() - t0;
    return EQP_OK;
}
#endif

eqp_status eqp_dist_sum_f32(const eqp_dist *d, float *buf, size_t n) {
    if (!d || d->size == 1)
        return EQP_OK;
#ifdef EQP_MPI
    return sum_chunks(d, buf, n, MPI_FLOAT, sizeof(float));
#else
    (void)buf;
    (void)n;
    return EQP_OK;
#endif
}

eqp_status eqp_dist_sum_f64(const eqp_dist *d, double *buf, size_t n) {
    if (!d || d->size == 1)
        return EQP_OK;
#ifdef EQP_MPI
    return sum_chunks(d, buf, n, MPI_DOUBLE, sizeof(double));
#else
    (void)buf;
    (void)n;
    return EQP_OK;
#endif
}

#ifdef EQP_MPI
/* counts and displacements of the P shards of n (n <= INT_MAX checked by the caller) */
static eqp_status shard_counts(const eqp_dist *d, size_t n, int **counts, int **displs) {
    *counts = malloc((size_t)d->size * sizeof **counts);
    *displs = malloc((size_t)d->size * sizeof **displs);
    if (!*counts || !*displs) {
        free(*counts);
        free(*displs);
        return eqp_fail(EQP_ENOMEM, "dist: out of memory for %d shard counts", d->size);
    }
    for (int p = 0; p < d->size; p++) {
        size_t lo, hi;
        eqp_dist_shard(n, p, d->size, &lo, &hi);
        (*counts)[p] = (int)(hi - lo);
        (*displs)[p] = (int)lo;
    }
    return EQP_OK;
}
#endif

eqp_status eqp_dist_reduce_scatter_f32(const eqp_dist *d, float *buf, size_t n) {
    if (!d || d->size == 1)
        return EQP_OK;
#ifdef EQP_MPI
    if (n > (size_t)INT_MAX)
        return eqp_fail(EQP_EDIST, "dist reduce-scatter: %zu values, at most %d", n, INT_MAX);
    int *counts, *displs;
    eqp_status st = shard_counts(d, n, &counts, &displs);
    if (st)
        return st;
    double t0 = now_seconds();
    /* in place, the result lands at the start of buf: moved to the shard's place */
    int rc = MPI_Reduce_scatter(MPI_IN_PLACE, buf, counts, MPI_FLOAT, MPI_SUM, d->comm);
    if (rc == MPI_SUCCESS && displs[d->rank] > 0)
        memmove(buf + displs[d->rank], buf, (size_t)counts[d->rank] * sizeof(float));
    comm_seconds += now_seconds() - t0;
    free(counts);
    free(displs);
    return rc == MPI_SUCCESS ? EQP_OK : mpi_fail(rc, "MPI_Reduce_scatter");
#else
    (void)buf;
    (void)n;
    return EQP_OK;
#endif
}

eqp_status eqp_dist_allgather_f32(const eqp_dist *d, float *buf, size_t n) {
    if (!d || d->size == 1)
        return EQP_OK;
#ifdef EQP_MPI
    if (n > (size_t)INT_MAX)
        return eqp_fail(EQP_EDIST, "dist allgather: %zu values, at most %d", n, INT_MAX);
    int *counts, *displs;
    eqp_status st = shard_counts(d, n, &counts, &displs);
    if (st)
        return st;
    double t0 = now_seconds();
    int rc =
        MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_FLOAT, d->comm);
    comm_seconds += now_seconds() - t0;
    free(counts);
    free(displs);
    return rc == MPI_SUCCESS ? EQP_OK : mpi_fail(rc, "MPI_Allgatherv");
#else
    (void)buf;
    (void)n;
    return EQP_OK;
#endif
}

void eqp_dist_abort(const eqp_dist *d, int code) {
#ifdef EQP_MPI
    if (d && d->size > 1)
        MPI_Abort(d->comm, code);
#else
    (void)d;
    (void)code;
#endif
}

eqp_status eqp_dist_barrier(const eqp_dist *d) {
    if (!d || d->size == 1)
        return EQP_OK;
#ifdef EQP_MPI
    int rc = MPI_Barrier(d->comm);
    return rc == MPI_SUCCESS ? EQP_OK : mpi_fail(rc, "MPI_Barrier");
#else
    return EQP_OK;
#endif
}

double eqp_dist_comm_seconds(void) {
    return comm_seconds;
}

void eqp_dist_reset_comm_seconds(void) {
    comm_seconds = 0.0;
}
