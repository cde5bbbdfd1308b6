/* dp_mask: field masks over a Deep Packet vector (see dp_mask.h). */
#include "packet/dp_mask.h"

#include <stdio.h>
#include <string.h>

#include "util/dp_util.h"

static const char *const field_names[DP_MASK_NFIELDS] = {
    "ports", "ipid", "ttl", "checksum", "seq", "tcpts", "window",
};

/* ---- names -------------------------------------------------------------- */

int dp_mask_parse(const char *list, uint32_t *mask, char *errbuf)
{
    static const char *const aliases[] = {"none", "all", "default"};
    static const uint32_t alias_bits[] = {0, DP_MASK_ALL, DP_MASK_DEFAULT};
    return dp_bits_parse("--mask", list, field_names, DP_MASK_NFIELDS, aliases, alias_bits, 3, mask, errbuf);
}

char *dp_mask_name(uint32_t mask, char *buf, size_t n)
{
    return dp_bits_name(mask & DP_MASK_ALL, field_names, DP_MASK_NFIELDS, "none", buf, n);
}

/* ---- layout ------------------------------------------------------------- */

static unsigned rd16(const uint8_t *v, int off)
{
    return (unsigned)v[off] << 8 | v[off + 1];
}

/* Walks IPv6 extension headers (and AH, in either version) from *off with
 * next header *nh; stops at the first other protocol. Returns 1 if a
 * non-first fragment was crossed (no transport header follows), 0 if the
 * walk ended on a transport protocol, -1 if a header runs out of the vector. */
static int walk_ext(const uint8_t *v, int ipver, int *off, int *nh)
{
    for (int hops = 0; hops < 64; hops++) {
        int h = *nh, o = *off, len;
        int v6ext = ipver == 6 && (h == 0 || h == 43 || h == 60 || h == 44);
        if (!v6ext && h != 51)
            return 0;
        if (o + 8 > DP_VEC_LEN)
            return -1;
        if (h == 44) {
            len = 8;
            if ((rd16(v, o + 2) & 0xFFF8) != 0)
                return 1;
        } else if (h == 51) {
            len = (v[o + 1] + 2) * 4;
        } else {
            len = (v[o + 1] + 1) * 8;
        }
        *nh = v[o];
        *off = o + len;
    }
    return -1;
}

static void ip_len_of(const uint8_t *v, dp_vec_layout *lay)
{
    uint32_t l = lay->ipver == 4 ? rd16(v, 2) : rd16(v, 4);
    if (lay->ipver == 6 && l)
        l += 40;
    if (!l) {
        int last = DP_VEC_LEN;
        while (last > 0 && v[last - 1] == 0)
            last--;
        l = (uint32_t)last;
    }
    lay->ip_len = l;
}

void dp_vec_layout_get(const uint8_t vec[DP_VEC_LEN], dp_vec_layout *lay)
{
    memset(lay, 0, sizeof *lay);
    lay->l4_off = -1;
    int ver = vec[0] >> 4, off, nh, frag = 0;
    if (ver == 4) {
        off = (vec[0] & 15) * 4;
        if (off < 20)
            off = 20; /* a bad IHL: read the fixed header, no options */
        nh = vec[9];
        frag = (rd16(vec, 6) & 0x1FFF) != 0;
    } else if (ver == 6) {
        off = 40;
        nh = vec[6];
    } else {
        return;
    }
    lay->ipver = ver;
    lay->ip_hlen = off;
    ip_len_of(vec, lay);
    int w = frag ? 1 : walk_ext(vec, ver, &off, &nh);
    lay->proto = nh;
    lay->payload_off = off < DP_VEC_LEN ? off : DP_VEC_LEN;
    if (w != 0)
        return;
    if (nh == 6 && off + 20 <= DP_VEC_LEN) {
        int hl = (vec[off + 12] >> 4) * 4;
        lay->l4_off = off;
        lay->l4_hlen = hl < 20 ? 20 : hl;
        lay->payload_off = off + lay->l4_hlen;
    } else if (nh == 17 && off + 8 <= DP_VEC_LEN) {
        lay->l4_off = off;
        lay->l4_hlen = 20;
        lay->payload_off = off + 20;
    }
    if (lay->payload_off > DP_VEC_LEN)
        lay->payload_off = DP_VEC_LEN;
}

/* ---- masks -------------------------------------------------------------- */

static void zero(uint8_t *v, int off, int n)
{
    if (off < 0 || off >= DP_VEC_LEN)
        return;
    if (off + n > DP_VEC_LEN)
        n = DP_VEC_LEN - off;
    memset(v + off, 0, (size_t)n);
}

static void mask_ip(uint32_t mask, uint8_t *v, const dp_vec_layout *lay)
{
    if (lay->ipver == 4) {
        if (mask & DP_MASK_IPID)
            zero(v, 4, 2);
        if (mask & DP_MASK_TTL)
            zero(v, 8, 1);
        if (mask & DP_MASK_CHECKSUM)
            zero(v, 10, 2);
    } else {
        if (mask & DP_MASK_IPID) {
            v[1] &= 0xF0;
            zero(v, 2, 2);
        }
        if (mask & DP_MASK_TTL)
            zero(v, 7, 1);
    }
}

/* Zeroes the timestamp option's values: options walked with bounds checks. */
static void mask_tcpts(uint8_t *v, int l4, int hlen)
{
    int o = l4 + 20, end = l4 + hlen;
    if (end > DP_VEC_LEN)
        end = DP_VEC_LEN;
    while (o < end) {
        int kind = v[o];
        if (kind == 0)
            return;
        if (kind == 1) {
            o++;
            continue;
        }
        if (o + 1 >= end)
            return;
        int len = v[o + 1];
        if (len < 2 || o + len > end)
            return;
        if (kind == 8 && len == 10)
            zero(v, o + 2, 8);
        o += len;
    }
}

static void mask_l4(uint32_t mask, uint8_t *v, const dp_vec_layout *lay)
{
    int o = lay->l4_off;
    if (o < 0)
        return;
    if (mask & DP_MASK_PORTS)
        zero(v, o, 4);
    if (lay->proto == 17) {
        if (mask & DP_MASK_CHECKSUM)
            zero(v, o + 6, 2);
        return;
    }
    if (mask & DP_MASK_SEQ)
        zero(v, o + 4, 8);
    if (mask & DP_MASK_WINDOW)
        zero(v, o + 14, 2);
    if (mask & DP_MASK_CHECKSUM)
        zero(v, o + 16, 2);
    if (mask & DP_MASK_TCPTS)
        mask_tcpts(v, o, lay->l4_hlen);
}

void dp_mask_apply(uint32_t mask, uint8_t vec[DP_VEC_LEN])
{
    if (!(mask & DP_MASK_ALL))
        return;
    dp_vec_layout lay;
    dp_vec_layout_get(vec, &lay);
    if (!lay.ipver)
        return;
    mask_ip(mask, vec, &lay);
    mask_l4(mask, vec, &lay);
}
