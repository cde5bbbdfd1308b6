/* Tests for the man pages (man/deeppacket.1 and man/deeppacket-COMMAND.1):
 * every command of `deeppacket --help` has a page, every page renders with
 * groff (or man -l) without a warning, and every option that the program's
 * --help (and each command's --help) prints appears in its page, so that
 * the pages cannot drift from the program. Run from the repository root. */
#include "dp_test.h"

#include <ctype.h>
#include <unistd.h>

#define OUTCAP (1 << 17)

/* The renderer's command for PAGE to standard output (plain ASCII, wide
 * lines, no hyphenation), or NULL when neither groff nor man exists. */
static const char *render_cmd(const char *page, char *cmd, size_t cap)
{
    char out[64];
    if (dp_test_sh("command -v groff", out, sizeof out) == 0)
        snprintf(cmd, cap, "groff -man -Tascii -ww -rLL=300n -rHY=0 -P-c -P-b -P-o -P-u %s", page);
    else if (dp_test_sh("command -v man", out, sizeof out) == 0)
        snprintf(cmd, cap, "MANWIDTH=300 man --warnings -E ascii -l %s | col -b", page);
    else
        return NULL;
    return cmd;
}

/* 1 when opt occurs in text as a whole option (not inside a longer one). */
static int has_option(const char *text, const char *opt)
{
    size_t n = strlen(opt);
    for (const char *p = strstr(text, opt); p; p = strstr(p + 1, opt)) {
        char before = p == text ? ' ' : p[-1], after = p[n];
        if (before != '-' && !isalnum((unsigned char)before) && after != '-' && !isalnum((unsigned char)after))
            return 1;
    }
    return 0;
}

/* Calls fn(opt, ctx) for each option (-x, --long-name) in help text: a dash
 * at the start of a word, followed by a letter or a second dash and a letter. */
static void each_option(const char *help, void (*fn)(const char *, void *), void *ctx)
{
    for (const char *p = help; *p; p++) {
        char before = p == help ? ' ' : p[-1];
        if (*p != '-' || !strchr(" \t\n[(,|", before))
            continue;
        const char *q = p + 1;
        if (*q == '-')
            q++;
        if (!isalpha((unsigned char)*q))
            continue;
        while (isalnum((unsigned char)*q) || *q == '-')
            q++;
        if (q - p > 1 && p[1] != '-' && q - p != 2)
            continue; /* -word: not an option */
        char opt[64];
        snprintf(opt, sizeof opt, "%.*s", (int)(q - p), p);
        fn(opt, ctx);
        p = q - 1;
    }
}

struct page_ctx {
    const char *page, *text;
    int n, missing; /* options seen, of those not in the page */
};

static void check_option(const char *opt, void *ctx)
{
    struct page_ctx *pc = ctx;
    pc->n++;
    if (!has_option(pc->text, opt)) {
        fprintf(stderr, "  %s: option %s of --help is not in the page\n", pc->page, opt);
        pc->missing++;
    }
}

/* Renders page (no warnings allowed) and checks that every option of
 * `deeppacket [cmd] --help` is in it; returns the options checked. */
static int check_page(const char *dp, const char *cmd, const char *page)
{
    char rc[512], sh[1024];
    static char text[OUTCAP], help[OUTCAP], warn[OUTCAP];
    if (access(page, R_OK) != 0) {
        fprintf(stderr, "  %s: missing (a page for `deeppacket %s`)\n", page, cmd ? cmd : "");
        dp_test_failed_now = 1;
        return 0;
    }
    render_cmd(page, rc, sizeof rc);
    snprintf(sh, sizeof sh, "%s 2>&1 >/dev/null", rc);
    CHECK_EQ_INT(dp_test_sh(sh, warn, sizeof warn), 0);
    if (warn[0]) {
        fprintf(stderr, "  %s: the renderer warns: %s\n", page, warn);
        dp_test_failed_now = 1;
    }
    snprintf(sh, sizeof sh, "%s 2>/dev/null", rc);
    dp_test_sh(sh, text, sizeof text);
    CHECK_STR_CONTAINS(text, "NAME");
    snprintf(sh, sizeof sh, "%s %s --help 2>&1", dp, cmd ? cmd : "");
    CHECK_EQ_INT(dp_test_sh(sh, help, sizeof help), 0);
    struct page_ctx pc = {page, text, 0, 0};
    each_option(help, check_option, &pc);
    CHECK_EQ_INT(pc.missing, 0);
    return pc.n;
}

static void test_pages(void)
{
    const char *dp = dp_test_cli();
    char rc[256], help[8192], text[OUTCAP];
    if (!dp)
        SKIP("no deeppacket binary in $BUILD");
    if (!render_cmd("x", rc, sizeof rc))
        SKIP("neither groff nor man is installed (apt-get install groff-base man-db)");
    if (access("man/deeppacket.1", F_OK) != 0)
        SKIP("run from the repository root (man/ not found)");
    int nopt = check_page(dp, NULL, "man/deeppacket.1");
    CHECK(nopt >= 1);
    render_cmd("man/deeppacket.1", rc, sizeof rc);
    dp_test_sh(rc, text, sizeof text);
    /* the commands: the lines "  NAME  what it does" after "commands:" */
    char sh[512];
    snprintf(sh, sizeof sh, "%s --help | sed -n '/^commands:/,$p' | awk 'NR > 1 && /^  [a-z]/ {print $1}'", dp);
    dp_test_sh(sh, help, sizeof help);
    int ncmd = 0;
    for (char *save, *c = strtok_r(help, "\n", &save); c; c = strtok_r(NULL, "\n", &save)) {
        char page[256], ref[128];
        snprintf(page, sizeof page, "man/deeppacket-%s.1", c);
        int n = check_page(dp, c, page);
        if (n < 3) {
            fprintf(stderr, "  %s: only %d options found in `deeppacket %s --help`\n", page, n, c);
            dp_test_failed_now = 1;
        }
        snprintf(ref, sizeof ref, "deeppacket-%s(1)", c); /* the main page names it */
        CHECK_STR_CONTAINS(text, ref);
        ncmd++;
    }
    CHECK(ncmd >= 6);
}

/* The option scanner and matcher themselves, on known text. */
static void test_option_scan(void)
{
    struct page_ctx pc = {"x", "  -m MODEL  --per packet|flow  --first N  -t -r  --bench", 0, 0};
    each_option("usage: x -m M [--per packet|flow] (--first N) under-sampled 1e-3 -t's -r -", check_option, &pc);
    CHECK_EQ_INT(pc.n, 5);
    CHECK_EQ_INT(pc.missing, 0);
    CHECK(has_option("a --test-size b", "--test-size"));
    CHECK(!has_option("a --test-size b", "--test"));
    CHECK(!has_option("a --test-size b", "-t"));
    CHECK(!has_option("--format", "--for"));
    struct page_ctx miss = {"(an expected miss)", "-m only", 0, 0};
    check_option("--format", &miss);
    CHECK_EQ_INT(miss.missing, 1); /* a missing option is counted (check_page fails on it) */
}

int main(void)
{
    dp_test_prog = "test_man";
    DP_RUN(test_option_scan);
    DP_RUN(test_pages);
    return dp_test_end();
}
