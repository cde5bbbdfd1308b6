/* Time of one in-place MPI_Allreduce (sum) of N floats, the gradient
 * buffer of a model with N parameters (docs/distributed.md's scaling model):
 *   mpicc -O2 -o build-mpi/allreduce_time bench/allreduce_time.c
 *   mpirun --oversubscribe -np 2 build-mpi/allreduce_time [N] [REPEATS]
 * Prints the median and the best time and the bus bandwidth (ring
 * allreduce: 2 (K-1)/K * 4N bytes through each rank per call). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long n = argc > 1 ? atol(argv[1]) : 3507311; /* the traffic CNN */
    int reps = argc > 2 ? atoi(argv[2]) : 20;
    float *g = malloc((size_t)n * sizeof(float));
    double *t = malloc((size_t)reps * sizeof(double));
    for (long i = 0; i < n; i++)
        g[i] = 1e-6f * (float)(i % 1000);
    MPI_Allreduce(MPI_IN_PLACE, g, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); /* warm-up */
    for (int r = 0; r < reps; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, g, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        t[r] = MPI_Wtime() - t0;
    }
    qsort(t, (size_t)reps, sizeof(double), cmp);
    if (rank == 0) {
        double bytes = 2.0 * (size - 1) / size * 4.0 * (double)n;
        printf("%d ranks, %ld floats (%.1f MB): median %.2f ms, best %.2f ms, bus bandwidth %.2f GB/s (best)\n", size,
               n, 4e-6 * (double)n, 1e3 * t[reps / 2], 1e3 * t[0], bytes / t[0] / 1e9);
    }
    free(g), free(t);
    MPI_Finalize();
    return 0;
}
