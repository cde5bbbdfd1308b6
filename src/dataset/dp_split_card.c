/* dp_split_card: the data card of a split task, as JSON and as Markdown;
 * see dp_split.h. */
#include "dataset/dp_split.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>

static void json_class(FILE *f, const dp_split_class *k)
{
    fprintf(f,
            "\"packets\": %" PRIu64 ", \"flows\": %" PRIu64 ", \"train_packets\": %" PRIu64
            ", \"train_flows\": %" PRIu64 ", \"train_kept_packets\": %" PRIu64
            ", \"train_kept_flows\": %" PRIu64 ", \"test_packets\": %" PRIu64
            ", \"test_flows\": %" PRIu64 ", \"shared_flows\": %" PRIu64
            ", \"shared_flows_kept\": %" PRIu64 ", \"groups\": %" PRIu64
            ", \"train_groups\": %" PRIu64 ", \"test_groups\": %" PRIu64,
            k->packets, k->flows, k->train_packets, k->train_flows, k->kept_packets, k->kept_flows,
            k->test_packets, k->test_flows, k->shared_flows, k->shared_flows_kept, k->groups,
            k->train_groups, k->test_groups);
}

/* A time boundary as a JSON number (microseconds kept), null when absent. */
static void json_time(FILE *f, double t)
{
    if (isnan(t))
        fprintf(f, "null");
    else
        fprintf(f, "%.6f", t);
}

void dp_split_card_json(FILE *f, const dp_split_card *c, const char *dataset_dir,
                        const dp_split_opts *o)
{
    fprintf(f, "{\n  \"task\": \"%s\",\n  \"task_dir\": \"%s\",\n  \"dataset\": ",
            dp_task_name[c->task], dp_task_dir[c->task]);
    dp_json_str(f, dataset_dir);
    fprintf(f,
            ",\n  \"options\": {\"by\": \"%s\", %s\"test_size\": %.10g, \"seed\": %" PRIu64
            ", \"under_sampling\": %s},\n",
            dp_split_by_name[o->by], o->by != DP_SPLIT_BY_TIME ? "" : o->time_per_capture ? "\"time_scope\": \"capture\", " : "\"time_scope\": \"class\", ",
            o->test_size, o->seed, o->under_sample ? "true" : "false");
    fprintf(f,
            "  \"dataset_packets\": %" PRIu64 ",\n  \"unlabelled_packets\": %" PRIu64
            ",\n  \"under_sampling_cap\": %" PRIu64 ",\n  \"nclasses\": %d,\n  \"classes\": [\n",
            c->dataset_packets, c->unlabelled, c->cap, c->nclasses);
    for (int k = 0; k < c->nclasses; k++) {
        fprintf(f, "    {\"id\": %d, \"name\": ", k);
        dp_json_str(f, c->names[k] ? c->names[k] : "");
        fprintf(f, ", ");
        json_class(f, &c->cls[k]);
        if (o->by == DP_SPLIT_BY_TIME) {
            fprintf(f, ", \"train_last_start\": ");
            json_time(f, c->cls[k].train_last_start);
            fprintf(f, ", \"test_first_start\": ");
            json_time(f, c->cls[k].test_first_start);
        }
        fprintf(f, "}%s\n", k + 1 < c->nclasses ? "," : "");
    }
    fprintf(f, "  ],\n  \"total\": {");
    json_class(f, &c->total);
    fprintf(f, "}\n}\n");
}

/* The two time-boundary cells of a class row ("-" where a side has no flow). */
static void md_times(FILE *f, const dp_split_class *s)
{
    double t[2] = {s->train_last_start, s->test_first_start};
    for (int j = 0; j < 2; j++)
        if (isnan(t[j]))
            fprintf(f, " - |");
        else
            fprintf(f, " %.6f |", t[j]);
}

void dp_split_card_markdown(FILE *f, const dp_split_card *c, const char *dataset_dir,
                            const dp_split_opts *o)
{
    fprintf(f, "# Data card: %s (task %s)\n\n", dp_task_dir[c->task], dp_task_name[c->task]);
    fprintf(f, "- dataset: %s (%" PRIu64 " packets, %" PRIu64 " with no %s class)\n",
            dataset_dir, c->dataset_packets, c->unlabelled, dp_task_name[c->task]);
    fprintf(f, "- split: by %s%s, test size %g, seed %" PRIu64 "\n", dp_split_by_name[o->by],
            o->by != DP_SPLIT_BY_TIME ? "" : o->time_per_capture ? " (per capture)" : " (per class)", o->test_size,
            o->seed);
    if (o->under_sample)
        fprintf(f, "- training set under-sampled to %" PRIu64 " packets per class; test set not\n",
                c->cap);
    else
        fprintf(f, "- no under-sampling\n");
    fprintf(f, "\nTrain: before under-sampling; kept: the training set as written. "
               "Both sides: flows with packets in train (before) and test.\n\n");
    int files = o->by == DP_SPLIT_BY_FILE, times = o->by == DP_SPLIT_BY_TIME;
    if (times)
        fprintf(f, "Time boundary: the latest training flow of a class starts at \"train until\", "
                   "its earliest test flow at \"test from\" (first packet, seconds since the epoch).\n\n");
    fprintf(f, "| id | class | packets | flows | train pkts | train flows | kept pkts | kept flows "
               "| test pkts | test flows | both sides |%s\n",
            files ? " train files | test files |" : times ? " train until | test from |" : "");
    fprintf(f, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|%s\n",
            files || times ? "---:|---:|" : "");
    for (int k = 0; k <= c->nclasses; k++) {
        const dp_split_class *s = k < c->nclasses ? &c->cls[k] : &c->total;
        if (k < c->nclasses) {
            fprintf(f, "| %d | ", k);
            dp_md_text(f, c->names[k]);
            fputc(' ', f);
        } else {
            fprintf(f, "| | **total** ");
        }
        fprintf(f,
                "| %" PRIu64 " | %" PRIu64 " | %" PRIu64 " | %" PRIu64 " | %" PRIu64 " | %" PRIu64
                " | %" PRIu64 " | %" PRIu64 " | %" PRIu64 " |",
                s->packets, s->flows, s->train_packets, s->train_flows, s->kept_packets,
                s->kept_flows, s->test_packets, s->test_flows, s->shared_flows);
        if (files)
            fprintf(f, " %" PRIu64 " | %" PRIu64 " |", s->train_groups, s->test_groups);
        if (times && k < c->nclasses)
            md_times(f, s);
        else if (times)
            fprintf(f, " | |");
        fputc('\n', f);
    }
    int note = 0;
    for (int k = 0; k < c->nclasses; k++) {
        const dp_split_class *s = &c->cls[k];
        const char *why = NULL;
        if (!s->packets)
            why = "no labelled packets (in neither set)";
        else if (!s->train_packets)
            why = "no training packets (the model cannot learn it)";
        else if (!s->test_packets)
            why = "no test packets (it cannot be evaluated)";
        if (why) {
            if (!note++)
                fputc('\n', f);
            fprintf(f, "- class %d (", k);
            dp_md_text(f, c->names[k]);
            fprintf(f, "): %s\n", why);
        }
    }
    fputc('\n', f);
}
