/* dp_outdir: a folder of outputs made as one (test's report folder).
 *
 * A report is several files (tables, figures, arrays) that belong together.
 * Written one by one into the folder, a run killed half-way left some files
 * of the new report beside the rest of the old one, and a file the new run
 * does not make (logprobs.npy without --save-logprobs) stayed from an older
 * run: a folder that looks complete and mixes two models. So:
 *
 *   1. dp_outdir_open: when TARGET (symlinks followed) does not exist, or
 *      holds only regular files named in NAMES (the outputs of an earlier
 *      run, and their dead temp files), the files go to a fresh sibling
 *      TARGET.tmp.<pid>, registered for removal on SIGINT/SIGTERM;
 *   2. the caller writes its files into d->path (each through dp_afile);
 *   3. dp_outdir_commit puts that folder in TARGET's place in one step
 *      (dp_swap_dir_into_place: renameat2 RENAME_EXCHANGE, the parent
 *      folder fsynced): readers, and a run killed at any point, see the old
 *      report whole or the new one whole, never a mix.
 *
 * When TARGET holds anything else (the user keeps other files there, a
 * symlink named like an output, a subfolder) or cannot be renamed ("." or
 * "/"), the folder is not the report's to replace: the files go to TARGET
 * itself, after the regular files named in NAMES are removed, so that no
 * output of an earlier run stays beside the new ones (a run killed there
 * leaves an incomplete report, not a mixed one).
 */
#ifndef DP_OUTDIR_H
#define DP_OUTDIR_H

typedef struct dp_outdir {
    char *target; /* the report folder, symlinks resolved */
    char *path;   /* where the files go: the staging folder, or target */
    int staged;   /* 1: path is TARGET.tmp.<pid>, swapped in at commit */
    int slot;     /* temp registry slot + 1; 0 when none */
} dp_outdir;

/* Prepares TARGET for a new set of outputs named in NAMES (NULL-ended);
 * creates the folders it needs and checks that files can be made there.
 * 0, or -1 with a message naming the folder. */
int dp_outdir_open(dp_outdir *d, const char *target, const char *const *names, char *errbuf);
/* Publishes the outputs (staged: the swap; in place: nothing left to do)
 * and frees d. 0, or -1 with a message (the old folder then stays whole). */
int dp_outdir_commit(dp_outdir *d, char *errbuf);
/* Drops the staging folder (in place: the files written so far stay) and
 * frees d. Safe on a zeroed or already committed d. */
void dp_outdir_abort(dp_outdir *d);

#endif
