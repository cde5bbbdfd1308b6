/* dp_linktype: the table of supported link types; see dp_linktype.h. */
#include "packet/dp_linktype.h"

#include <stddef.h>

/* DLT_RAW on Linux; dp_capture.c checks that libpcap agrees. */
#define DLT_RAW_LINUX 12

/* The first row of a DLT value is the link type it converts to. */
static const dp_linktype_row rows[] = {
    {DP_LINKTYPE_NULL, 0, DP_LINK_NULL},
    {DP_LINKTYPE_ETHERNET, 1, DP_LINK_ETHERNET},
    {DP_LINKTYPE_RAW, DLT_RAW_LINUX, DP_LINK_RAW},
    {DP_LINKTYPE_RAW_DLT, DLT_RAW_LINUX, DP_LINK_RAW},
    {DP_LINKTYPE_RAW_DLT_OBSD, DLT_RAW_LINUX, DP_LINK_RAW},
    {DP_LINKTYPE_LOOP, 108, DP_LINK_LOOP},
    {DP_LINKTYPE_LINUX_SLL, 113, DP_LINK_SLL},
    {DP_LINKTYPE_IPV4, 228, DP_LINK_IPV4},
    {DP_LINKTYPE_IPV6, 229, DP_LINK_IPV6},
    {DP_LINKTYPE_LINUX_SLL2, 276, DP_LINK_SLL2},
};

#define NROWS (sizeof rows / sizeof rows[0])

const dp_linktype_row *dp_linktype_find(int linktype)
{
    for (size_t i = 0; i < NROWS; i++)
        if (rows[i].linktype == linktype)
            return &rows[i];
    return NULL;
}

int dp_linktype_from_dlt(int dlt)
{
    for (size_t i = 0; i < NROWS; i++)
        if (rows[i].dlt == dlt)
            return rows[i].linktype;
    return dlt;
}

int dp_linktype_to_dlt(int linktype)
{
    const dp_linktype_row *r = dp_linktype_find(linktype);
    return r ? r->dlt : linktype;
}
