/* flow_time_split: a time split of a preprocessed dataset for the flow
 * classifier's measurements (docs/accuracy.md, "Flow classifier"), until
 * `split --by time` (branch evalsplit) is merged. Per group (capture file,
 * or with BYCLASS=1 class), the group's flows in order of their first
 * packet; the latest FRAC of them (rounded, at least one of a group of two
 * or more) go to test, the rest to train. No under-sampling. Writes
 * OUT/<task dir>/{train,test} as `split` does.
 *
 *   make build/flow_time_split
 *   build/flow_time_split DATASET OUT TASK(0 app, 1 traffic) BYCLASS(0|1) FRAC
 *
 * A quick tool (quadratic in the flows: fine for iscx-sample's 5,000). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dataset/dp_dataset.h"
typedef struct { uint64_t flow; double t; int grp; int side; } F;
static int cmpf(const void *a, const void *b) { const F *x=a,*y=b; if (x->grp!=y->grp) return x->grp-y->grp; if (x->t!=y->t) return x->t<y->t?-1:1; return x->flow<y->flow?-1:x->flow>y->flow; }
int main(int argc, char **argv) {
    if (argc != 6) { fprintf(stderr, "usage: flow_time_split DATASET OUT TASK(0|1) BYCLASS(0|1) FRAC\n"); return 2; }
    char eb[512]; dp_dataset d;
    if (dp_dataset_open(&d, argv[1], eb)) { puts(eb); return 1; }
    int task = atoi(argv[3]), byclass = atoi(argv[4]); double frac = atof(argv[5]);
    F *fl = calloc(d.n, sizeof *fl); uint64_t nf = 0;
    /* flows: first occurrence (naive hash via sort) */
    int *rowflow = malloc(d.n*sizeof(int));
    for (uint64_t i = 0; i < d.n; i++) {
        if (dp_dataset_label(&d, task, i) < 0) { rowflow[i] = -1; continue; }
        dp_meta m = dp_dataset_meta(&d, i);
        uint64_t j; for (j = 0; j < nf; j++) if (fl[j].flow == m.flow) break;
        if (j == nf) { fl[nf].flow = m.flow; fl[nf].t = m.time; fl[nf].grp = byclass ? dp_dataset_label(&d, task, i) : (int)m.file; nf++; }
        else if (m.time < fl[j].t) fl[j].t = m.time;
        rowflow[i] = (int)j;
    }
    /* sort a copy to decide sides */
    F *s = malloc(nf*sizeof *s); memcpy(s, fl, nf*sizeof *s); qsort(s, nf, sizeof *s, cmpf);
    for (uint64_t a = 0; a < nf;) { uint64_t b = a; while (b < nf && s[b].grp == s[a].grp) b++;
        uint64_t n = b - a, ntest = (uint64_t)(n * frac + 0.5); if (n >= 2 && ntest == 0) ntest = 1;
        for (uint64_t k = a; k < b; k++) s[k].side = (k >= b - ntest);
        a = b; }
    for (uint64_t k = 0; k < nf; k++) for (uint64_t j = 0; j < nf; j++) if (fl[j].flow == s[k].flow) { fl[j].side = s[k].side; break; }
    const char *tdir = task ? "traffic_classification" : "application_classification";
    for (int side = 0; side < 2; side++) {
        char dir[600], p[700]; snprintf(dir, sizeof dir, "%s/%s/%s", argv[2], tdir, side ? "test" : "train");
        dp_mkdirs(dir, eb);
        uint64_t n = 0; for (uint64_t i = 0; i < d.n; i++) if (rowflow[i] >= 0 && fl[rowflow[i]].side == side) n++;
        uint8_t *v = malloc(n*1500); int16_t *l = malloc(n*2); dp_meta *mm = malloc(n*sizeof *mm); uint64_t k = 0;
        for (uint64_t i = 0; i < d.n; i++) if (rowflow[i] >= 0 && fl[rowflow[i]].side == side) {
            memcpy(v+k*1500, dp_dataset_vector(&d, i), 1500); l[k] = (int16_t)dp_dataset_label(&d, task, i); mm[k] = dp_dataset_meta(&d, i); k++; }
        snprintf(p, sizeof p, "%s/vectors.npy", dir); dp_npy_save(p, DP_NPY_U1, 1, 1500, v, n, eb);
        snprintf(p, sizeof p, "%s/labels.npy", dir); dp_npy_save(p, DP_NPY_I2, 2, 0, l, n, eb);
        snprintf(p, sizeof p, "%s/meta.npy", dir); dp_npy_save(p, DP_META_DESCR, sizeof(dp_meta), 0, mm, n, eb);
        snprintf(p, sizeof p, "%s/classes.tsv", dir); FILE *f = fopen(p, "w");
        for (int c = 0; c < d.labels.nclasses[task]; c++) fprintf(f, "%d\t%s\n", c, d.labels.names[task][c] ? d.labels.names[task][c] : "?");
        fclose(f);
        printf("%s: %llu rows\n", dir, (unsigned long long)n);
        free(v); free(l); free(mm);
    }
    return 0;
}
