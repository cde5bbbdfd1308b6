/* dp_dist: data-parallel training over MPI (issue 13, part 2); the only
 * module that calls MPI. Built with MPI when DP_WITH_MPI is defined
 * (`make MPI=1`: mpicc); otherwise a stub of one rank that refuses to run
 * under mpirun. See docs/distributed.md.
 *
 * Collective calls (sum, bcast, all_ok, root_rc) must be made by every rank
 * in the same order. MPI errors abort the job (MPI's default handler). */
#ifndef DP_DIST_H
#define DP_DIST_H

#include <stddef.h>

/* Joins the job when the process was started by an MPI launcher (mpirun,
 * mpiexec, srun: OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK in the
 * environment); otherwise one rank, no MPI. Without MPI in the build, a
 * launcher's world size above 1 is an error: -1 + message saying to build
 * with `make MPI=1`. 0 on success; idempotent. */
int dp_dist_init(char *errbuf);
/* Leaves the job (MPI_Finalize) if dp_dist_init joined one. */
void dp_dist_finish(void);
/* Ends every rank of the job with exit status code (MPI_Abort); without a
 * job, exit(code). For a failure the other ranks cannot know of. */
void dp_dist_abort(int code);

int dp_dist_rank(void); /* 0 .. size-1; 0 without a job */
int dp_dist_size(void); /* ranks in the job; 1 without one */
/* Ranks of the job on this machine (1 without a job): the share of the
 * CPUs a rank's threads should take. */
int dp_dist_local_size(void);

/* In place: v[i] = the sum over ranks of v[i] (MPI_Allreduce). Floats: the
 * training gradients; doubles: step statistics. Nothing with one rank. */
void dp_dist_sum_floats(float *v, size_t n);
void dp_dist_sum_doubles(double *v, size_t n);
/* Rank 0's n bytes at buf into every rank's buf (MPI_Bcast). */
void dp_dist_bcast(void *buf, size_t n);
/* 1 when ok is non-zero on every rank, else 0 (on every rank). */
int dp_dist_all_ok(int ok);
/* Rank 0's rc on every rank (the result of an action only rank 0 takes:
 * writing a checkpoint or the model). */
int dp_dist_root_rc(int rc);

#endif
