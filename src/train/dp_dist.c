/* dp_dist: the MPI calls of data-parallel training; see dp_dist.h. */
#include "train/dp_dist.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "util/dp_util.h"

/* The world size an MPI launcher gave this process in the environment
 * (Open MPI's mpirun, or a PMI launcher: MPICH, Slurm), 0 when none did. */
static int launcher_size(void)
{
    const char *names[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = getenv(names[i]);
        if (v && *v)
            return atoi(v) > 0 ? atoi(v) : 1;
    }
    return getenv("PMIX_RANK") ? 1 : 0;
}

#ifdef DP_WITH_MPI
#include <mpi.h>

static int joined, rank_, size_ = 1, local_ = 1;

int dp_dist_init(char *errbuf)
{
    if (joined || launcher_size() == 0)
        return 0;
    int provided;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return dp_err(errbuf, "MPI_Init failed (started by mpirun, but the job could not be joined)");
    joined = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &local_);
    MPI_Comm_free(&node);
    return 0;
}

void dp_dist_finish(void)
{
    if (joined)
        MPI_Finalize();
    joined = 0;
}

void dp_dist_abort(int code)
{
    if (joined)
        MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

int dp_dist_rank(void) { return rank_; }
int dp_dist_size(void) { return size_; }
int dp_dist_local_size(void) { return local_; }

/* MPI counts are ints: big buffers go in chunks. */
#define DIST_CHUNK ((size_t)INT_MAX / 2)

void dp_dist_sum_floats(float *v, size_t n)
{
    for (size_t i = 0; size_ > 1 && i < n; i += DIST_CHUNK) {
        size_t c = n - i < DIST_CHUNK ? n - i : DIST_CHUNK;
        MPI_Allreduce(MPI_IN_PLACE, v + i, (int)c, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
}

void dp_dist_sum_doubles(double *v, size_t n)
{
    for (size_t i = 0; size_ > 1 && i < n; i += DIST_CHUNK) {
        size_t c = n - i < DIST_CHUNK ? n - i : DIST_CHUNK;
        MPI_Allreduce(MPI_IN_PLACE, v + i, (int)c, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    }
}

void dp_dist_bcast(void *buf, size_t n)
{
    for (size_t i = 0; size_ > 1 && i < n; i += DIST_CHUNK) {
        size_t c = n - i < DIST_CHUNK ? n - i : DIST_CHUNK;
        MPI_Bcast((char *)buf + i, (int)c, MPI_BYTE, 0, MPI_COMM_WORLD);
    }
}

int dp_dist_all_ok(int ok)
{
    int v = ok != 0;
    if (size_ > 1)
        MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return v;
}

int dp_dist_root_rc(int rc)
{
    if (size_ > 1)
        MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return rc;
}

#else /* one rank, no MPI */

int dp_dist_init(char *errbuf)
{
    if (launcher_size() > 1)
        return dp_err(errbuf, "started by mpirun with %d ranks, but this deeppacket was built without MPI: "
                      "build it with `make MPI=1` (docs/distributed.md)", launcher_size());
    return 0;
}

void dp_dist_finish(void) {}
void dp_dist_abort(int code) { exit(code); }
int dp_dist_rank(void) { return 0; }
int dp_dist_size(void) { return 1; }
int dp_dist_local_size(void) { return 1; }
void dp_dist_sum_floats(float *v, size_t n) { (void)v, (void)n; }
void dp_dist_sum_doubles(double *v, size_t n) { (void)v, (void)n; }
void dp_dist_bcast(void *buf, size_t n) { (void)buf, (void)n; }
int dp_dist_all_ok(int ok) { return ok != 0; }
int dp_dist_root_rc(int rc) { return rc; }

#endif
