/* dp_pp_sources: finding and probing preprocess's sources. Internal to
 * src/dataset.
 *
 * The source walk knows files and folders by (device, inode): a folder
 * reached again through a link (a loop, or a "diamond" of links to one
 * folder) is not listed again, a file reached through two names (a symlink
 * or a hard link) is read once, under the name that comes first in the
 * walk (entries in byte order: the same name on every run), and a folder
 * more than 64 levels deep is not read. Hidden entries are left out. */
#ifndef DP_PP_SOURCES_H
#define DP_PP_SOURCES_H

#include <stddef.h>
#include <sys/stat.h>

#include "dataset/dp_pp_run.h"

/* 1 when folder DST is the source folder (src: its stat) or lies inside
 * it. DST need not exist: its nearest existing folder is looked at,
 * symlinks resolved. */
int dp_pp_inside_source(const char *dst, const struct stat *src);

/* Lists the regular files under r->src (the target folder r->dirfd left
 * out) into r->files, sorted by relative path; src is r->src's stat.
 * Unreadable entries are notes; -1 only when the source folder itself
 * cannot be read, or out of memory. */
int dp_pp_list_sources(run *r, const struct stat *src, char *errbuf);

/* Probes every listed file: captures (pcap, pcapng, by content) are
 * marked and labelled from r->table; other files are notes, unreadable
 * ones warnings. Fills the capture counts of r->st. -1 when there is no
 * capture at all. */
int dp_pp_probe_sources(run *r, char *errbuf);

/* Labels cf from r's table and sets cf->filter: the run's --filter and the
 * filter of cf's label row, "(A) and (B)" when both are set. Returns 1 when
 * cf's prefix is in the table, 0 when not, -1 when out of memory. */
int dp_pp_label_capture(run *r, capfile *cf);

#endif
