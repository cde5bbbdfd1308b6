/* Tests of the shared plumbing: atomic files, the RNG, .npy files, label
 * tables. Oracles: hand-written bytes of the .npy format, numpy itself where
 * /usr/bin/python3 has it, and hand-built label tables. */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset/dp_labels.h"
#include "dataset/dp_npy.h"
#include "dp_test.h"
#include "util/dp_flowmap.h"
#include "util/dp_util.h"

static char errbuf[DP_ERRBUF_SIZE];

static char *tmp(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dp_test_tmpdir(), name);
    return buf[k];
}

static void test_atomic_file(void)
{
    const char *p = tmp("atomic.txt");
    dp_afile af;
    CHECK(dp_afile_open(&af, p, errbuf) == 0);
    fputs("hello", af.f);
    CHECK(access(p, F_OK) != 0); /* not visible before commit */
    CHECK(dp_afile_commit(&af, errbuf) == 0);
    size_t n;
    char *s = dp_read_file(p, &n, errbuf);
    CHECK(s && n == 5 && !strcmp(s, "hello"));
    free(s);
    /* abort leaves the old file in place and no temp behind */
    CHECK(dp_afile_open(&af, p, errbuf) == 0);
    fputs("other", af.f);
    dp_afile_abort(&af);
    s = dp_read_file(p, &n, errbuf);
    CHECK(s && !strcmp(s, "hello"));
    free(s);
    /* unwritable location: clear error naming the path */
    CHECK(dp_afile_open(&af, "/nonexistent-dir/x", errbuf) == -1);
    CHECK_STR_CONTAINS(errbuf, "/nonexistent-dir/x");
    CHECK(dp_read_file(tmp("missing"), NULL, errbuf) == NULL);
    CHECK_STR_CONTAINS(errbuf, "missing");
}

static void test_mkdirs(void)
{
    CHECK(dp_mkdirs(tmp("a/b/c"), errbuf) == 0);
    struct stat st;
    CHECK(stat(tmp("a/b/c"), &st) == 0 && S_ISDIR(st.st_mode));
    CHECK(dp_mkdirs(tmp("a/b/c"), errbuf) == 0); /* idempotent */
    CHECK(dp_write_file_atomic(tmp("file"), "x", 1, errbuf) == 0);
    CHECK(dp_mkdirs(tmp("file"), errbuf) == -1);
    CHECK_STR_CONTAINS(errbuf, "not a directory");
}

static void test_rng(void)
{
    dp_rng a, b;
    dp_rng_seed(&a, 9876);
    dp_rng_seed(&b, 9876);
    for (int i = 0; i < 100; i++)
        CHECK(dp_rng_u64(&a) == dp_rng_u64(&b));
    /* known first output for seed 0 (xoshiro256** seeded by splitmix64):
     * pins the sequence so that splits stay reproducible across versions */
    dp_rng_seed(&a, 0);
    uint64_t first = dp_rng_u64(&a);
    CHECK(first == 0x99ec5f36cb75f2b4ULL);
    /* uniformity of dp_rng_below and dp_rng_double, loose bounds */
    int counts[10] = {0};
    double sum = 0;
    dp_rng_seed(&a, 1);
    for (int i = 0; i < 100000; i++) {
        counts[dp_rng_below(&a, 10)]++;
        double d = dp_rng_double(&a);
        CHECK(d >= 0 && d < 1);
        sum += d;
    }
    for (int i = 0; i < 10; i++)
        CHECK(counts[i] > 9500 && counts[i] < 10500);
    CHECK_NEAR(sum / 100000, 0.5, 0.01);
    uint32_t perm[50];
    for (int i = 0; i < 50; i++)
        perm[i] = i;
    dp_rng_shuffle_u32(&a, perm, 50);
    int seen[50] = {0}, moved = 0;
    for (int i = 0; i < 50; i++) {
        seen[perm[i]]++;
        moved += perm[i] != (uint32_t)i;
    }
    for (int i = 0; i < 50; i++)
        CHECK(seen[i] == 1);
    CHECK(moved > 30);
}

static void test_npy_bytes(void)
{
    /* the exact bytes of a small uint8 [2, 3] array */
    const uint8_t data[6] = {1, 2, 3, 4, 5, 6};
    const char *p = tmp("small.npy");
    CHECK(dp_npy_save(p, DP_NPY_U1, 1, 3, data, 2, errbuf) == 0);
    size_t n;
    char *s = dp_read_file(p, &n, errbuf);
    CHECK(s && n == 128 + 6);
    CHECK(!memcmp(s, "\x93NUMPY\x01\x00\x76\x00", 10));
    CHECK_STR_CONTAINS(s + 10, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3), }");
    CHECK(s[127] == '\n');
    CHECK(!memcmp(s + 128, data, 6));
    free(s);
    dp_npy a;
    CHECK(dp_npy_open(&a, p, errbuf) == 0);
    CHECK(a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3);
    CHECK(dp_npy_expect(&a, p, DP_NPY_U1, 1, 3, errbuf) == 0);
    CHECK(dp_npy_expect(&a, p, DP_NPY_I2, 2, 3, errbuf) == -1);
    CHECK_STR_CONTAINS(errbuf, "dtype");
    CHECK(dp_npy_expect(&a, p, DP_NPY_U1, 1, 4, errbuf) == -1);
    CHECK(!memcmp(a.data, data, 6));
    dp_npy_close(&a);
}

static void test_npy_streaming_and_struct(void)
{
    const char *descr = "[('a', '<u4'), ('b', '<f8'), ('c', 'u1', (16,)), ('d', '<u8'), ('e', '<u2')]";
    struct __attribute__((packed)) row {
        uint32_t a;
        double b;
        uint8_t c[16];
        uint64_t d;
        uint16_t e;
    } rows[3];
    memset(rows, 0, sizeof rows);
    for (int i = 0; i < 3; i++) {
        rows[i].a = 10 + i;
        rows[i].b = 0.5 * i;
        rows[i].c[i] = 7;
        rows[i].d = 1000000000000ULL + i;
        rows[i].e = 65535 - i;
    }
    const char *p = tmp("struct.npy");
    dp_npy_writer w;
    CHECK(dp_npy_writer_open(&w, p, descr, sizeof(struct row), 0, errbuf) == 0);
    CHECK(dp_npy_write(&w, rows, 1, errbuf) == 0);
    CHECK(dp_npy_write(&w, rows + 1, 2, errbuf) == 0);
    CHECK(access(p, F_OK) != 0);
    CHECK(dp_npy_writer_commit(&w, errbuf) == 0);
    dp_npy a;
    CHECK(dp_npy_open(&a, p, errbuf) == 0);
    CHECK(a.ndim == 1 && a.shape[0] == 3);
    CHECK(dp_npy_expect(&a, p, descr, sizeof(struct row), 0, errbuf) == 0);
    CHECK(((uintptr_t)a.data - (uintptr_t)a.map) % 64 == 0);
    CHECK(!memcmp(a.data, rows, sizeof rows));
    /* numpy's own spellings of one-byte fields are the same dtype */
    CHECK(dp_npy_expect(&a, p, "[('a','<u4'),('b','<f8'),('c','|u1',(16,)),('d','<u8'),('e','<u2')]",
                        sizeof(struct row), 0, errbuf) == 0);
    CHECK(dp_npy_expect(&a, p, "[('a','<u4'),('b','<f8'),('c','<u2',(16,)),('d','<u8'),('e','<u2')]",
                        sizeof(struct row), 0, errbuf) == -1);
    dp_npy_close(&a);

    /* numpy reads both files, when it is there */
    if (access("/usr/bin/python3", X_OK) == 0 &&
        system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") == 0) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c \"import numpy as np; a=np.load('%s', mmap_mode='r'); "
                 "assert a.shape==(2,3) and a.dtype==np.uint8 and a[1,2]==6; "
                 "b=np.load('%s', mmap_mode='r'); assert b.shape==(3,); "
                 "assert list(b['a'])==[10,11,12] and b['b'][2]==1.0 and b['c'][1,1]==7; "
                 "assert b['d'][2]==1000000000002 and b['e'][1]==65534\"",
                 tmp("small.npy"), p);
        CHECK(system(cmd) == 0);
    } else {
        fprintf(stderr, "  (numpy cross-check skipped: no /usr/bin/python3 with numpy)\n");
    }
}

/* An .npy written through a FIFO (`test -o R` with R/predictions.npy a
 * FIFO) reaches the reader whole: the final header first, never a header
 * of 0 rows and a seek back; the same bytes as the regular file, loadable by
 * numpy. A writer that counts its rows as they come is refused there
 * before a byte; one that announced its rows fails on any other count. */
static void test_npy_through_fifo(void)
{
    int16_t data[3][5];
    for (int i = 0; i < 15; i++)
        data[i / 5][i % 5] = (int16_t)(i * 1000 - 7000);
    char reg[512], fifo[512], got[512];
    snprintf(reg, sizeof reg, "%s", tmp("fifo-ref.npy"));
    snprintf(fifo, sizeof fifo, "%s", tmp("through.npy"));
    snprintf(got, sizeof got, "%s", tmp("fifo-got.npy"));
    CHECK(dp_npy_save(reg, DP_NPY_I2, 2, 5, data, 3, errbuf) == 0);
    CHECK(mkfifo(fifo, 0600) == 0);
    dp_test_fifo_copy c = {fifo, got, -1};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, dp_test_copy_fifo, &c) == 0);
    int rc = dp_npy_save(fifo, DP_NPY_I2, 2, 5, data, 3, errbuf);
    if (rc != 0)
        fprintf(stderr, "  %s\n", errbuf);
    CHECK(rc == 0);
    pthread_join(th, NULL);
    CHECK(dp_test_same_file(got, reg));
    dp_npy a;
    CHECK(dp_npy_open(&a, got, errbuf) == 0);
    CHECK(a.ndim == 2 && a.shape[0] == 3 && a.shape[1] == 5);
    dp_npy_close(&a);
    struct stat st;
    CHECK(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode));
    if (system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") == 0) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c \"import numpy as np; a=np.load('%s'); "
                 "assert a.shape==(3,5) and a.dtype==np.int16 and a[2,4]==7000\"", got);
        CHECK(system(cmd) == 0);
    }
    /* rows not counted in advance: refused, nothing written */
    c.n = -1;
    CHECK(pthread_create(&th, NULL, dp_test_copy_fifo, &c) == 0);
    dp_npy_writer w;
    rc = dp_npy_writer_open(&w, fifo, DP_NPY_I2, 2, 5, errbuf);
    CHECK(rc == -1);
    if (rc == 0)
        dp_npy_writer_abort(&w); /* the reader's end of file */
    CHECK_STR_CONTAINS(errbuf, fifo);
    CHECK_STR_CONTAINS(errbuf, "written through");
    pthread_join(th, NULL);
    CHECK_EQ_INT(c.n, 0);
    /* announced rows: fewer fail at the commit (no file), more at the write */
    const char *p = tmp("announced.npy");
    CHECK(dp_npy_writer_open_rows(&w, p, DP_NPY_I2, 2, 5, 3, errbuf) == 0);
    CHECK(dp_npy_write(&w, data, 2, errbuf) == 0);
    CHECK(dp_npy_writer_commit(&w, errbuf) == -1);
    CHECK_STR_CONTAINS(errbuf, "2 rows written, its header says 3");
    CHECK(access(p, F_OK) != 0);
    CHECK(dp_npy_writer_open_rows(&w, p, DP_NPY_I2, 2, 5, 1, errbuf) == 0);
    CHECK(dp_npy_write(&w, data, 2, errbuf) == -1);
    CHECK_STR_CONTAINS(errbuf, "more rows than the 1 of its header");
    dp_npy_writer_abort(&w);
    CHECK(access(p, F_OK) != 0);
}

/* The appender: direct and buffered, flushed and resumed (the partial last
 * block read back), cut back to the rows asked for, committed: the same
 * bytes as dp_npy_save; a resume that asks for rows the file lacks, or
 * finds another header, fails with the file's name. */
static void test_npy_appender(void)
{
    enum { COLS = 1500, ROWS = 5000 };
    uint8_t *data = malloc((size_t)ROWS * COLS);
    CHECK(data != NULL);
    if (!data)
        return;
    for (size_t i = 0; i < (size_t)ROWS * COLS; i++)
        data[i] = (uint8_t)(i * 7 + i / 1500);
    char ref[512], part[512], fin[512];
    snprintf(ref, sizeof ref, "%s", tmp("app_ref.npy"));
    snprintf(part, sizeof part, "%s", tmp("app.partial"));
    snprintf(fin, sizeof fin, "%s", tmp("app_final.npy"));
    CHECK(dp_npy_save(ref, DP_NPY_U1, 1, COLS, data, ROWS, errbuf) == 0);
    for (int fl = 0; fl < 4; fl++) { /* buffered, direct, write-behind, both */
        dp_npy_appender w;
        CHECK(dp_npy_append_open(&w, part, DP_NPY_U1, 1, COLS, 0, 64 * 1024, fl, errbuf) == 0);
        CHECK(dp_npy_append(&w, data, 1001, errbuf) == 0);
        uint8_t *row = dp_npy_append_row(&w, errbuf);
        CHECK(row != NULL);
        if (row)
            memcpy(row, data + (size_t)1001 * COLS, COLS);
        CHECK(dp_npy_append_flush(&w, errbuf) == 0);
        CHECK(dp_npy_append_rows_written(&w) == 1002);
        CHECK(dp_npy_append(&w, data + (size_t)1002 * COLS, 500, errbuf) == 0); /* lost below */
        dp_npy_append_close(&w);
        /* more rows than the file holds: refused */
        CHECK(dp_npy_append_open(&w, part, DP_NPY_U1, 1, COLS, ROWS, 0, fl, errbuf) == -1);
        CHECK_STR_CONTAINS(errbuf, part);
        /* a row count whose byte size wraps 64 bits to a small number: refused,
         * not resumed (and the file not cut) */
        CHECK(dp_npy_append_open(&w, part, DP_NPY_U1, 1, COLS, UINT64_MAX / COLS + 1, 0, fl, errbuf) == -1);
        CHECK_STR_CONTAINS(errbuf, "overflows");
        /* another dtype: another header, refused */
        CHECK(dp_npy_append_open(&w, part, DP_NPY_I2, 2, COLS, 10, 0, fl, errbuf) == -1);
        CHECK_STR_CONTAINS(errbuf, "header");
        /* resume at 1000 (cuts the rest), append the others, commit */
        CHECK(dp_npy_append_open(&w, part, DP_NPY_U1, 1, COLS, 1000, 64 * 1024, fl, errbuf) == 0);
        CHECK(w.rows == 1000);
        CHECK(dp_npy_append(&w, data + (size_t)1000 * COLS, ROWS - 1000, errbuf) == 0);
        CHECK(dp_npy_append_commit(&w, fin, errbuf) == 0);
        CHECK(access(part, F_OK) != 0);
        size_t a = 0, b = 0;
        char *x = dp_read_file(ref, &a, errbuf), *y = dp_read_file(fin, &b, errbuf);
        CHECK(x && y && a == b && memcmp(x, y, a) == 0);
        free(x);
        free(y);
        dp_npy_appender z;
        memset(&z, 0, sizeof z);
        dp_npy_append_close(&z); /* safe on a zeroed appender */
    }
    free(data);
}

static void test_npy_bad(void)
{
    const char *p = tmp("bad.npy");
    dp_npy a;
    CHECK(dp_write_file_atomic(p, "not numpy at all", 16, errbuf) == 0);
    CHECK(dp_npy_open(&a, p, errbuf) == -1);
    CHECK_STR_CONTAINS(errbuf, "bad magic");
    CHECK(dp_write_file_atomic(p, "\x93NUMPY\x01\x00\xff\x00{", 11, errbuf) == 0);
    CHECK(dp_npy_open(&a, p, errbuf) == -1);
    CHECK_STR_CONTAINS(errbuf, "truncated");
    CHECK(dp_npy_open(&a, tmp("absent.npy"), errbuf) == -1);
    CHECK_STR_CONTAINS(errbuf, "absent.npy");
    /* a header that promises more rows than the file holds */
    uint8_t data[6] = {0};
    const char *q = tmp("short.npy");
    CHECK(dp_npy_save(q, DP_NPY_U1, 1, 3, data, 2, errbuf) == 0);
    CHECK(truncate(q, 128 + 4) == 0);
    CHECK(dp_npy_open(&a, q, errbuf) == 0);
    CHECK(dp_npy_expect(&a, q, DP_NPY_U1, 1, 3, errbuf) == -1);
    CHECK_STR_CONTAINS(errbuf, "truncated");
    dp_npy_close(&a);
    /* fortran order is refused */
    const char *dict = "{'descr': '|u1', 'fortran_order': True, 'shape': (1,), }    \n";
    char f[128];
    size_t dl = strlen(dict);
    memcpy(f, "\x93NUMPY\x01\x00", 8);
    f[8] = (char)dl;
    f[9] = 0;
    memcpy(f + 10, dict, dl);
    f[10 + dl] = 1; /* one data byte */
    CHECK(dp_write_file_atomic(p, f, 11 + dl, errbuf) == 0);
    CHECK(dp_npy_open(&a, p, errbuf) == -1);
    CHECK_STR_CONTAINS(errbuf, "Fortran");
}

/* Writes a version-1 .npy file with this header dict and ndata zero bytes. */
static void write_npy_raw(const char *path, const char *dict, size_t ndata)
{
    size_t dl = strlen(dict), n = 10 + dl + ndata;
    char *f = calloc(1, n);
    memcpy(f, "\x93NUMPY\x01\x00", 8);
    f[8] = (char)(dl & 0xff);
    f[9] = (char)(dl >> 8);
    memcpy(f + 10, dict, dl);
    CHECK(dp_write_file_atomic(path, f, n, errbuf) == 0);
    free(f);
}

/* Crafted headers whose row count times the row size wraps 64 bits (2^63
 * int16 rows are 2^64 bytes, "0" when wrapped), or a negative count, must
 * be refused by dp_npy_open or dp_npy_expect with a message, never read
 * past the mapping (issue 11, item 2; run under ASan by `make asan`). */
static void test_npy_crafted_headers(void)
{
    const struct {
        const char *dict, *descr;
        size_t itemsize, ncols;
    } bad[] = {
        {"{'descr': '<i2', 'fortran_order': False, 'shape': (9223372036854775808,), }\n", DP_NPY_I2, 2, 0},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (9223372036854775808, 1500), }\n", DP_NPY_U1, 1, 1500},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (12297829382473035, 1500), }\n", DP_NPY_U1, 1, 1500},
        {"{'descr': '<i8', 'fortran_order': False, 'shape': (2305843009213693952,), }\n", DP_NPY_I8, 8, 0},
        {"{'descr': '<i2', 'fortran_order': False, 'shape': (-1,), }\n", DP_NPY_I2, 2, 0},
        {"{'descr': '<i2', 'fortran_order': False, 'shape': (18446744073709551616,), }\n", DP_NPY_I2, 2, 0},
        {"{'descr': '<i2', 'fortran_order': False, 'shape': (+3,), }\n", DP_NPY_I2, 2, 0},
    };
    const char *p = tmp("crafted.npy");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_npy_raw(p, bad[i].dict, 64);
        dp_npy a;
        errbuf[0] = 0;
        int rc = dp_npy_open(&a, p, errbuf);
        if (rc == 0) {
            rc = dp_npy_expect(&a, p, bad[i].descr, bad[i].itemsize, bad[i].ncols, errbuf);
            dp_npy_close(&a);
        }
        if (rc != -1)
            fprintf(stderr, "  accepted: %s", bad[i].dict);
        CHECK(rc == -1);
        CHECK_STR_CONTAINS(errbuf, "crafted.npy");
    }
    /* an unknown format version is named (the byte was read after the
     * unmap: a crash, found by fuzz/fuzz_npy.c) */
    write_npy_raw(p, "{'descr': '<i2', 'fortran_order': False, 'shape': (1,), }\n", 8);
    {
        size_t len;
        char *b = dp_read_file(p, &len, errbuf);
        b[6] = 9;
        CHECK(dp_write_file_atomic(p, b, len, errbuf) == 0);
        free(b);
        dp_npy v;
        CHECK(dp_npy_open(&v, p, errbuf) == -1);
        CHECK_STR_CONTAINS(errbuf, "unsupported .npy version 9");
    }
    /* the same header with an honest row count is fine */
    write_npy_raw(p, "{'descr': '<i2', 'fortran_order': False, 'shape': (32,), }\n", 64);
    dp_npy a;
    CHECK(dp_npy_open(&a, p, errbuf) == 0);
    CHECK(dp_npy_expect(&a, p, DP_NPY_I2, 2, 0, errbuf) == 0);
    dp_npy_close(&a);
}

static void test_labels_iscx(void)
{
    dp_labels t;
    CHECK(dp_labels_load_iscx(&t, errbuf) == 0);
    CHECK_EQ_INT(t.nclasses[DP_TASK_APP], 15);
    CHECK_EQ_INT(t.nclasses[DP_TASK_TRAFFIC], 11);
    CHECK(!strcmp(t.names[DP_TASK_APP][0], "AIM Chat"));
    CHECK(!strcmp(t.names[DP_TASK_APP][14], "Youtube"));
    CHECK(!strcmp(t.names[DP_TASK_TRAFFIC][6], "VPN: File Transfer"));
    int c[2];
    /* prefix = basename up to the first dot, lower-cased */
    CHECK(dp_labels_lookup(&t, "/data/CompletePCAPs/AIMchat1.pcapng", c) == 1);
    CHECK(c[0] == 0 && c[1] == 0);
    CHECK(dp_labels_lookup(&t, "vpn_bittorrent.pcap", c) == 1);
    CHECK(c[0] == -1 && c[1] == 9);
    CHECK(dp_labels_lookup(&t, "unknown_capture.pcap", c) == 0);
    CHECK(c[0] == -1 && c[1] == -1);
    /* every row is found by its own prefix (the table is not in prefix
     * order); names before, between and after every prefix are not */
    CHECK(t.nrows > 100);
    for (size_t i = 0; i < t.nrows; i++) {
        char name[300];
        snprintf(name, sizeof name, "dir/%s.pcap", t.rows[i].prefix);
        CHECK(dp_labels_find(&t, name) == &t.rows[i]);
        snprintf(name, sizeof name, "%sz.pcap", t.rows[i].prefix);
        CHECK(dp_labels_find(&t, name) == NULL);
        snprintf(name, sizeof name, "%.*s", (int)strlen(t.rows[i].prefix) - 1, t.rows[i].prefix);
        CHECK(dp_labels_find(&t, name) == NULL || strcmp(dp_labels_find(&t, name)->prefix, name) == 0);
    }
    CHECK(dp_labels_find(&t, "") == NULL && dp_labels_find(&t, "0.pcap") == NULL);
    CHECK(dp_labels_find(&t, "~~~.pcap") == NULL);
    dp_labels_free(&t);
    /* names longer than 255 bytes are compared whole, not cut short */
    char text[1200], name[700];
    memset(name, 'a', 300);
    name[300] = 0;
    snprintf(text, sizeof text, "prefix\tapp_id\tapp_name\ttraffic_id\ttraffic_name\n%.255s\t1\tA\t\t\n%s\t2\tB\t\t\n",
             name, name);
    CHECK(dp_labels_parse(&t, text, "long.tsv", errbuf) == 0);
    strcat(name, ".pcap");
    CHECK(dp_labels_find(&t, name) && dp_labels_find(&t, name)->cls[0] == 2);
    name[256] = 0;
    CHECK(dp_labels_find(&t, name) == NULL);
    name[255] = 0;
    CHECK(dp_labels_find(&t, name) && dp_labels_find(&t, name)->cls[0] == 1);
    dp_labels_free(&t);
}

static void test_labels_user_tables(void)
{
    dp_labels t;
    const char *good = "prefix\tapp_id\tapp_name\ttraffic_id\ttraffic_name\n"
                       "Foo\t1\tFoo App\t\t\n"
                       "bar\t\t\t2\tBulk\r\n";
    CHECK(dp_labels_parse(&t, good, "good.tsv", errbuf) == 0);
    CHECK_EQ_INT(t.nrows, 2);
    CHECK_EQ_INT(t.nclasses[0], 2);
    CHECK_EQ_INT(t.nclasses[1], 3);
    CHECK(!strcmp(t.names[0][0], "class 0")); /* unused id gets a placeholder */
    int c[2];
    CHECK(dp_labels_lookup(&t, "dir/FOO.x.pcap", c) == 1 && c[0] == 1 && c[1] == -1);
    CHECK(dp_labels_lookup(&t, "bar.pcapng", c) == 1 && c[0] == -1 && c[1] == 2);
    dp_labels_free(&t);

    const struct {
        const char *text, *msg;
    } bad[] = {
        {"", "empty"},
        {"prefix\tapp\n", "header"},
        {"prefix\tapp_id\tapp_name\ttraffic_id\ttraffic_name\n", "no rows"},
        {"prefix\tapp_id\tapp_name\ttraffic_id\ttraffic_name\na\t1\tA\n", ":2: expected 5"},
        {"prefix\tapp_id\tapp_name\ttraffic_id\ttraffic_name\na\tx\tA\t\t\n", "bad app id"},
        {"prefix\tapp_id\tapp_name\ttraffic_id\ttraffic_name\na\t-1\tA\t\t\n", "bad app id"},
        {"prefix\tapp_id\tapp_name\ttraffic_id\ttraffic_name\na\t1\t\t\t\n", "has no name"},
        {"prefix\tapp_id\tapp_name\ttraffic_id\ttraffic_name\na\t1\tA\t\t\nb\t1\tB\t\t\n", "named 'B' here but 'A'"},
        {"prefix\tapp_id\tapp_name\ttraffic_id\ttraffic_name\na\t1\tA\t\t\nA\t1\tA\t\t\n", "appears twice"},
        {"prefix\tapp_id\tapp_name\ttraffic_id\ttraffic_name\n\t1\tA\t\t\n", "empty prefix"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errbuf[0] = 0;
        CHECK(dp_labels_parse(&t, bad[i].text, "bad.tsv", errbuf) == -1);
        CHECK_STR_CONTAINS(errbuf, "bad.tsv");
        CHECK_STR_CONTAINS(errbuf, bad[i].msg);
    }
    CHECK(dp_labels_load(&t, tmp("no-such-table.tsv"), errbuf) == -1);
    CHECK_STR_CONTAINS(errbuf, "no-such-table.tsv");
}

/* The optional sixth column: a row's BPF filter, empty or left out for
 * none; a filter in a table without the column is refused with a hint. */
static void test_labels_filter_column(void)
{
    dp_labels t;
    const char *good = "prefix\tapp_id\tapp_name\ttraffic_id\ttraffic_name\tfilter\n"
                       "ftps_up\t3\tFTPS\t2\tFile Transfer\ttcp and not udp port 61009\n"
                       "skype\t9\tSkype\t\t\t\n"
                       "spotify\t10\tSpotify\t\t\n";
    CHECK(dp_labels_parse(&t, good, "good.tsv", errbuf) == 0);
    CHECK_EQ_INT(t.nrows, 3);
    CHECK_EQ_INT(t.nfilters, 1);
    const dp_label_row *ftps = dp_labels_find(&t, "x/FTPS_UP.pcap"), *skype = dp_labels_find(&t, "skype.pcap"),
                       *spotify = dp_labels_find(&t, "spotify.pcap");
    CHECK(ftps && ftps->filter && !strcmp(ftps->filter, "tcp and not udp port 61009"));
    CHECK(skype && skype->filter == NULL);
    CHECK(spotify && spotify->filter == NULL);
    CHECK(dp_labels_find(&t, "unknown.pcap") == NULL);
    int c[2];
    CHECK(dp_labels_lookup(&t, "ftps_up.pcap", c) == 1 && c[0] == 3 && c[1] == 2);
    dp_labels_free(&t);
    CHECK(dp_labels_parse(&t, "prefix\tapp_id\tapp_name\ttraffic_id\ttraffic_name\na\t1\tA\t\t\ttcp\n", "bad.tsv",
                          errbuf) == -1);
    CHECK_STR_CONTAINS(errbuf, "bad.tsv:2: expected 5 tab-separated fields, got 6 (a filter needs the header's "
                               "sixth column, 'filter')");
    CHECK(dp_labels_parse(&t, "prefix\tapp_id\tapp_name\ttraffic_id\ttraffic_name\tbpf\na\t1\tA\t\t\n", "bad.tsv",
                          errbuf) == -1);
    CHECK_STR_CONTAINS(errbuf, "bad.tsv:1: expected the header");
    CHECK(dp_labels_parse(&t, "prefix\tapp_id\tapp_name\ttraffic_id\ttraffic_name\tfilter\na\t1\tA\t\t\ttcp\tx\n",
                          "bad.tsv", errbuf) == -1);
    CHECK_STR_CONTAINS(errbuf, "bad.tsv:2: expected 6 tab-separated fields, got 7");
}

/* dp_flowmap against a plain array of (key, tag, value) over random puts,
 * interns and removes: small key ranges make equal keys with other tags,
 * collisions, long probe runs, removals inside runs, and growth. */
static void test_flowmap_model(void)
{
    enum { NK = 64, NT = 3, OPS = 20000 };
    int64_t ref[NK][NT];
    for (int k = 0; k < NK; k++)
        for (int t = 0; t < NT; t++)
            ref[k][t] = -1;
    dp_flowmap m;
    CHECK(dp_flowmap_init(&m, 0) == 0);
    CHECK_EQ_INT(dp_flowmap_get(&m, 1, 0), -1);
    CHECK_EQ_INT(dp_flowmap_remove(&m, 1, 0), 0);
    dp_rng r;
    dp_rng_seed(&r, 5);
    size_t held = 0;
    int bad = 0;
    for (int op = 0; op < OPS && !bad; op++) {
        int k = (int)dp_rng_below(&r, NK), t = (int)dp_rng_below(&r, NT);
        /* keys that share their low bits, so that home slots collide */
        uint64_t key = (uint64_t)k << 40;
        uint32_t v = (uint32_t)dp_rng_below(&r, 1000);
        switch (dp_rng_below(&r, 4)) {
        case 0:
            CHECK(dp_flowmap_put(&m, key, (uint32_t)t, v) == 0);
            held += ref[k][t] < 0;
            ref[k][t] = v;
            break;
        case 1: {
            int added = -1;
            int64_t got = dp_flowmap_intern(&m, key, (uint32_t)t, v, &added);
            bad |= got != (ref[k][t] < 0 ? (int64_t)v : ref[k][t]) || added != (ref[k][t] < 0);
            held += ref[k][t] < 0;
            if (ref[k][t] < 0)
                ref[k][t] = v;
            break;
        }
        case 2:
            bad |= dp_flowmap_remove(&m, key, (uint32_t)t) != (ref[k][t] >= 0);
            held -= ref[k][t] >= 0;
            ref[k][t] = -1;
            break;
        default:
            break;
        }
        for (int kk = 0; kk < NK; kk++)
            for (int tt = 0; tt < NT; tt++)
                bad |= dp_flowmap_get(&m, (uint64_t)kk << 40, (uint32_t)tt) != ref[kk][tt];
        bad |= m.n != held;
    }
    CHECK(!bad);
    CHECK(m.n * 2 <= m.cap);
    dp_flowmap_free(&m);
}

static void test_flowmap_bounds(void)
{
    dp_flowmap m;
    CHECK(dp_flowmap_init(&m, 100) == 0);
    size_t cap = m.cap;
    CHECK(cap >= 200);
    for (uint32_t i = 0; i < 100; i++)
        CHECK(dp_flowmap_put(&m, dp_mix64(i), 0, i) == 0);
    CHECK_EQ_INT(m.cap, cap); /* no growth within `expect` */
    CHECK_EQ_INT(dp_flowmap_get(&m, dp_mix64(7), 0), 7);
    CHECK_EQ_INT(dp_flowmap_get(&m, dp_mix64(7), 1), -1);
    CHECK(dp_flowmap_put(&m, 1, 0, UINT32_MAX) == -1);
    CHECK(dp_flowmap_put(&m, dp_mix64(7), 0, UINT32_MAX) == -1);
    CHECK_EQ_INT(dp_flowmap_get(&m, dp_mix64(7), 0), 7);
    CHECK(dp_flowmap_put(&m, 2, 0, DP_FLOWMAP_MAX_VAL) == 0);
    CHECK_EQ_INT(dp_flowmap_get(&m, 2, 0), DP_FLOWMAP_MAX_VAL);
    for (uint32_t i = 100; i < 5000; i++)
        CHECK(dp_flowmap_put(&m, dp_mix64(i), 0, i) == 0);
    CHECK(m.cap > cap);
    int ok = 1;
    for (uint32_t i = 0; i < 5000; i++)
        ok &= dp_flowmap_get(&m, dp_mix64(i), 0) == i;
    CHECK(ok);
    dp_flowmap_free(&m);
    CHECK_EQ_INT(dp_flowmap_get(&m, 2, 0), -1);
}

/* The one duration formatter of progress lines (train and test ETAs). */
static void test_fmt_duration(void)
{
    static const struct {
        double s;
        const char *want;
    } cases[] = {{0, "0s"},        {44.4, "44s"},      {44.6, "45s"},   {59.6, "1m00s"},
                 {185, "3m05s"},   {3599.4, "59m59s"}, {3600, "1h00m00s"},
                 {7650, "2h07m30s"}, {1e7, "2777h46m40s"}, {1.1e7, "?"}, {-1, "?"}};
    char b[32];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dp_fmt_duration(b, sizeof b, cases[i].s);
        if (strcmp(b, cases[i].want))
            fprintf(stderr, "  %g s: '%s', expected '%s'\n", cases[i].s, b, cases[i].want);
        CHECK(!strcmp(b, cases[i].want));
    }
    dp_fmt_duration(b, sizeof b, NAN);
    CHECK(!strcmp(b, "?"));
}

int main(void)
{
    dp_test_prog = "test_io";
    DP_RUN(test_atomic_file);
    DP_RUN(test_mkdirs);
    DP_RUN(test_rng);
    DP_RUN(test_npy_bytes);
    DP_RUN(test_npy_appender);
    DP_RUN(test_fmt_duration);
    DP_RUN(test_flowmap_model);
    DP_RUN(test_flowmap_bounds);
    DP_RUN(test_npy_streaming_and_struct);
    DP_RUN(test_npy_through_fifo);
    DP_RUN(test_npy_bad);
    DP_RUN(test_npy_crafted_headers);
    DP_RUN(test_labels_iscx);
    DP_RUN(test_labels_user_tables);
    DP_RUN(test_labels_filter_column);
    return dp_test_end();
}
