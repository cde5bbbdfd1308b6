/* dp_curves: a training run's curves, per epoch (or per boosting round):
 * training loss and accuracy, validation loss and accuracy when the run
 * holds out flows. Kept as MODEL.curves.tsv (rewritten atomically after
 * each epoch, so --resume continues the history) and drawn with cairo as
 * MODEL.curves.png beside the model (two panels: loss, accuracy; training
 * in blue, validation in orange; written atomically).
 *
 * TSV: a header line "epoch\tloss\tacc\tval_loss\tval_acc", then one line
 * per epoch; a value that was not measured is "nan".
 */
#ifndef DP_CURVES_H
#define DP_CURVES_H

#include <stddef.h>

typedef struct dp_curves {
    int n, cap;
    double *v;          /* [cap][4]: loss, acc, val_loss, val_acc (NAN: none) */
} dp_curves;

#define DP_CURVES_TRAIN_RGB 0x1f77b4 /* matplotlib's first two colours */
#define DP_CURVES_VAL_RGB 0xff7f0e

/* Appends one epoch. 0, or -1 + message when out of memory. */
int dp_curves_add(dp_curves *c, double loss, double acc, double val_loss, double val_acc, char *errbuf);
/* Keeps the first n epochs (n >= 0). */
void dp_curves_truncate(dp_curves *c, int n);
void dp_curves_free(dp_curves *c);

/* Writes the TSV atomically. 0 or -1 + message naming path. */
int dp_curves_write_tsv(const dp_curves *c, const char *path, char *errbuf);
/* Appends the epochs of a TSV written by dp_curves_write_tsv. A missing
 * file is no error (nothing added). -1 + message naming the path and line
 * when it is not such a file. */
int dp_curves_read_tsv(dp_curves *c, const char *path, char *errbuf);

/* Draws the curves as a PNG (1600 x 640 pixels) at path, atomically;
 * `title` heads it, `xlabel` names the x axis ("epoch", "boosting round").
 * Panels with no finite value say so. 0 or -1 + message naming path. */
int dp_curves_plot(const dp_curves *c, const char *path, const char *title, const char *xlabel, char *errbuf);

/* The run's side of it, for `train`: MODEL.curves.tsv and MODEL.curves.png.
 * A curve that cannot be written is a warning on stderr, not a failed run
 * (the model is what the run is for). */
/* Rewrites MODEL.curves.tsv, and with png also draws MODEL.curves.png;
 * nothing when MODEL is written through (dp_path_written_through). */
void dp_curves_save(const dp_curves *c, const char *model_path, int png, const char *title, const char *xlabel);
/* --resume: the history of the first `epochs` epochs from MODEL.curves.tsv;
 * epochs it lacks (no file, a run killed before writing it) are NAN. */
void dp_curves_resume(dp_curves *c, const char *model_path, int epochs);

#define DP_CURVES_PNG_W 1600
#define DP_CURVES_PNG_H 640

#endif
