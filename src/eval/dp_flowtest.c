/* dp_flowtest: a flow model's verdict per test flow (see dp_flowtest.h). */
#include "eval/dp_flowtest.h"

#include <stdlib.h>
#include <string.h>

#include "flow/dp_flowset.h"

#define FLOWTEST_CHUNK 1024 /* flow rows predicted at once */

static int argmax(const float *lp, int C)
{
    int p = 0;
    for (int c = 1; c < C; c++)
        if (lp[c] > lp[p])
            p = c;
    return p;
}

/* Predicts every flow of fs into r->logprobs and r->pred, chunk by chunk. */
static int predict_all(dp_flowtest *r, dp_model *m, const dp_flowset *fs, char *errbuf)
{
    int C = dp_model_nclasses(m);
    size_t L = (size_t)dp_model_arch(m)->in_len;
    uint64_t chunk = fs->nflows < FLOWTEST_CHUNK ? fs->nflows : FLOWTEST_CHUNK;
    float *x = malloc((chunk ? chunk : 1) * L * sizeof(float));
    uint64_t *idx = malloc((chunk ? chunk : 1) * sizeof(uint64_t));
    int rc = 0;
    if (!x || !idx)
        rc = dp_err(errbuf, "out of memory for %llu flow rows", (unsigned long long)chunk);
    for (uint64_t s = 0; rc == 0 && s < fs->nflows; s += chunk) {
        uint64_t n = fs->nflows - s < chunk ? fs->nflows - s : chunk;
        for (uint64_t i = 0; i < n; i++)
            idx[i] = s + i;
        dp_flowset_rows(fs, idx, n, x);
        float *out = r->logprobs + s * (size_t)C;
        if (dp_model_predict_flows(m, x, (int)n, out, errbuf) != 0) {
            rc = -1;
            break;
        }
        for (uint64_t i = 0; i < n; i++)
            r->pred[s + i] = (int16_t)argmax(out + i * (size_t)C, C);
    }
    free(x), free(idx);
    return rc;
}

int dp_flowtest_run(dp_flowtest *r, dp_model *m, const char *mpath, const dp_splitset *s, const char *dir,
                    char *errbuf)
{
    memset(r, 0, sizeof *r);
    const dp_flowcfg *cfg = dp_model_flowcfg(m);
    if (!cfg)
        return dp_err(errbuf, "%s is a %s packet model: it classifies packets; flow-level testing is for flow "
                              "models (train --model gbt|flow)",
                      mpath, dp_model_kind_name(m));
    dp_flowset fs;
    if (dp_flowset_build(&fs, s, dir, cfg, errbuf) != 0)
        return -1;
    uint64_t nf = fs.nflows ? fs.nflows : 1;
    r->nflows = fs.nflows;
    r->conflicts = fs.label_conflicts;
    r->ids = malloc(nf * sizeof *r->ids);
    r->label = malloc(nf * sizeof *r->label);
    r->pred = malloc(nf * sizeof *r->pred);
    r->npackets = malloc(nf * sizeof *r->npackets);
    r->logprobs = malloc(nf * (size_t)dp_model_nclasses(m) * sizeof *r->logprobs);
    int rc = -1;
    if (!r->ids || !r->label || !r->pred || !r->npackets || !r->logprobs) {
        dp_err(errbuf, "out of memory for %llu flows", (unsigned long long)fs.nflows);
        goto out;
    }
    if (predict_all(r, m, &fs, errbuf) != 0 ||
        dp_eval_init(&r->eval, s->nclasses, (const char *const *)s->names, errbuf) != 0)
        goto out;
    for (uint64_t i = 0; i < fs.nflows; i++) {
        r->ids[i] = fs.flows[i].id;
        r->label[i] = fs.flows[i].label;
        r->npackets[i] = fs.flows[i].npackets;
        r->packets += fs.flows[i].npackets;
        dp_eval_add(&r->eval, r->label[i], r->pred[i]);
    }
    dp_eval_finish(&r->eval);
    rc = 0;
out:
    dp_flowset_free(&fs);
    if (rc != 0)
        dp_flowtest_free(r);
    return rc;
}

void dp_flowtest_free(dp_flowtest *r)
{
    dp_eval_free(&r->eval);
    free(r->ids);
    free(r->label);
    free(r->pred);
    free(r->npackets);
    free(r->logprobs);
    memset(r, 0, sizeof *r);
}
