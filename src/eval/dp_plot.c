/* dp_eval_plot: the row-normalised confusion matrix figure, drawn with
 * cairo to PDF (vector) or PNG (2x scale). Rows are true labels, columns
 * predicted labels; each cell is shaded (matplotlib's "Blues") and shows
 * its value with two decimals. Cell size follows the number of classes and
 * the margins follow the longest class name, so 11 or 15 classes with names
 * like "VPN: File Transfer" read at a glance. */
#include "eval/dp_eval.h"

#include <cairo-pdf.h>
#include <cairo.h>
#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FONT "DejaVu Sans"
#define PNG_SCALE 2.0
#define MAX_LABEL_CHARS 40

/* matplotlib's Blues colormap, 9 stops from 0 to 1. */
static const double blues[9][3] = {
    {0xf7, 0xfb, 0xff}, {0xde, 0xeb, 0xf7}, {0xc6, 0xdb, 0xef}, {0x9e, 0xca, 0xe1},
    {0x6b, 0xae, 0xd6}, {0x42, 0x92, 0xc6}, {0x21, 0x71, 0xb5}, {0x08, 0x51, 0x9c},
    {0x08, 0x30, 0x6b},
};

static void shade(double v, double rgb[3])
{
    if (!(v >= 0))
        v = 0;
    if (v > 1)
        v = 1;
    double x = v * 8;
    int i = (int)x;
    if (i >= 8)
        i = 7;
    double f = x - i;
    for (int k = 0; k < 3; k++)
        rgb[k] = (blues[i][k] + (blues[i + 1][k] - blues[i][k]) * f) / 255.0;
}

/* A display copy of a class name: at most MAX_LABEL_CHARS code points,
 * "..." when cut, control characters as spaces. */
static char *display_name(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 4);
    if (!d)
        return NULL;
    size_t o = 0;
    int cps = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch & 0xC0) != 0x80 && ++cps > MAX_LABEL_CHARS) {
            memcpy(d + o, "...", 3);
            o += 3;
            break;
        }
        d[o++] = ch < 0x20 ? ' ' : (char)ch;
    }
    d[o] = 0;
    return d;
}

typedef struct layout {
    int n;              /* classes shown */
    int *cls;           /* their ids */
    char **label;       /* display names */
    double cell, label_size, value_size, title_size, axis_size;
    double label_w;     /* widest class name at label_size */
    double mx, my;      /* top-left corner of the matrix */
    double width, height;
    double bar_x, bar_w;
} layout;

static void set_font(cairo_t *cr, double size, int bold)
{
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

static double text_w(cairo_t *cr, const char *s)
{
    cairo_text_extents_t te;
    cairo_text_extents(cr, s, &te);
    return te.x_advance;
}

static void layout_free(layout *L)
{
    if (L->label)
        for (int i = 0; i < L->n; i++)
            free(L->label[i]);
    free(L->label);
    free(L->cls);
}

static int layout_make(layout *L, const dp_eval *e, const char *title)
{
    memset(L, 0, sizeof *L);
    L->cls = calloc((size_t)e->nclasses, sizeof *L->cls);
    L->label = calloc((size_t)e->nclasses, sizeof *L->label);
    if (!L->cls || !L->label)
        return -1;
    int any = 0;
    for (int c = 0; c < e->nclasses; c++)
        any |= e->cls && e->cls[c].listed;
    for (int c = 0; c < e->nclasses; c++)
        if (!any || e->cls[c].listed) {
            L->cls[L->n] = c;
            if (!(L->label[L->n] = display_name(e->names[c])))
                return -1;
            L->n++;
        }
    int n = L->n;
    L->cell = 560.0 / n;
    if (L->cell > 64)
        L->cell = 64;
    if (L->cell < 30)
        L->cell = 30;
    L->label_size = n <= 12 ? 11 : 10;
    L->value_size = fmin(L->cell * 0.31, 13);
    L->title_size = 13;
    L->axis_size = 11;

    /* Measure on a scratch surface. */
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 1, 1);
    cairo_t *cr = cairo_create(s);
    set_font(cr, L->label_size, 0);
    for (int i = 0; i < n; i++) {
        double w = text_w(cr, L->label[i]);
        if (w > L->label_w)
            L->label_w = w;
    }
    set_font(cr, L->title_size, 1);
    double title_w = title ? text_w(cr, title) : 0;
    cairo_destroy(cr);
    cairo_surface_destroy(s);

    const double pad = 18, gap = 8;
    double side = n * L->cell;
    /* Left: axis title (rotated), names right-aligned against the matrix;
     * the first column's rotated name reaches left by label_w * cos 45. */
    double left = pad + L->axis_size * 1.6 + L->label_w + gap;
    double reach = pad + L->label_w * M_SQRT1_2 + L->label_size - L->cell / 2;
    if (reach > left)
        left = reach;
    double top = pad + L->title_size * 2.2;
    double below = gap + L->label_w * M_SQRT1_2 + L->label_size * 1.2 + L->axis_size * 2.4 + pad;
    double right = 22 + 14 + 34 + pad; /* gap, colour bar, tick labels */
    L->mx = left;
    L->my = top;
    L->bar_x = left + side + 22;
    L->bar_w = 14;
    L->width = left + side + right;
    L->height = top + side + below;
    if (title_w + 2 * pad > L->width) { /* keep the title on the page */
        double extra = title_w + 2 * pad - L->width;
        L->mx += extra / 2;
        L->bar_x += extra / 2;
        L->width += extra;
    }
    L->width = ceil(L->width);
    L->height = ceil(L->height);
    return 0;
}

/* White page, the title centred on it. */
static void draw_title(cairo_t *cr, const layout *L, const char *title)
{
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    set_font(cr, L->title_size, 1);
    double tw = text_w(cr, title);
    cairo_move_to(cr, (L->width - tw) / 2, 18 + L->title_size);
    cairo_show_text(cr, title);
}

/* Cells and values. */
static void draw_cells(cairo_t *cr, const layout *L, const dp_eval *e)
{
    char buf[16];
    for (int i = 0; i < L->n; i++)
        for (int j = 0; j < L->n; j++) {
            double v = dp_eval_norm(e, L->cls[i], L->cls[j]);
            double rgb[3];
            shade(v, rgb);
            double x = L->mx + j * L->cell, y = L->my + i * L->cell;
            cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
            cairo_rectangle(cr, x, y, L->cell, L->cell);
            cairo_fill(cr);
            snprintf(buf, sizeof buf, "%.2f", v);
            set_font(cr, L->value_size, i == j);
            double w = text_w(cr, buf);
            if (v > 0.5)
                cairo_set_source_rgb(cr, 1, 1, 1);
            else
                cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
            cairo_move_to(cr, x + (L->cell - w) / 2, y + L->cell / 2 + L->value_size * 0.36);
            cairo_show_text(cr, buf);
        }
}

/* Thin grid and frame. */
static void draw_grid(cairo_t *cr, const layout *L)
{
    double side = L->n * L->cell;
    cairo_set_line_width(cr, 0.5);
    cairo_set_source_rgba(cr, 1, 1, 1, 0.8);
    for (int k = 1; k < L->n; k++) {
        cairo_move_to(cr, L->mx + k * L->cell, L->my);
        cairo_line_to(cr, L->mx + k * L->cell, L->my + side);
        cairo_move_to(cr, L->mx, L->my + k * L->cell);
        cairo_line_to(cr, L->mx + side, L->my + k * L->cell);
    }
    cairo_stroke(cr);
    cairo_set_line_width(cr, 0.8);
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_rectangle(cr, L->mx, L->my, side, side);
    cairo_stroke(cr);
}

/* Row names (true labels), right-aligned, and column names (predicted
 * labels), rotated 45 degrees, ending under their column; the tick marks of
 * both are stroked together at the end. */
static void draw_class_names(cairo_t *cr, const layout *L)
{
    double side = L->n * L->cell;
    set_font(cr, L->label_size, 0);
    cairo_set_source_rgb(cr, 0, 0, 0);
    for (int i = 0; i < L->n; i++) {
        double yc = L->my + (i + 0.5) * L->cell;
        double w = text_w(cr, L->label[i]);
        cairo_move_to(cr, L->mx - 7 - w, yc + L->label_size * 0.36);
        cairo_show_text(cr, L->label[i]);
        cairo_move_to(cr, L->mx - 4, yc);
        cairo_line_to(cr, L->mx, yc);
    }
    for (int j = 0; j < L->n; j++) {
        double xc = L->mx + (j + 0.5) * L->cell;
        double y0 = L->my + side;
        cairo_move_to(cr, xc, y0);
        cairo_line_to(cr, xc, y0 + 4);
        cairo_save(cr);
        cairo_translate(cr, xc + L->label_size * 0.25, y0 + 7);
        cairo_rotate(cr, -M_PI / 4);
        double w = text_w(cr, L->label[j]);
        cairo_move_to(cr, -w, L->label_size * 0.36);
        cairo_show_text(cr, L->label[j]);
        cairo_restore(cr);
    }
    cairo_set_line_width(cr, 0.8);
    cairo_stroke(cr);
}

/* Axis titles: predicted under the matrix, true rotated on the left. */
static void draw_axis_titles(cairo_t *cr, const layout *L)
{
    double side = L->n * L->cell;
    set_font(cr, L->axis_size, 1);
    const char *xt = "Predicted label", *yt = "True label";
    double w = text_w(cr, xt);
    cairo_move_to(cr, L->mx + (side - w) / 2,
                  L->my + side + 8 + L->label_w * M_SQRT1_2 + L->label_size * 1.2 +
                      L->axis_size * 1.4);
    cairo_show_text(cr, xt);
    w = text_w(cr, yt);
    cairo_save(cr);
    cairo_translate(cr, 18 + L->axis_size, L->my + (side + w) / 2);
    cairo_rotate(cr, -M_PI / 2);
    cairo_move_to(cr, 0, 0);
    cairo_show_text(cr, yt);
    cairo_restore(cr);
}

/* Colour bar: 1 at the top, 0 at the bottom, with ticks every 0.2. */
static void draw_colour_bar(cairo_t *cr, const layout *L)
{
    double side = L->n * L->cell;
    cairo_pattern_t *g = cairo_pattern_create_linear(0, L->my + side, 0, L->my);
    for (int k = 0; k < 9; k++)
        cairo_pattern_add_color_stop_rgb(g, k / 8.0, blues[k][0] / 255, blues[k][1] / 255,
                                         blues[k][2] / 255);
    cairo_rectangle(cr, L->bar_x, L->my, L->bar_w, side);
    cairo_set_source(cr, g);
    cairo_fill_preserve(cr);
    cairo_pattern_destroy(g);
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_set_line_width(cr, 0.6);
    cairo_stroke(cr);
    set_font(cr, 9, 0);
    cairo_set_source_rgb(cr, 0, 0, 0);
    char buf[16];
    for (int k = 0; k <= 5; k++) {
        double y = L->my + side - side * k / 5.0;
        cairo_move_to(cr, L->bar_x + L->bar_w, y);
        cairo_line_to(cr, L->bar_x + L->bar_w + 3, y);
        snprintf(buf, sizeof buf, "%.1f", k / 5.0);
        cairo_move_to(cr, L->bar_x + L->bar_w + 5, y + 9 * 0.36);
        cairo_show_text(cr, buf);
    }
    cairo_stroke(cr);
}

static void draw(cairo_t *cr, const layout *L, const dp_eval *e, const char *title)
{
    draw_title(cr, L, title);
    draw_cells(cr, L, e);
    draw_grid(cr, L);
    draw_class_names(cr, L);
    draw_axis_titles(cr, L);
    draw_colour_bar(cr, L);
}

static cairo_status_t write_cb(void *closure, const unsigned char *data, unsigned int len)
{
    return fwrite(data, 1, len, (FILE *)closure) == len ? CAIRO_STATUS_SUCCESS
                                                        : CAIRO_STATUS_WRITE_ERROR;
}

int dp_eval_plot(const dp_eval *e, const char *path, const char *format, const char *title,
                 char *errbuf)
{
    int png;
    if (!strcmp(format, "png"))
        png = 1;
    else if (!strcmp(format, "pdf"))
        png = 0;
    else
        return dp_err(errbuf, "%s: unknown figure format '%s' (pdf or png)", path, format);
    if (!title)
        title = "Confusion matrix";
    layout L;
    if (layout_make(&L, e, title) != 0) {
        layout_free(&L);
        return dp_err(errbuf, "%s: out of memory", path);
    }
    dp_afile af;
    if (dp_afile_open(&af, path, errbuf) != 0) {
        layout_free(&L);
        return -1;
    }
    cairo_surface_t *s;
    if (png)
        s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)(L.width * PNG_SCALE),
                                       (int)(L.height * PNG_SCALE));
    else
        s = cairo_pdf_surface_create_for_stream(write_cb, af.f, L.width, L.height);
    cairo_status_t st = cairo_surface_status(s);
    if (st == CAIRO_STATUS_SUCCESS) {
        if (!png)
            cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_TITLE, title);
        cairo_t *cr = cairo_create(s);
        if (png)
            cairo_scale(cr, PNG_SCALE, PNG_SCALE);
        draw(cr, &L, e, title);
        st = cairo_status(cr);
        cairo_destroy(cr);
        if (st == CAIRO_STATUS_SUCCESS) {
            if (png)
                st = cairo_surface_write_to_png_stream(s, write_cb, af.f);
            else {
                cairo_surface_finish(s);
                st = cairo_surface_status(s);
            }
        }
    }
    cairo_surface_destroy(s);
    layout_free(&L);
    if (st != CAIRO_STATUS_SUCCESS) {
        dp_afile_abort(&af);
        return dp_err(errbuf, "%s: cannot draw the figure: %s", path,
                      cairo_status_to_string(st));
    }
    return dp_afile_commit(&af, errbuf);
}

void dp_eval_plot_release(void)
{
    cairo_debug_reset_static_data();
    /* fontconfig comes in through cairo (we do not link it ourselves): look
     * FcFini up at run time. */
    void *sym = dlsym(RTLD_DEFAULT, "FcFini");
    if (sym) {
        void (*fini)(void);
        memcpy(&fini, &sym, sizeof fini);
        fini();
    }
}
