/* dp_pp_report: preprocess's dataset reports (see dp_pp_report.h). */
#include "dataset/dp_pp_report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset/dp_pp_part.h"
#include "dataset/dp_pp_shard.h"

uint64_t dp_pp_filtered(const capfile *cf)
{
    uint64_t seen = cf->kept;
    for (int v = 0; v < DP_VERDICT_COUNT; v++)
        seen += cf->skipped[v];
    return cf->frames > seen ? cf->frames - seen : 0;
}

/* 1 when some capture of the run had a filter: --filter, or its label row's. */
static int any_filter(const run *r)
{
    return r->filter || r->table.nfilters;
}

uint64_t dp_pp_fingerprint(const run *r)
{
    uint64_t h = dp_fnv1a(DATASET_FORMAT, strlen(DATASET_FORMAT) + 1, DP_FNV_INIT);
    h = dp_fnv1a(r->label_text, strlen(r->label_text) + 1, h);
    h = dp_pp_filter_hash(h, r->filter);
    if (r->o->shard_count) { /* a shard's dataset is not the whole folder's */
        unsigned shard[2] = {r->o->shard_index, r->o->shard_count};
        h = dp_fnv1a(shard, sizeof shard, h);
        /* and its manifest's listing line: a shard is made again when the folder changed */
        uint64_t listing[2] = {r->listing_files, r->listing_hash};
        h = dp_fnv1a(listing, sizeof listing, h);
    }
    for (size_t i = 0; i < r->nfiles; i++) {
        const capfile *cf = &r->files[i];
        h = dp_fnv1a(cf->rel, strlen(cf->rel) + 1, h);
        h = dp_fnv1a(&cf->size, sizeof cf->size, h);
        h = dp_fnv1a(&cf->mtime_ns, sizeof cf->mtime_ns, h);
    }
    return h;
}

static void tsv_field(FILE *f, const char *s)
{
    for (; *s; s++)
        fputc(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s, f);
}

static const char *class_name(const dp_labels *t, int task, int c)
{
    if (c < 0)
        return "-";
    return c < DP_MAX_CLASSES && t->names[task][c] ? t->names[task][c] : "?";
}

void dp_pp_print_listing(const run *r, FILE *f)
{
    size_t labelled[DP_NTASKS] = {0}, filtered = 0;
    fprintf(f, "| capture | %s | %s | filter |\n|---|---|---|---|\n", dp_task_name[0], dp_task_name[1]);
    for (size_t i = 0; i < r->nfiles; i++) {
        const capfile *cf = &r->files[i];
        if (!cf->is_capture)
            continue;
        const char *cells[4] = {cf->rel, class_name(&r->table, 0, cf->cls[0]), class_name(&r->table, 1, cf->cls[1]),
                                cf->filter ? cf->filter : ""};
        for (int c = 0; c < 4; c++) {
            fputs("| ", f);
            dp_md_text(f, cells[c]);
            fputs(c < 3 ? " " : " |\n", f);
        }
        for (int k = 0; k < DP_NTASKS; k++)
            labelled[k] += cf->cls[k] >= 0;
        filtered += cf->filter != NULL;
    }
    fprintf(f, "\n%zu captures (%llu bytes): %zu with an %s label, %zu with a %s label, %zu with a filter; "
               "%zu other files\n", r->ncaptures, (unsigned long long)r->st->capture_bytes, labelled[0],
            dp_task_name[0], labelled[1], dp_task_name[1], filtered, r->nfiles - r->ncaptures);
}

/* summary.md's table of captures (one row each) and the files that are not
 * captures. */
static void write_md_files(FILE *f, const run *r)
{
    const dp_labels *t = &r->table;
    fprintf(f, "## Files\n\n| # | file | app | traffic | frames | kept | status |\n"
               "|---:|---|---|---|---:|---:|---|\n");
    size_t idx = 0;
    for (size_t i = 0; i < r->nfiles; i++) {
        const capfile *cf = &r->files[i];
        if (!cf->is_capture)
            continue;
        fprintf(f, "| %zu | ", idx++);
        dp_md_text(f, cf->rel); /* a file name may hold '|' or a newline */
        for (int k = 0; k < DP_NTASKS; k++) {
            fputs(" | ", f);
            dp_md_text(f, class_name(t, k, cf->cls[k]));
        }
        fprintf(f, " | %llu | %llu | ", (unsigned long long)cf->frames, (unsigned long long)cf->kept);
        dp_md_text(f, cf->status[0] ? cf->status : "ok");
        fputs(" |\n", f);
    }
    if (r->st->not_captures) {
        fprintf(f, "\nSkipped (not a capture): ");
        int first = 1;
        for (size_t i = 0; i < r->nfiles; i++)
            if (!r->files[i].is_capture) {
                fputs(first ? "" : ", ", f);
                dp_md_text(f, r->files[i].rel);
                first = 0;
            }
        fprintf(f, "\n");
    }
}

/* The readable summary: with_files adds the per-file table (summary.md);
 * without it only the files with a warning are listed (the printed one). */
static void write_md(FILE *f, const run *r, int with_files)
{
    const dp_labels *t = &r->table;
    const dp_preprocess_stats *st = r->st;
    fprintf(f, "# deeppacket preprocess summary\n\n");
    fprintf(f, "- source: %s\n", r->src);
    fprintf(f, "- captures: %zu (%zu other files skipped)\n", st->captures, st->not_captures);
    fprintf(f, "- captures with a warning: %zu\n", st->with_warnings);
    if (r->filter)
        fprintf(f, "- filter: %s\n", r->filter);
    if (r->table.nfilters)
        fprintf(f, "- label table rows with a filter: %d\n", r->table.nfilters);
    fprintf(f, "- frames read: %llu\n", (unsigned long long)st->frames);
    fprintf(f, "- packets kept: %llu\n\n", (unsigned long long)st->packets);
    for (int k = 0; k < DP_NTASKS; k++) {
        fprintf(f, "## Packets per %s class\n\n| id | class | packets |\n|---:|---|---:|\n",
                dp_task_name[k]);
        for (int c = 0; c < t->nclasses[k]; c++) {
            fprintf(f, "| %d | ", c);
            dp_md_text(f, class_name(t, k, c)); /* a user's table may name a class with '|' */
            fprintf(f, " | %llu |\n", (unsigned long long)st->per_class[k][c]);
        }
        fprintf(f, "| - | (no label) | %llu |\n\n", (unsigned long long)st->unlabelled[k]);
    }
    fprintf(f, "## Frames skipped\n\n| reason | frames |\n|---|---:|\n");
    for (int v = 1; v < DP_VERDICT_COUNT; v++)
        fprintf(f, "| %s | %llu |\n", dp_verdict_name((dp_verdict)v),
                (unsigned long long)st->skipped[v]);
    if (any_filter(r))
        fprintf(f, "| filtered (%s) | %llu |\n",
                !r->table.nfilters ? "--filter" : r->filter ? "--filter, label table" : "label table",
                (unsigned long long)st->filtered);
    fprintf(f, "\n");
    if (with_files) {
        write_md_files(f, r);
    } else if (st->with_warnings) {
        fprintf(f, "## Captures with a warning\n\n");
        for (size_t i = 0; i < r->nfiles; i++) {
            const capfile *cf = &r->files[i];
            if (cf->is_capture && cf->status[0]) {
                fputs("- ", f);
                dp_md_text(f, cf->rel);
                fputs(": ", f);
                dp_md_text(f, cf->status);
                fputs("\n", f);
            }
        }
        fprintf(f, "\n");
    }
}

static void write_json(FILE *f, const run *r)
{
    const dp_labels *t = &r->table;
    const dp_preprocess_stats *st = r->st;
    uint64_t fp = r->fingerprint;
    fprintf(f, "{\n  \"format\": \"%s\",\n  \"fingerprint\": \"%016llx\",\n", DATASET_FORMAT,
            (unsigned long long)fp);
    fprintf(f, "  \"source\": ");
    dp_json_str(f, r->src);
    if (r->filter) {
        fprintf(f, ",\n  \"filter\": ");
        dp_json_str(f, r->filter);
    }
    if (any_filter(r))
        fprintf(f, ",\n  \"filtered\": %llu", (unsigned long long)st->filtered);
    fprintf(f, ",\n  \"packets\": %llu,\n  \"frames\": %llu,\n  \"captures\": %zu,\n"
               "  \"not_captures\": %zu,\n  \"captures_with_warnings\": %zu,\n"
               "  \"capture_bytes\": %llu,\n",
            (unsigned long long)st->packets, (unsigned long long)st->frames, st->captures,
            st->not_captures, st->with_warnings, (unsigned long long)st->capture_bytes);
    fprintf(f, "  \"skipped\": {");
    for (int v = 1; v < DP_VERDICT_COUNT; v++)
        fprintf(f, "%s\"%s\": %llu", v > 1 ? ", " : "", dp_verdict_name((dp_verdict)v),
                (unsigned long long)st->skipped[v]);
    fprintf(f, "},\n  \"tasks\": {\n");
    for (int k = 0; k < DP_NTASKS; k++) {
        fprintf(f, "    \"%s\": {\"unlabelled\": %llu, \"classes\": [", dp_task_name[k],
                (unsigned long long)st->unlabelled[k]);
        for (int c = 0; c < t->nclasses[k]; c++) {
            fprintf(f, "%s\n      {\"id\": %d, \"name\": ", c ? "," : "", c);
            dp_json_str(f, class_name(t, k, c));
            fprintf(f, ", \"packets\": %llu}", (unsigned long long)st->per_class[k][c]);
        }
        fprintf(f, "]}%s\n", k + 1 < DP_NTASKS ? "," : "");
    }
    fprintf(f, "  },\n  \"files\": [");
    size_t idx = 0;
    for (size_t i = 0; i < r->nfiles; i++) {
        const capfile *cf = &r->files[i];
        if (!cf->is_capture)
            continue;
        fprintf(f, "%s\n    {\"index\": %zu, \"path\": ", idx ? "," : "", idx);
        dp_json_str(f, cf->rel);
        fprintf(f, ", \"app\": %d, \"traffic\": %d, \"frames\": %llu, \"kept\": %llu, \"skipped\": {",
                cf->cls[0], cf->cls[1], (unsigned long long)cf->frames,
                (unsigned long long)cf->kept);
        for (int v = 1; v < DP_VERDICT_COUNT; v++)
            fprintf(f, "%s\"%s\": %llu", v > 1 ? ", " : "", dp_verdict_name((dp_verdict)v),
                    (unsigned long long)cf->skipped[v]);
        fprintf(f, "}");
        if (any_filter(r))
            fprintf(f, ", \"filtered\": %llu", (unsigned long long)dp_pp_filtered(cf));
        if (r->table.nfilters && cf->filter) { /* --filter alone: the same for all, given above */
            fprintf(f, ", \"filter\": ");
            dp_json_str(f, cf->filter);
        }
        fprintf(f, ", \"status\": ");
        dp_json_str(f, cf->status[0] ? cf->status : "ok");
        fprintf(f, "}");
        idx++;
    }
    size_t unreadable = 0;
    for (size_t i = 0; i < r->nfiles; i++)
        unreadable += r->files[i].unreadable;
    fprintf(f, "\n  ],\n  \"unreadable\": %zu,\n  \"not_captures\": [", unreadable);
    int first = 1;
    for (size_t i = 0; i < r->nfiles; i++)
        if (!r->files[i].is_capture) {
            fprintf(f, "%s\n    ", first ? "" : ",");
            dp_json_str(f, r->files[i].rel);
            first = 0;
        }
    fprintf(f, "%s]\n}\n", first ? "" : "\n  ");
}

/* files.tsv: one line per capture, in the order of the arrays' file index. */
static void write_files_tsv(FILE *f, const run *r)
{
    fprintf(f, "index\tpath\tapp\ttraffic\tframes\tkept\tstatus\n");
    size_t idx = 0;
    for (size_t i = 0; i < r->nfiles; i++) {
        const capfile *cf = &r->files[i];
        if (!cf->is_capture)
            continue;
        fprintf(f, "%zu\t", idx++);
        tsv_field(f, cf->rel);
        fprintf(f, "\t%d\t%d\t%llu\t%llu\t", cf->cls[0], cf->cls[1],
                (unsigned long long)cf->frames, (unsigned long long)cf->kept);
        tsv_field(f, cf->status[0] ? cf->status : "ok");
        fputc('\n', f);
    }
}

static void write_summary_md(FILE *f, const run *r)
{
    write_md(f, r, 1);
}

static void write_labels(FILE *f, const run *r)
{
    fputs(r->label_text, f);
}

/* Writes DATASET/name atomically with what `write` prints. */
static int save_report(const run *r, const char *name, void (*write)(FILE *, const run *),
                       char *errbuf)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = dp_memstream_open(&text, &len);
    if (!mem)
        return dp_errno(errbuf, "out of memory");
    write(mem, r);
    if (dp_memstream_close(mem) != 0) {
        free(text);
        return dp_errno(errbuf, "%s: out of memory", name);
    }
    char *p = dp_path_join(r->dst, name);
    int rc = p ? dp_write_file_atomic(p, text, len, errbuf) : dp_err(errbuf, "%s: out of memory", r->dst);
    free(p);
    free(text);
    return rc;
}

/* A shard's manifest (dp_pp_shard.h); any other dataset has none, so that
 * a stale one cannot pass it off as a shard. */
static int save_manifest(const run *r, char *errbuf)
{
    if (r->o->shard_count)
        return save_report(r, DP_SHARD_FILE, dp_pp_shard_write, errbuf);
    char *p = dp_path_join(r->dst, DP_SHARD_FILE);
    int rc = p && (unlink(p) == 0 || errno == ENOENT) ? 0 : dp_errno(errbuf, "%s: cannot remove", p ? p : r->dst);
    free(p);
    return rc;
}

int dp_pp_write_reports(run *r, char *errbuf)
{
    if (save_report(r, DP_FILE_FILES, write_files_tsv, errbuf) != 0 ||
        save_report(r, DP_FILE_LABELS, write_labels, errbuf) != 0 ||
        save_report(r, DP_FILE_SUMMARY_MD, write_summary_md, errbuf) != 0 || save_manifest(r, errbuf) != 0)
        return -1;
    return save_report(r, DP_FILE_SUMMARY_JSON, write_json, errbuf);
}

void dp_pp_print_report(const run *r, FILE *f)
{
    write_md(f, r, 0);
}

void dp_pp_totals(run *r)
{
    dp_preprocess_stats *st = r->st;
    for (size_t i = 0; i < r->nfiles; i++) {
        capfile *cf = &r->files[i];
        if (!cf->is_capture)
            continue;
        st->frames += cf->frames;
        st->packets += cf->kept;
        st->filtered += dp_pp_filtered(cf);
        for (int v = 0; v < DP_VERDICT_COUNT; v++)
            st->skipped[v] += cf->skipped[v];
        if (cf->status[0])
            st->with_warnings++;
        for (int k = 0; k < DP_NTASKS; k++) {
            if (cf->cls[k] >= 0 && cf->cls[k] < DP_MAX_CLASSES)
                st->per_class[k][cf->cls[k]] += cf->kept;
            else
                st->unlabelled[k] += cf->kept;
        }
    }
}
