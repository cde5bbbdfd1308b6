/* dp_flowfeat: one packet's flow features (see dp_flowfeat.h). */
#include "flow/dp_flowfeat.h"

#include <math.h>
#include <string.h>

#include "packet/dp_mask.h"
#include "util/dp_util.h"

static const char *const group_names[DP_FEAT_NGROUPS] = {"sizes", "time", "header", "payload"};

void dp_flowcfg_default(dp_flowcfg *c)
{
    c->npackets = DP_FLOW_DEFAULT_PACKETS;
    c->payload_bytes = DP_FLOW_DEFAULT_PAYLOAD;
    c->mask = DP_MASK_DEFAULT;
    c->groups = DP_FEAT_ALL;
}

int dp_flowcfg_check(const dp_flowcfg *c, const char *what, char *errbuf)
{
    if (c->npackets < 1 || c->npackets > DP_FLOW_MAX_PACKETS)
        return dp_err(errbuf, "%s: packets per flow %d out of range 1..%d", what, c->npackets, DP_FLOW_MAX_PACKETS);
    if (c->payload_bytes < 0 || c->payload_bytes > DP_FLOW_MAX_PAYLOAD)
        return dp_err(errbuf, "%s: payload bytes %d out of range 0..%d", what, c->payload_bytes,
                      DP_FLOW_MAX_PAYLOAD);
    if (c->mask & ~(uint32_t)DP_MASK_ALL)
        return dp_err(errbuf, "%s: unknown mask bits 0x%x", what, c->mask);
    if (c->groups & ~(uint32_t)DP_FEAT_ALL)
        return dp_err(errbuf, "%s: unknown feature group bits 0x%x", what, c->groups);
    return 0;
}

int dp_flowfeat_groups_parse(const char *list, uint32_t *groups, char *errbuf)
{
    static const char *const aliases[] = {"all"};
    static const uint32_t alias_bits[] = {DP_FEAT_ALL};
    return dp_bits_parse("--features", list, group_names, DP_FEAT_NGROUPS, aliases, alias_bits, 1, groups, errbuf);
}

char *dp_flowfeat_groups_name(uint32_t groups, char *buf, size_t n)
{
    if ((groups & DP_FEAT_ALL) == DP_FEAT_ALL) {
        snprintf(buf, n, "all");
        return buf;
    }
    return dp_bits_name(groups & DP_FEAT_ALL, group_names, DP_FEAT_NGROUPS, "none", buf, n);
}

int dp_flowfeat_direction(const uint8_t first_saddr[16], uint16_t first_sport, const uint8_t saddr[16],
                          uint16_t sport)
{
    return sport == first_sport && memcmp(first_saddr, saddr, 16) == 0 ? 1 : -1;
}

static void bytes_to(float *out, const uint8_t *b, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = b[i] * (1.0f / 255.0f);
}

/* [4..43]: the IP header slot and the transport slot. */
static void header_slots(const uint8_t *v, const dp_vec_layout *lay, float *out)
{
    if (lay->ipver == 4)
        bytes_to(out, v, 20);
    else if (lay->ipver == 6)
        bytes_to(out, v, 8);
    if (lay->l4_off >= 0 && lay->l4_off + 20 <= DP_VEC_LEN) {
        /* UDP: its 8 bytes and the 12 padding bytes, which the vector holds */
        bytes_to(out + 20, v + lay->l4_off, 20);
        if (lay->proto == 17)
            memset(out + 28, 0, 12 * sizeof(float));
    }
}

void dp_flowfeat_packet(const dp_flowcfg *cfg, const uint8_t vec[DP_VEC_LEN], int dir, double dt, int first,
                        float *out)
{
    int F = dp_flowcfg_features(cfg);
    uint8_t v[DP_VEC_LEN];
    memcpy(v, vec, DP_VEC_LEN);
    dp_mask_apply(cfg->mask, v);
    dp_vec_layout lay;
    dp_vec_layout_get(v, &lay);
    memset(out, 0, (size_t)F * sizeof(float));

    out[0] = 1.0f;
    if (cfg->groups & DP_FEAT_SIZES) {
        out[1] = dir >= 0 ? 1.0f : -1.0f;
        out[2] = (float)lay.ip_len / 1500.0f;
    }
    if ((cfg->groups & DP_FEAT_TIME) && !first)
        out[3] = (float)(log1p(1000.0 * (dt > 0 ? fmin(dt, DP_FLOWFEAT_MAX_DT) : 0)) / 10.0); /* NaN: 0 */
    if (cfg->groups & DP_FEAT_HEADER)
        header_slots(v, &lay, out + 4);
    if ((cfg->groups & DP_FEAT_PAYLOAD) && lay.ipver) {
        int k = cfg->payload_bytes, off = lay.payload_off;
        if (off + k > DP_VEC_LEN)
            k = DP_VEC_LEN - off;
        if (k > 0)
            bytes_to(out + DP_FLOW_BASE_FEATURES, v + off, k);
    }
}
