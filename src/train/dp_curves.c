/* dp_curves: training curves, kept as TSV and drawn as PNG (dp_curves.h). */
#include "train/dp_curves.h"

#include <cairo.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/dp_util.h"

#define FONT "DejaVu Sans"
#define SCALE 2.0
#define W (DP_CURVES_PNG_W / SCALE)
#define PANEL_W 320.0
#define PANEL_TOP 56.0
#define PANEL_H 210.0

int dp_curves_add(dp_curves *c, double loss, double acc, double val_loss, double val_acc, char *errbuf)
{
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 32;
        double *v = realloc(c->v, (size_t)cap * 4 * sizeof *v);
        if (!v)
            return dp_err(errbuf, "training curves: out of memory");
        c->v = v, c->cap = cap;
    }
    double *r = c->v + (size_t)c->n * 4;
    r[0] = loss, r[1] = acc, r[2] = val_loss, r[3] = val_acc;
    c->n++;
    return 0;
}

void dp_curves_truncate(dp_curves *c, int n)
{
    if (n >= 0 && n < c->n)
        c->n = n;
}

void dp_curves_free(dp_curves *c)
{
    free(c->v);
    memset(c, 0, sizeof *c);
}

static void put_value(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "\t%.6g", v);
    else
        fprintf(f, "\tnan");
}

int dp_curves_write_tsv(const dp_curves *c, const char *path, char *errbuf)
{
    dp_afile af;
    if (dp_afile_open(&af, path, errbuf) != 0)
        return -1;
    fprintf(af.f, "epoch\tloss\tacc\tval_loss\tval_acc\n");
    for (int i = 0; i < c->n; i++) {
        fprintf(af.f, "%d", i + 1);
        for (int k = 0; k < 4; k++)
            put_value(af.f, c->v[(size_t)i * 4 + k]);
        fputc('\n', af.f);
    }
    return dp_afile_commit(&af, errbuf);
}

int dp_curves_read_tsv(dp_curves *c, const char *path, char *errbuf)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : dp_err(errbuf, "%s: %s", path, strerror(errno));
    char line[512];
    int ln = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        ln++;
        if (ln == 1) {
            if (strncmp(line, "epoch\tloss\tacc\tval_loss\tval_acc", 31) != 0)
                rc = dp_err(errbuf, "%s: line 1: not a training curves file (header)", path);
            continue;
        }
        int e;
        double v[4];
        if (sscanf(line, "%d %lf %lf %lf %lf", &e, &v[0], &v[1], &v[2], &v[3]) != 5 || e != c->n + 1)
            rc = dp_err(errbuf, "%s: line %d: expected epoch %d and four numbers", path, ln, c->n + 1);
        else
            rc = dp_curves_add(c, v[0], v[1], v[2], v[3], errbuf);
    }
    fclose(f);
    return rc;
}

/* ---- the figure ---------------------------------------------------------------- */
typedef struct panel {
    double x0, y0, w, h;   /* plot area */
    double lo, hi;         /* y range */
    int n;                 /* epochs: x from 1 to n */
} panel;

static double px(const panel *p, double x)
{
    return p->n > 1 ? p->x0 + (x - 1) / (p->n - 1) * p->w : p->x0 + p->w / 2;
}

static double py(const panel *p, double y) { return p->y0 + p->h - (y - p->lo) / (p->hi - p->lo) * p->h; }

static void rgb(cairo_t *cr, unsigned c)
{
    cairo_set_source_rgb(cr, ((c >> 16) & 255) / 255.0, ((c >> 8) & 255) / 255.0, (c & 255) / 255.0);
}

static void text_at(cairo_t *cr, double x, double y, double size, double align, const char *s)
{
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
    cairo_text_extents_t te;
    cairo_text_extents(cr, s, &te);
    cairo_move_to(cr, x - te.x_advance * align, y);
    cairo_show_text(cr, s);
}

/* The y range of the finite values of columns ka and kb (may be equal),
 * padded; 0 when there are none. */
static int value_range(const dp_curves *c, int ka, int kb, double *lo, double *hi)
{
    int any = 0, cols[2] = {ka, kb};
    for (int i = 0; i < c->n; i++)
        for (int j = 0; j < (ka == kb ? 1 : 2); j++) {
            double v = c->v[(size_t)i * 4 + cols[j]];
            if (!isfinite(v))
                continue;
            if (!any || v < *lo)
                *lo = v;
            if (!any || v > *hi)
                *hi = v;
            any = 1;
        }
    if (any) {
        double pad = *hi > *lo ? (*hi - *lo) * 0.06 : fmax(fabs(*hi) * 0.1, 0.05);
        *lo -= pad, *hi += pad;
    }
    return any;
}

/* Frame, y ticks with labels, x ticks at whole epochs. */
static void draw_axes(cairo_t *cr, const panel *p)
{
    char buf[32];
    cairo_set_line_width(cr, 1);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_rectangle(cr, p->x0, p->y0, p->w, p->h);
    cairo_stroke(cr);
    for (int k = 0; k <= 4; k++) {
        double v = p->lo + (p->hi - p->lo) * k / 4, y = py(p, v);
        cairo_move_to(cr, p->x0 - 4, y), cairo_line_to(cr, p->x0, y);
        cairo_stroke(cr);
        snprintf(buf, sizeof buf, "%.3g", v);
        text_at(cr, p->x0 - 7, y + 3.5, 10, 1, buf);
    }
    int step = (p->n + 9) / 10;
    for (int e = 1; e <= p->n; e += step ? step : 1) {
        double x = px(p, e);
        cairo_move_to(cr, x, p->y0 + p->h), cairo_line_to(cr, x, p->y0 + p->h + 4);
        cairo_stroke(cr);
        snprintf(buf, sizeof buf, "%d", e);
        text_at(cr, x, p->y0 + p->h + 16, 10, 0.5, buf);
    }
}

/* One series (column k) as a line through its finite points, with markers. */
static void draw_series(cairo_t *cr, const panel *p, const dp_curves *c, int k, unsigned colour)
{
    rgb(cr, colour);
    cairo_set_line_width(cr, 2);
    int open = 0;
    for (int i = 0; i < c->n; i++) {
        double v = c->v[(size_t)i * 4 + k];
        if (!isfinite(v)) {
            open = 0;
            continue;
        }
        if (open)
            cairo_line_to(cr, px(p, i + 1), py(p, v));
        else
            cairo_move_to(cr, px(p, i + 1), py(p, v));
        open = 1;
    }
    cairo_stroke(cr);
    for (int i = 0; i < c->n; i++) {
        double v = c->v[(size_t)i * 4 + k];
        if (isfinite(v)) {
            cairo_arc(cr, px(p, i + 1), py(p, v), 3, 0, 2 * M_PI);
            cairo_fill(cr);
        }
    }
}

static void draw_legend(cairo_t *cr, const panel *p, int validation)
{
    const char *name[2] = {"training", "validation"};
    unsigned colour[2] = {DP_CURVES_TRAIN_RGB, DP_CURVES_VAL_RGB};
    for (int s = 0; s < 1 + validation; s++) {
        double y = p->y0 - 10;
        double x = p->x0 + p->w - 150 + s * 80;
        rgb(cr, colour[s]);
        cairo_rectangle(cr, x, y - 7, 14, 4);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        text_at(cr, x + 18, y - 1, 10, 0, name[s]);
    }
}

/* Panel i (0: loss, columns 0 and 2; 1: accuracy, columns 1 and 3). */
static void draw_panel(cairo_t *cr, const dp_curves *c, int i, const char *xlabel)
{
    panel p = {70 + i * (PANEL_W + 80), PANEL_TOP, PANEL_W, PANEL_H, 0, 1, c->n};
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text_at(cr, p.x0, p.y0 - 10, 13, 0, i ? "accuracy" : "loss");
    text_at(cr, p.x0 + p.w / 2, p.y0 + p.h + 34, 11, 0.5, xlabel);
    if (!value_range(c, i, i + 2, &p.lo, &p.hi) || c->n < 1) {
        p.lo = 0, p.hi = 1;
        draw_axes(cr, &p);
        text_at(cr, p.x0 + p.w / 2, p.y0 + p.h / 2, 12, 0.5, "not measured");
        return;
    }
    draw_axes(cr, &p);
    draw_series(cr, &p, c, i, DP_CURVES_TRAIN_RGB);
    double lo, hi;
    int validation = value_range(c, i + 2, i + 2, &lo, &hi);
    if (validation)
        draw_series(cr, &p, c, i + 2, DP_CURVES_VAL_RGB);
    draw_legend(cr, &p, validation);
}

/* Where cairo's PNG bytes go, and the errno of the write that failed
 * (cairo itself only says "error while writing to output stream"). */
typedef struct png_sink {
    FILE *f;
    int err;
} png_sink;

static cairo_status_t write_cb(void *closure, const unsigned char *data, unsigned int len)
{
    png_sink *s = closure;
    if (fwrite(data, 1, len, s->f) == len)
        return CAIRO_STATUS_SUCCESS;
    s->err = errno ? errno : EIO;
    return CAIRO_STATUS_WRITE_ERROR;
}

int dp_curves_plot(const dp_curves *c, const char *path, const char *title, const char *xlabel, char *errbuf)
{
    dp_afile af;
    if (dp_afile_open(&af, path, errbuf) != 0)
        return -1;
    png_sink sink = {af.f, 0};
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, DP_CURVES_PNG_W, DP_CURVES_PNG_H);
    cairo_status_t st = cairo_surface_status(s);
    if (st == CAIRO_STATUS_SUCCESS) {
        cairo_t *cr = cairo_create(s);
        cairo_scale(cr, SCALE, SCALE);
        cairo_set_source_rgb(cr, 1, 1, 1);
        cairo_paint(cr);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        text_at(cr, W / 2, 22, 14, 0.5, title ? title : "Training curves");
        for (int i = 0; i < 2; i++)
            draw_panel(cr, c, i, xlabel ? xlabel : "epoch");
        st = cairo_status(cr);
        cairo_destroy(cr);
        if (st == CAIRO_STATUS_SUCCESS)
            st = cairo_surface_write_to_png_stream(s, write_cb, &sink);
    }
    cairo_surface_destroy(s);
    if (st != CAIRO_STATUS_SUCCESS) {
        dp_afile_abort(&af);
        return dp_err(errbuf, "%s: cannot draw the training curves: %s", path,
                      sink.err ? strerror(sink.err) : cairo_status_to_string(st));
    }
    return dp_afile_commit(&af, errbuf);
}

/* ---- the training run's files ---------------------------------------------------- */
static void curves_path(char *out, size_t cap, const char *model_path, const char *ext)
{
    snprintf(out, cap, "%s.curves.%s", model_path, ext);
}

/* After a curve file could not be written: warns, and removes the file of
 * an earlier run at path (a regular file), which would pass for this
 * model's curves. */
static void drop_stale(const char *path, const char *why)
{
    struct stat st;
    int stale = lstat(path, &st) == 0 && S_ISREG(st.st_mode) && unlink(path) == 0;
    fprintf(stderr, "warning: %s%s\n", why, stale ? " (the earlier run's file there removed)" : "");
}

void dp_curves_save(const dp_curves *c, const char *model_path, int png, const char *title, const char *xlabel)
{
    char path[4200], errbuf[DP_ERRBUF_SIZE];
    if (dp_path_written_through(model_path))
        return; /* no MODEL.curves.* beside a device or FIFO */
    curves_path(path, sizeof path, model_path, "tsv");
    if (dp_curves_write_tsv(c, path, errbuf) != 0)
        drop_stale(path, errbuf);
    curves_path(path, sizeof path, model_path, "png");
    if (png && dp_curves_plot(c, path, title, xlabel, errbuf) != 0)
        drop_stale(path, errbuf);
}

void dp_curves_resume(dp_curves *c, const char *model_path, int epochs)
{
    char path[4200], errbuf[DP_ERRBUF_SIZE];
    curves_path(path, sizeof path, model_path, "tsv");
    if (dp_curves_read_tsv(c, path, errbuf) != 0)
        fprintf(stderr, "warning: %s: the curves start at epoch %d\n", errbuf, c->n + 1);
    dp_curves_truncate(c, epochs);
    while (c->n < epochs && dp_curves_add(c, NAN, NAN, NAN, NAN, errbuf) == 0)
        ;
}
